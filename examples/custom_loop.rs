//! Pruning inside your own burn training loop: the hooks, called by hand.
//!
//! cargo run --release --example custom_loop

use anyhow::Result;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use prune::burn::train::{accuracy, batch, Classifier};
use prune::burn::{BurnModel, BurnPruning};
use prune::train::{shuffled, Dataset};

#[derive(Module, Debug)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Classifier for Mlp {
    fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        self.fc2.forward(relu(self.fc1.forward(x)))
    }
}

fn main() -> Result<()> {
    let data = Dataset::from_csv_gz(
        concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz"),
        1.0 / 16.0,
    )?;
    let (train, test) = data.split(0.2, 42);
    let device = Device::flex().autodiff();
    device.seed(7);
    let mlp = Mlp {
        fc1: LinearConfig::new(64, 256).init(&device),
        fc2: LinearConfig::new(256, 10).init(&device),
    };
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut optim = AdamConfig::new().init();

    let mut pruning = BurnPruning::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/configs/custom_loop.yaml"
    ))?;
    let mut model = BurnModel::new(mlp);
    pruning.on_train_begin(&mut model)?;
    for epoch in 0..30 {
        pruning.on_epoch_begin(&mut model, epoch)?; // masks recomputed on the schedule
        for rows in shuffled(train.len(), epoch as u64).chunks(32) {
            pruning.on_step_begin(&mut model)?;
            let (x, y) = batch(&train, rows, &device);
            let loss = loss_fn.forward(model.module().logits(x), y);
            model.set_grads(GradientsParams::from_grads(loss.backward(), model.module()));
            pruning.on_before_optimizer_step(&mut model)?;
            model.optimizer_step(&mut optim, 1e-3)?; // burn's own Adam
            pruning.on_step_end(&mut model)?; // pruned weights exactly zero again
        }
        pruning.on_epoch_end(&mut model)?;
    }
    pruning.on_train_end(&mut model)?;

    print!("{}", pruning.report(&model)?.table());
    println!(
        "test accuracy: {:.2}%",
        100.0 * accuracy(model.module(), &test, &device)?
    );
    Ok(())
}
