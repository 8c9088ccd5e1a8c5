//! Prunes a Keras 3 SavedModel (`model.export()`) to the config's final sparsity and writes a
//! new SavedModel that TensorFlow loads with the pruned weights.
//!
//! cargo run --release --features tf --example prune_savedmodel -- SRC_DIR DEST_DIR CONFIG.yaml

use anyhow::{bail, Context, Result};
use prune::tf::saved_model::SavedModel;
use prune::tf::TfPruning;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dest, config] = args.as_slice() else {
        bail!("usage: prune_savedmodel SRC_DIR DEST_DIR CONFIG.yaml");
    };
    let mut pruning = TfPruning::from_file(config)?;
    let mut sm =
        SavedModel::load(src, "serving_default").with_context(|| format!("loading {src}"))?;
    // No training here: every scheduled epoch is stepped through, so the masks reach the target.
    let last = pruning.config().last_schedule_epoch();
    for epoch in 0..=last {
        pruning.on_epoch_begin(sm.model(), epoch)?;
        pruning.on_epoch_end(sm.model())?;
    }
    print!("{}", pruning.report(sm.model())?.table());
    sm.save(dest)?;
    println!("wrote {dest}");
    Ok(())
}
