//! The algorithms: a pruner bound to its weights (magnitude, pattern_lock, element-wise
//! gradient_sensitivity, group_lasso), structured gradient_sensitivity, the coupling that
//! completes a shrink, and the compaction of whole zero rows.

pub mod compact;
pub mod coupling;
pub(crate) mod pruner;
pub mod structured;
