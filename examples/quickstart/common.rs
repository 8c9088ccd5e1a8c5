//! What every backend's quickstart run takes and reports.

use prune::train::Dataset;
use prune::SparsityReport;

/// Training settings shared by every backend.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Epochs of dense training before pruning starts.
    pub dense_epochs: usize,
    /// Hidden units of the MLP.
    pub hidden: usize,
    /// Seed of the framework's initialisation.
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dense_epochs: 40,
            hidden: 512,
            seed: 42,
        }
    }
}

/// What a run measured.
pub struct Outcome {
    /// Test accuracy after dense training.
    pub dense_accuracy: f64,
    /// Test accuracy after pruning and fine-tuning.
    pub pruned_accuracy: f64,
    /// Zeros of every pruned weight, read from the model.
    pub report: SparsityReport,
    /// Parameters of the model after pruning (smaller once a structured pruner shrank it).
    pub params: usize,
}

/// Parameters of a model, from its weights.
pub fn params<M: prune::Model>(model: &M) -> prune::Result<usize> {
    Ok(model.weights()?.iter().map(|w| w.numel()).sum())
}

/// The 8x8 digits, pixels scaled to [0, 1], split 80/20 with seed 42.
pub fn digits() -> anyhow::Result<(Dataset, Dataset)> {
    let data = Dataset::from_csv_gz(
        concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz"),
        1.0 / 16.0,
    )?;
    Ok(data.split(0.2, 42))
}

/// MNIST-5k (28x28 pixels scaled to [0, 1]), split 80/20 with seed 42.
#[allow(dead_code)]
pub fn mnist() -> anyhow::Result<(Dataset, Dataset)> {
    let data = Dataset::from_csv_gz(
        concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist_5k.csv.gz"),
        1.0 / 255.0,
    )?;
    Ok(data.split(0.2, 42))
}

/// The quickstart's committed configuration.
pub const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/configs/quickstart.yaml"
);
