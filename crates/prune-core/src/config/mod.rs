//! The pruning configuration: INC 1.x YAML in, typed and validated values out.

mod parse;
mod types;
pub mod walk;

pub use parse::{parse_pattern, DEFAULT_END_EPOCH, DEFAULT_TARGET_SPARSITY};
pub use types::*;
