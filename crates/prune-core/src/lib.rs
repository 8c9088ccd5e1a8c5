//! Framework-independent core of the `prune` library.
//!
//! - [`config`]: INC 1.x pruning YAML, typed and validated.
//! - [`schedule`]: epoch -> target sparsity.
//! - [`backend`]: the [`TensorBackend`] and [`Model`] traits a framework implements.
//! - [`masks`]: exact, deterministic mask selection.
//! - [`session`]: the [`Pruning`] session and its training hooks.
//! - [`structured`], [`structure`]: head / row pruning and physical shrinking.
//! - [`reference`]: a pure-Rust backend that defines expected behaviour.

#![warn(missing_docs)]

pub mod backend;
pub mod checkpoint;
pub mod compact;
pub mod config;
pub mod data;
pub mod error;
pub mod group_lasso;
pub mod host;
pub mod masks;
pub mod names;
mod pruner;
pub mod reference;
pub mod report;
pub mod safetensors;
pub mod schedule;
pub mod session;
pub mod structure;
pub mod structured;
pub mod suggest;
pub mod train_loop;
pub mod transformer;

#[cfg(any(test, feature = "testing"))]
pub mod conformance;

pub use backend::{Layout, Model, Reduce, TensorBackend, WeightInfo};
pub use config::{PruneType, PruningConfig, ResolvedPruner};
pub use error::{PruneError, Result};
pub use reference::Reference;
pub use report::{EpochLog, LayerSparsity, SparsityReport};
pub use schedule::Schedule;
pub use session::Pruning;
