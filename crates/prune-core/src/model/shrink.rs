//! What a structured shrink asks of a model: slices to keep, and slices that go together.

/// Keep only `keep` (ascending indices) along `axis` of a weight's canonical view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShrinkOp {
    /// Canonical weight name.
    pub weight: String,
    /// Canonical axis: 0 = output rows, 1 = input columns of an `[out, in]` weight.
    pub axis: usize,
    /// Indices kept along `axis`, ascending (original order preserved).
    pub keep: Vec<usize>,
}

/// Weight slices that must keep the same indices: shrinking one member shrinks all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouplingGroup {
    /// `(weight, canonical axis)` pairs.
    pub members: Vec<(String, usize)>,
}
