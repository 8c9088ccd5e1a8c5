//! Neural-network pruning driven by INC-style YAML, over burn, tch and tensorflow.
//!
//! The session ([`Pruning`]), its configuration ([`PruningConfig`], [`config`]), the traits a
//! framework implements ([`Model`], [`TensorBackend`]) and the errors come from the core; the
//! framework backend is chosen by feature:
//!
//! - `burn` (default, pure Rust): the [`burn`] module.
//! - `torch` (libtorch through tch; `bash scripts/setup.sh torch` first): the [`torch`] module.
//! - `tf` (the TensorFlow C library; `bash scripts/setup.sh tf` first): the [`tf`] module.
//! - `mpi` (Open MPI; `bash scripts/setup.sh mpi` first): the [`mpi`] module, data-parallel
//!   training launched by `mpirun`.
//!
//! ```no_run
//! # #[cfg(feature = "burn")] {
//! use prune::burn::{BurnModel, BurnPruning};
//! let pruning = BurnPruning::from_file("examples/configs/quickstart.yaml").unwrap();
//! # }
//! ```

pub use prune_core::algo::structured::LayerOutcome;
pub use prune_core::config;
pub use prune_core::model::ShrinkOp;
pub use prune_core::session::state::SessionState;
pub use prune_core::{
    LayerSparsity, Layout, Model, PruneError, PruneType, Pruning, PruningConfig, Reduce,
    ResolvedPruner, Result, Schedule, SparsityReport, TensorBackend, WeightInfo,
};

/// The built-in training loop's data and settings: the dataset `fit()` takes, its epoch log,
/// and the `train` section's types.
pub mod train {
    pub use prune_train::distributed;
    pub use prune_train::{
        shuffled, AdamParams, Collective, Criterion, Dataset, EpochLog, GradientReducer,
        OptimizerConfig, Reduction, SingleProcess, TrainConfig, Trainer, VerifyConsistent,
    };
}

/// Data-parallel training over MPI (feature `mpi`): the [`World`](prune_mpi::World) of
/// processes `mpirun` started, for `fit_on` or a loop of one's own.
#[cfg(feature = "mpi")]
pub mod mpi {
    pub use prune_mpi::*;
}

/// Checkpoint files: safetensors read memory-mapped and written atomically.
pub mod io {
    pub use prune_io::*;
}

/// Transformer models: the BERT checkpoint schema, WordPiece tokenisation, sentence corpora.
pub mod nlp {
    pub use prune_nlp::*;
}

/// The burn backend (feature `burn`).
#[cfg(feature = "burn")]
pub mod burn {
    /// The burn crate this library was built with (`prune::burn::burn`), so a user's crate
    /// needs no dependency of its own on the exact version.
    pub use ::burn;
    pub use prune_burn::*;
}

/// The libtorch backend (feature `torch`).
#[cfg(feature = "torch")]
pub mod torch {
    /// The tch crate this library was built with (`prune::torch::tch`).
    pub use ::tch;
    pub use prune_torch::*;
}

/// The TensorFlow backend (feature `tf`).
#[cfg(feature = "tf")]
pub mod tf {
    /// The tensorflow crate this library was built with (`prune::tf::tensorflow`).
    pub use ::tensorflow;
    pub use prune_tf::*;
}
