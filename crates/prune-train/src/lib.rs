//! The built-in training loop behind `fit()`: one implementation of the epoch loop, `fit`,
//! `train_dense` and `accuracy`, driven by the config's `train` section. A framework supplies
//! only a [`Trainer`]: its batch, its forward / backward and optimizer step, its predictions,
//! and what it must redo after a structured shrink resized weights.

#![warn(missing_docs)]

pub mod config;
pub mod data;
pub mod distributed;
mod epoch;

pub use config::{AdamParams, Criterion, OptimizerConfig, Reduction, TrainConfig, Unused};
pub use data::{shuffled, Dataset};
pub use distributed::{Collective, GradientReducer, SingleProcess, VerifyConsistent};
pub use epoch::{accuracy, fit, fit_on, run_epoch, run_epoch_on, train_dense, EpochLog, Trainer};
