//! Layers seen through their weight names: a stem (`layer1.0.conv1`) and what its `weight` is.

use crate::model::{Slice, WeightInfo};

/// What a layer is, from the rank of its `weight` and its siblings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `[out, in, k...]`: a 1-, 2- or 3-D convolution.
    Conv,
    /// `[out, in]`.
    Linear,
    /// A batch norm: a 1-D `weight` beside a `running_mean` buffer.
    Norm,
}

/// One layer of a model: the stem of its parameter names and its `weight`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Layer<'w> {
    pub stem: &'w str,
    pub kind: Kind,
    pub weight: &'w WeightInfo,
}

impl Layer<'_> {
    /// Output channels (rows).
    pub fn outputs(&self) -> usize {
        self.weight.shape[0]
    }

    /// Input channels (columns); the channel count of a norm.
    pub fn inputs(&self) -> usize {
        self.weight
            .shape
            .get(1)
            .copied()
            .unwrap_or(self.weight.shape[0])
    }

    /// The weight's canonical name.
    pub fn name(&self) -> &str {
        &self.weight.name
    }
}

/// The stem of a parameter name: `a.b.weight` -> `a.b`; `weight` -> ``.
pub(super) fn stem_of(name: &str) -> &str {
    name.rsplit_once('.').map_or("", |(s, _)| s)
}

/// The parent module of a stem: `a.b` -> `a`; `a` -> ``.
pub(super) fn parent_of(stem: &str) -> &str {
    stem.rsplit_once('.').map_or("", |(p, _)| p)
}

/// The layer whose parameters are `{stem}.*`, if its `weight` is a conv, linear or batch norm.
pub(super) fn layer<'w>(stem: &'w str, weights: &'w [WeightInfo]) -> Option<Layer<'w>> {
    let name = format!("{stem}.weight");
    let weight = weights.iter().find(|w| w.name == name)?;
    let kind = match weight.shape.len() {
        3..=5 => Kind::Conv,
        2 => Kind::Linear,
        1 if weights
            .iter()
            .any(|w| w.name == format!("{stem}.running_mean")) =>
        {
            Kind::Norm
        }
        _ => return None,
    };
    Some(Layer { stem, kind, weight })
}

/// Every per-channel parameter of a batch norm (`weight`, `bias`, `running_mean`,
/// `running_var`), axis 0. These are buffers on both frameworks, and must shrink with the conv
/// before the norm.
pub(super) fn norm_slices(norm: &Layer<'_>, weights: &[WeightInfo]) -> Vec<Slice> {
    weights
        .iter()
        .filter(|w| stem_of(&w.name) == norm.stem && w.shape.len() == 1)
        .filter(|w| w.shape[0] == norm.outputs())
        .map(|w| Slice::new(w.name.clone(), 0))
        .collect()
}
