//! Access to a model's named weights: the trait a framework's model wrapper implements.

use super::backend::TensorBackend;
use super::layout::Layout;
use super::shrink::{CouplingGroup, ShrinkOp};
use crate::error::{PruneError, Result};

/// A named weight of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightInfo {
    /// Canonical name, e.g. `fc1.weight`.
    pub name: String,
    /// Shape in the canonical view ([out, in] for 2-D).
    pub shape: Vec<usize>,
    /// How the framework stores it.
    pub layout: Layout,
}

impl WeightInfo {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A weight's handle: its position in [`Model::weights`]. Resolved from a name once, when a
/// session binds, and valid for the model's life (a resize changes shapes, not positions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WeightId(pub usize);

/// Access to a model's named weights (and, where the framework has them, their gradients).
///
/// Writes are in place: the framework keeps training the same parameter objects, so optimizer
/// state stays bound to them. Per-step methods take [`WeightId`]s, so a training step looks
/// nothing up by name.
pub trait Model {
    /// The tensor math for this model's tensors.
    type Backend: TensorBackend;

    /// The backend value.
    fn backend(&self) -> &Self::Backend;

    /// Every float parameter, in a stable order, with canonical names and shapes.
    fn weights(&self) -> Result<Vec<WeightInfo>>;

    /// The handle of a named weight; an unknown name is an error naming close matches.
    fn weight_id(&self, name: &str) -> Result<WeightId> {
        let weights = self.weights()?;
        weights
            .iter()
            .position(|w| w.name == name)
            .map(WeightId)
            .ok_or_else(|| {
                let names: Vec<String> = weights.into_iter().map(|w| w.name).collect();
                PruneError::UnknownWeight {
                    weight: name.to_string(),
                    candidates: crate::suggest::closest(name, &names, 3),
                }
            })
    }

    /// The stored tensor of a weight (framework layout).
    fn weight_at(&self, id: WeightId) -> Result<<Self::Backend as TensorBackend>::Tensor>;

    /// The stored tensor of a named weight.
    fn weight(&self, name: &str) -> Result<<Self::Backend as TensorBackend>::Tensor> {
        self.weight_at(self.weight_id(name)?)
    }

    /// Writes new values into existing weights, all or none: on error nothing has changed.
    fn set_weights(
        &mut self,
        updates: Vec<(WeightId, <Self::Backend as TensorBackend>::Tensor)>,
    ) -> Result<()>;

    /// Zeroes what each mask prunes, in place (`w = w * mask`), all or none: every mask is
    /// checked against its weight before any is applied.
    fn apply_masks(
        &mut self,
        masks: &[(WeightId, &<Self::Backend as TensorBackend>::Mask)],
    ) -> Result<()> {
        let mut updates = Vec::with_capacity(masks.len());
        for (id, mask) in masks {
            let w = self.weight_at(*id)?;
            updates.push((*id, self.backend().apply_mask(&w, mask)?));
        }
        self.set_weights(updates)
    }

    /// Replaces weights by tensors of a new shape (structured shrinking), all or none. The
    /// model must keep running with the new shapes: layer sizes such as the number of attention
    /// heads follow from the weights. Optimizer state of a resized weight does not carry over.
    fn resize_weights(
        &mut self,
        updates: Vec<(WeightId, <Self::Backend as TensorBackend>::Tensor)>,
    ) -> Result<()> {
        let _ = updates;
        Err(PruneError::Unsupported {
            op: "resizing weights (structured shrinking)".into(),
            backend: self.backend().name().into(),
        })
    }

    /// Weight slices this model declares must be shrunk together, beyond those the built-in
    /// recognisers of `algo::coupling` find by name. The default declares none.
    fn coupling_groups(&self) -> Result<Vec<CouplingGroup>> {
        Ok(Vec::new())
    }

    /// Physically shrinks weights: each op keeps its indices along a canonical axis. Several
    /// ops on one weight (a conv losing filters to its own pruner and input channels to its
    /// producer's) compose; two different keep lists for one axis are refused. All slices are
    /// computed before any weight is replaced, so a failure changes nothing.
    fn shrink(&mut self, ops: &[ShrinkOp]) -> Result<()> {
        shrink_weights(self, ops)
    }

    /// The gradient of a weight from the last backward pass, if the framework exposes it.
    fn gradient_at(
        &self,
        id: WeightId,
    ) -> Result<Option<<Self::Backend as TensorBackend>::Tensor>> {
        let _ = id;
        Ok(None)
    }

    /// The gradient of a named weight (see [`gradient_at`](Self::gradient_at)).
    fn gradient(&self, name: &str) -> Result<Option<<Self::Backend as TensorBackend>::Tensor>> {
        self.gradient_at(self.weight_id(name)?)
    }

    /// Replaces gradients before the optimizer step, all or none.
    fn set_gradients(
        &mut self,
        updates: Vec<(WeightId, <Self::Backend as TensorBackend>::Tensor)>,
    ) -> Result<()> {
        let _ = updates;
        Err(PruneError::Unsupported {
            op: "writing gradients".into(),
            backend: self.backend().name().into(),
        })
    }
}

/// What [`Model::shrink`] does by default, for a model that overrides it to prepare first
/// (e.g. settle framework state) and then shrink as every model does.
pub fn shrink_weights<M: Model + ?Sized>(model: &mut M, ops: &[ShrinkOp]) -> Result<()> {
    let weights = model.weights()?;
    let mut updates: Vec<(WeightId, <M::Backend as TensorBackend>::Tensor)> =
        Vec::with_capacity(ops.len());
    let mut applied: Vec<(usize, usize, &[usize])> = Vec::with_capacity(ops.len());
    for op in ops {
        let index = weights
            .iter()
            .position(|w| w.name == op.weight)
            .ok_or_else(|| PruneError::UnknownWeight {
                weight: op.weight.clone(),
                candidates: Vec::new(),
            })?;
        let info = &weights[index];
        let shape_error = |reason: String| PruneError::Shape {
            weight: op.weight.clone(),
            shape: info.shape.clone(),
            reason,
        };
        if let Some((_, _, keep)) = applied
            .iter()
            .find(|(i, axis, _)| *i == index && *axis == op.axis)
        {
            if *keep == op.keep.as_slice() {
                continue;
            }
            return Err(shape_error(format!(
                "two shrinks of axis {} disagree on the kept indices",
                op.axis
            )));
        }
        let axis = info
            .layout
            .stored_axis(info.shape.len(), op.axis)
            .map_err(shape_error)?;
        let slot = updates.iter().position(|(id, _)| id.0 == index);
        let t = match slot {
            Some(s) => updates[s].1.clone(),
            None => model.weight_at(WeightId(index))?,
        };
        let smaller = model
            .backend()
            .select(&t, axis, &op.keep)
            .map_err(|e| match e {
                PruneError::Shape { shape, reason, .. } => PruneError::Shape {
                    weight: op.weight.clone(),
                    shape,
                    reason,
                },
                other => other,
            })?;
        match slot {
            Some(s) => updates[s].1 = smaller,
            None => updates.push((WeightId(index), smaller)),
        }
        applied.push((index, op.axis, &op.keep));
    }
    model.resize_weights(updates)
}
