//! A pure-Rust reference backend: plain `Vec<f32>` tensors and a named-weight model.
//!
//! It defines the expected behaviour every framework backend is checked against, and serves tools
//! that prune checkpoints without a framework.

use crate::error::{PruneError, Result};
use crate::model::{Layout, Model, TensorBackend, WeightId, WeightInfo};

/// The reference backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reference;

/// A row-major f32 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct RefTensor {
    /// Values, row-major.
    pub data: Vec<f32>,
    /// Shape.
    pub shape: Vec<usize>,
}

fn shape_error(op: &str, a: &[usize], b: &[usize]) -> PruneError {
    PruneError::Shape {
        weight: op.to_string(),
        shape: a.to_vec(),
        reason: format!("does not match shape {b:?}"),
    }
}

impl Reference {
    fn zip(
        &self,
        op: &str,
        a: &RefTensor,
        b: &RefTensor,
        f: impl Fn(f32, f32) -> f32,
    ) -> Result<RefTensor> {
        if a.shape != b.shape {
            return Err(shape_error(op, &a.shape, &b.shape));
        }
        Ok(RefTensor {
            data: a.data.iter().zip(&b.data).map(|(x, y)| f(*x, *y)).collect(),
            shape: a.shape.clone(),
        })
    }
}

impl TensorBackend for Reference {
    type Tensor = RefTensor;
    type Mask = Vec<bool>;

    fn name(&self) -> &'static str {
        "reference"
    }
    fn shape(&self, t: &RefTensor) -> Vec<usize> {
        t.shape.clone()
    }
    fn to_vec(&self, t: &RefTensor) -> Result<Vec<f32>> {
        Ok(t.data.clone())
    }
    fn with_host_values<R>(&self, t: &RefTensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
        Ok(f(&t.data))
    }
    fn from_vec(&self, _like: &RefTensor, data: Vec<f32>, shape: &[usize]) -> Result<RefTensor> {
        if data.len() != shape.iter().product::<usize>() {
            return Err(PruneError::Shape {
                weight: "from_vec".into(),
                shape: shape.to_vec(),
                reason: format!("{} values given", data.len()),
            });
        }
        Ok(RefTensor {
            data,
            shape: shape.to_vec(),
        })
    }
    fn mask_from_keep(&self, like: &RefTensor, keep: Vec<u8>) -> Result<Vec<bool>> {
        if keep.len() != like.data.len() {
            return Err(shape_error("mask", &[keep.len()], &like.shape));
        }
        Ok(keep.into_iter().map(|k| k != 0).collect())
    }
    fn mask_to_keep(&self, mask: &Vec<bool>) -> Result<Vec<bool>> {
        Ok(mask.clone())
    }
    fn apply_mask(&self, t: &RefTensor, mask: &Vec<bool>) -> Result<RefTensor> {
        if mask.len() != t.data.len() {
            return Err(shape_error("apply_mask", &[mask.len()], &t.shape));
        }
        Ok(RefTensor {
            data: t
                .data
                .iter()
                .zip(mask)
                .map(|(x, k)| if *k { *x } else { 0.0 })
                .collect(),
            shape: t.shape.clone(),
        })
    }
    fn mask_len(&self, mask: &Vec<bool>) -> usize {
        mask.len()
    }
    fn mul(&self, a: &RefTensor, b: &RefTensor) -> Result<RefTensor> {
        self.zip("mul", a, b, |x, y| x * y)
    }
    fn add(&self, a: &RefTensor, b: &RefTensor) -> Result<RefTensor> {
        self.zip("add", a, b, |x, y| x + y)
    }
}

/// One parameter of a [`RefModel`].
#[derive(Debug, Clone)]
pub struct RefParam {
    /// Name, stored shape and layout.
    pub info: WeightInfo,
    /// Stored values (in `info.layout`).
    pub value: RefTensor,
    /// Gradient from the last backward pass.
    pub grad: Option<RefTensor>,
}

/// A model as an ordered list of named parameters.
#[derive(Debug, Clone, Default)]
pub struct RefModel {
    /// The parameters, in order.
    pub params: Vec<RefParam>,
}

impl RefModel {
    /// Adds a weight given in the canonical layout, stored in `layout`.
    pub fn push(
        &mut self,
        name: &str,
        canonical_shape: &[usize],
        canonical: Vec<f32>,
        layout: Layout,
    ) {
        let stored = crate::model::layout::to_stored(canonical, layout, canonical_shape);
        let stored_shape = layout.stored_shape(canonical_shape);
        self.params.push(RefParam {
            info: WeightInfo {
                name: name.into(),
                shape: canonical_shape.to_vec(),
                layout,
            },
            value: RefTensor {
                data: stored,
                shape: stored_shape,
            },
            grad: None,
        });
    }

    fn param(&self, id: WeightId) -> Result<&RefParam> {
        self.params
            .get(id.0)
            .ok_or_else(|| unknown_id(id, self.params.len()))
    }

    fn check_updates(&self, updates: &[(WeightId, RefTensor)]) -> Result<()> {
        for (id, t) in updates {
            let p = self.param(*id)?;
            if p.value.shape != t.shape {
                return Err(PruneError::Shape {
                    weight: p.info.name.clone(),
                    shape: t.shape.clone(),
                    reason: format!("write does not match stored shape {:?}", p.value.shape),
                });
            }
        }
        Ok(())
    }
}

/// A handle past the model's weights.
fn unknown_id(id: WeightId, count: usize) -> PruneError {
    PruneError::UnknownWeight {
        weight: format!("#{}", id.0),
        candidates: vec![format!("the model has {count} weights")],
    }
}

impl Model for RefModel {
    type Backend = Reference;

    fn backend(&self) -> &Reference {
        &Reference
    }
    fn weights(&self) -> Result<Vec<WeightInfo>> {
        Ok(self.params.iter().map(|p| p.info.clone()).collect())
    }
    fn weight_at(&self, id: WeightId) -> Result<RefTensor> {
        Ok(self.param(id)?.value.clone())
    }
    fn set_weights(&mut self, updates: Vec<(WeightId, RefTensor)>) -> Result<()> {
        self.check_updates(&updates)?;
        for (id, t) in updates {
            self.params[id.0].value.data.copy_from_slice(&t.data);
        }
        Ok(())
    }
    fn apply_masks(&mut self, masks: &[(WeightId, &Vec<bool>)]) -> Result<()> {
        for (id, mask) in masks {
            let p = self.param(*id)?;
            if mask.len() != p.value.data.len() {
                return Err(shape_error(&p.info.name, &[mask.len()], &p.value.shape));
            }
        }
        for (id, mask) in masks {
            let data = &mut self.params[id.0].value.data;
            data.iter_mut()
                .zip(mask.iter())
                .filter(|(_, k)| !**k)
                .for_each(|(x, _)| *x = 0.0);
        }
        Ok(())
    }
    fn resize_weights(&mut self, updates: Vec<(WeightId, RefTensor)>) -> Result<()> {
        for (id, t) in &updates {
            let p = self.param(*id)?;
            if t.shape.len() != p.value.shape.len() {
                return Err(PruneError::Shape {
                    weight: p.info.name.clone(),
                    shape: t.shape.clone(),
                    reason: format!(
                        "a resize keeps the rank of stored shape {:?}",
                        p.value.shape
                    ),
                });
            }
        }
        for (id, t) in updates {
            let p = &mut self.params[id.0];
            p.info.shape = p.info.layout.canonical_shape(&t.shape);
            p.value = t;
            p.grad = None;
        }
        Ok(())
    }
    fn gradient_at(&self, id: WeightId) -> Result<Option<RefTensor>> {
        Ok(self.param(id)?.grad.clone())
    }
    fn set_gradients(&mut self, updates: Vec<(WeightId, RefTensor)>) -> Result<()> {
        self.check_updates(&updates)?;
        for (id, t) in updates {
            self.params[id.0].grad = Some(t);
        }
        Ok(())
    }
}
