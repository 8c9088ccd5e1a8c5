//! burn backend of the `prune` library.
//!
//! - [`Burn`]: the [`TensorBackend`](prune_core::TensorBackend) over burn tensors.
//! - [`BurnModel`]: any burn [`Module`](burn::module::Module) as a prunable model.
//! - [`train`]: the built-in training loop behind `fit()` for classifiers.

#![warn(missing_docs)]

mod backend;
pub mod compact;
mod model;
pub mod train;

pub use backend::{Burn, BurnMask, BurnTensor};
pub use model::BurnModel;

/// A pruning session for burn models.
pub type BurnPruning = prune_core::Pruning<Burn>;
