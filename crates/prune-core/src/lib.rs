//! Framework-independent core of the `prune` library: pruning only.
//!
//! Imports flow one way, top to bottom:
//!
//! - [`session`]: the [`Pruning`] session, its training hooks, saved state and reports.
//! - [`algo`]: the algorithms (magnitude, pattern_lock, group_lasso, gradient_sensitivity),
//!   structured shrinking and its coupling recognisers.
//! - [`select`]: exact, deterministic mask selection and patterns (tiles, N:M, per channel).
//! - [`config`], [`schedule`]: INC 1.x YAML, typed and validated; epoch -> target sparsity.
//! - [`model`]: the [`TensorBackend`] and [`Model`] traits a framework implements, layouts and
//!   weight names.
//! - [`error`], [`suggest`], [`rng`]: the one error type; close-match suggestions; a seeded
//!   generator.
//!
//! [`testing`] holds the reference backend and the conformance suite every backend runs.

#![warn(missing_docs)]

pub mod algo;
pub mod config;
pub mod error;
pub mod model;
pub mod rng;
pub mod schedule;
pub mod select;
pub mod session;
pub mod suggest;
pub mod testing;

pub use config::{PruneType, PruningConfig, ResolvedPruner};
pub use error::{PruneError, Result};
pub use model::{Layout, Model, Reduce, TensorBackend, WeightId, WeightInfo};
pub use schedule::Schedule;
pub use session::report::{LayerSparsity, SparsityReport};
pub use session::Pruning;
pub use testing::reference::Reference;
