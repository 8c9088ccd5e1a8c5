//! PyTorch backend of the `prune` library, over tch and libtorch.
//!
//! - [`Torch`]: the [`TensorBackend`](prune_core::TensorBackend) over tch tensors.
//! - [`TorchModel`]: a tch `VarStore` as a prunable model (names like `fc1.weight`).
//! - [`bert`]: BERT-family encoders with Hugging Face names, a head mask, and sizes read from
//!   their weights (structured pruning shrinks them in place), bare or task checkpoints
//!   (`bert.` / `roberta.`, pooler, classification head) and model directories.
//! - [`train`]: the built-in training loop behind `fit()` for classifiers.
//!
//! libtorch comes from the PyPI torch wheel: `bash scripts/setup.sh torch`.

#![warn(missing_docs)]

mod backend;
pub mod bert;
mod model;
pub mod train;

pub use backend::{Torch, TorchMask, TorchTensor};
pub use model::{variable_names, TorchModel};

/// A pruning session for tch models.
pub type TorchPruning = prune_core::Pruning<Torch>;
