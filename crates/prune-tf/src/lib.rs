//! TensorFlow backend of the `prune` library, over the tensorflow crate and the TensorFlow C
//! library (installed from the tensorflow-cpu wheel by `bash scripts/setup.sh tf`).
//!
//! - [`Tf`]: the [`TensorBackend`](prune_core::TensorBackend) over host tensors.
//! - [`TfModel`]: a graph + session with named variables (`dense1/kernel` seen as `dense1.weight`).
//! - [`train`]: an MLP built in a graph from Rust and the built-in training loop of `fit()`.
//! - [`saved_model`]: Keras 3 SavedModels loaded, pruned and saved back.

#![warn(missing_docs)]

mod backend;
pub mod graph_ops;
mod model;
mod proto;
pub mod saved_model;
pub mod train;

pub use backend::Tf;
pub use model::{canonical_tf_name, stored_tensor, tf_layout, GraphHolder, TfModel};

/// A pruning session for TensorFlow models.
pub type TfPruning = prune_core::Pruning<Tf>;
