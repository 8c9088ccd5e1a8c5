//! burn backend of the `prune` library.
//!
//! - [`Burn`]: the [`TensorBackend`](prune_core::TensorBackend) over burn tensors.
//! - [`BurnModel`]: any burn [`Module`](burn::module::Module) as a prunable model.
//! - [`bert`]: a BERT encoder with Hugging Face names, a head mask, and sizes read from its
//!   weights (structured pruning shrinks it in place).
//! - [`train`]: the built-in training loop behind `fit()` for classifiers.

#![warn(missing_docs)]

mod backend;
#[allow(non_snake_case)]
pub mod bert;
pub mod compact;
mod model;
mod params;
pub mod train;

pub use backend::{Burn, BurnMask, BurnTensor};
pub use model::BurnModel;
pub use params::LayoutRules;

/// A pruning session for burn models.
pub type BurnPruning = prune_core::Pruning<Burn>;
