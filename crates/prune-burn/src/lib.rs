//! burn backend of the `prune` library.
//!
//! - [`Burn`]: the [`TensorBackend`](prune_core::TensorBackend) over burn tensors.
//! - [`BurnModel`]: any burn [`Module`](burn::module::Module) as a prunable model.
//! - [`bert`]: BERT-family encoders with Hugging Face names, a head mask, and sizes read from
//!   their weights (structured pruning shrinks them in place); [`bert::BertModel`] loads task
//!   checkpoints (`bert.` / `roberta.`, pooler, classification head) and model directories.
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
