//! Neural-network pruning driven by INC-style YAML, over burn, tch and tensorflow.
//!
//! Everything framework-independent comes from [`prune_core`] and is re-exported here; the
//! framework backend is chosen by feature:
//!
//! - `burn` (default, pure Rust): the [`burn`] module.
//! - `torch` (libtorch through tch; `bash scripts/setup.sh torch` first): the [`torch`] module.
//! - `tf` (the TensorFlow C library; `bash scripts/setup.sh tf` first): the [`tf`] module.
//!
//! ```no_run
//! # #[cfg(feature = "burn")] {
//! use prune::burn::{BurnModel, BurnPruning};
//! let pruning = BurnPruning::from_file("examples/configs/quickstart.yaml").unwrap();
//! # }
//! ```

pub use prune_core::*;

/// The burn backend (feature `burn`).
/// Text tools for transformer models: WordPiece tokenisation, sentence corpora.
pub mod nlp {
    pub use prune_nlp::*;
}

#[cfg(feature = "burn")]
pub mod burn {
    pub use prune_burn::*;
}

/// The libtorch backend (feature `torch`).
#[cfg(feature = "torch")]
pub mod torch {
    pub use prune_torch::*;
}

/// The TensorFlow backend (feature `tf`).
#[cfg(feature = "tf")]
pub mod tf {
    pub use prune_tf::*;
}
