//! What a framework provides: tensor math ([`TensorBackend`]), named-weight access ([`Model`]),
//! how weights are stored ([`Layout`]) and named ([`names`]), and what a shrink asks
//! ([`ShrinkOp`], [`CouplingGroup`]). Everything else in the crate is written against these.

mod access;
mod backend;
pub mod host;
pub mod layout;
pub mod names;
mod shrink;

pub use access::{shrink_weights, Model, WeightId, WeightInfo};
pub use backend::{host_group_lasso_gradient, TensorBackend};
pub use host::Reduce;
pub use layout::Layout;
pub use shrink::{Coupling, CouplingGroup, FixedSlice, ShrinkOp, Slice};
