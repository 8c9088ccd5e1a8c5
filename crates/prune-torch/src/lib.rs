//! PyTorch backend of the `prune` library, over tch and libtorch.
//!
//! - [`Torch`]: the [`TensorBackend`](prune_core::TensorBackend) over tch tensors.
//! - [`TorchModel`]: a tch `VarStore` as a prunable model (names like `fc1.weight`).
//! - [`train`]: the built-in training loop behind `fit()` for classifiers.
//!
//! libtorch comes from the PyPI torch wheel: `bash scripts/setup.sh torch`.

#![warn(missing_docs)]

mod backend;
mod model;
pub mod train;

pub use backend::{Torch, TorchMask, TorchTensor};
pub use model::{variable_names, TorchModel};

/// A pruning session for tch models.
pub type TorchPruning = prune_core::Pruning<Torch>;
