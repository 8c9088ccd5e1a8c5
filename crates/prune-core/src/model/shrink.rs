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

/// One axis of one weight, in a coupling group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// Canonical weight name.
    pub weight: String,
    /// Canonical axis.
    pub axis: usize,
    /// Consecutive indices per channel of the group: 1, or `h * w` for the input columns of a
    /// Linear after the flatten of `h x w` feature maps.
    pub block: usize,
}

impl Slice {
    /// `axis` of `weight`, one index per channel.
    pub fn new(weight: impl Into<String>, axis: usize) -> Self {
        Slice {
            weight: weight.into(),
            axis,
            block: 1,
        }
    }

    /// The same slice with `block` consecutive indices per channel.
    pub fn blocks(mut self, block: usize) -> Self {
        self.block = block;
        self
    }
}

/// Weight slices that must keep the same channels: shrinking one member shrinks all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouplingGroup {
    /// The coupled slices.
    pub members: Vec<Slice>,
}

impl CouplingGroup {
    /// A group of `(weight, axis)` slices with one index per channel.
    pub fn of(members: impl IntoIterator<Item = (String, usize)>) -> Self {
        CouplingGroup {
            members: members.into_iter().map(|(w, a)| Slice::new(w, a)).collect(),
        }
    }
}

/// A slice that must not be shrunk, with the reason (e.g. it writes into a residual sum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedSlice {
    /// Canonical weight name.
    pub weight: String,
    /// Canonical axis.
    pub axis: usize,
    /// Why, for the error a shrink of it gets.
    pub reason: String,
}

/// What the recognisers found in a model: groups that shrink together, slices that cannot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coupling {
    /// Coupled slices.
    pub groups: Vec<CouplingGroup>,
    /// Slices no shrink may touch.
    pub fixed: Vec<FixedSlice>,
}
