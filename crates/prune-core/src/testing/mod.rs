//! What backends are tested against: the reference backend and, with feature `testing`, the
//! conformance suite every backend runs.

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod reference;
