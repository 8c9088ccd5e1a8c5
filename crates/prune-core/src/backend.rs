//! The tensor operations and model access a framework must provide.
//!
//! Algorithms are written once in this crate against these traits. A backend implements the
//! small required set; composite operations have host-side defaults (through `Vec<f32>`) that a
//! backend may override with a native fast path.

use crate::error::{PruneError, Result};

/// How values of one block are combined into a block score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// Sum of values.
    Sum,
    /// Sum of absolute values.
    L1,
    /// Euclidean norm.
    L2,
    /// Largest absolute value.
    Max,
}

/// Tensor math over one framework's tensors. Shapes are row-major.
pub trait TensorBackend: Default {
    /// A dense f32 tensor of the framework (any rank, with its device).
    type Tensor: Clone;
    /// A pruning mask in the form the framework applies fastest (e.g. a float 0/1 tensor).
    type Mask: Clone;

    /// Short backend name for messages, e.g. `burn`.
    fn name(&self) -> &'static str;

    /// The tensor's shape.
    fn shape(&self, t: &Self::Tensor) -> Vec<usize>;

    /// Copies the values out, row-major.
    fn to_vec(&self, t: &Self::Tensor) -> Result<Vec<f32>>;

    /// A new tensor of the given shape, on the same device as `like`.
    #[allow(clippy::wrong_self_convention)]
    fn from_vec(
        &self,
        like: &Self::Tensor,
        data: Vec<f32>,
        shape: &[usize],
    ) -> Result<Self::Tensor>;

    /// A mask for tensors shaped like `like`, keeping the positions where `keep` is true
    /// (row-major, in `like`'s own layout).
    fn mask_from_keep(&self, like: &Self::Tensor, keep: &[bool]) -> Result<Self::Mask>;

    /// The mask's keep flags, row-major.
    fn mask_to_keep(&self, mask: &Self::Mask) -> Result<Vec<bool>>;

    /// `t` with masked positions set to zero (a new tensor value; the caller writes it back).
    fn apply_mask(&self, t: &Self::Tensor, mask: &Self::Mask) -> Result<Self::Tensor>;

    /// Element-wise product.
    fn mul(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;

    /// Element-wise sum.
    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;

    /// Element-wise absolute value.
    fn abs(&self, t: &Self::Tensor) -> Result<Self::Tensor> {
        let shape = self.shape(t);
        let v = self.to_vec(t)?.into_iter().map(f32::abs).collect();
        self.from_vec(t, v, &shape)
    }

    /// Multiplies every element by `factor`.
    fn scale(&self, t: &Self::Tensor, factor: f32) -> Result<Self::Tensor> {
        let shape = self.shape(t);
        let v = self.to_vec(t)?.into_iter().map(|x| x * factor).collect();
        self.from_vec(t, v, &shape)
    }

    /// Bytes a mask holds (what a session keeps per masked weight).
    fn mask_bytes(&self, mask: &Self::Mask) -> Result<usize> {
        Ok(self.mask_to_keep(mask)?.len() * std::mem::size_of::<f32>())
    }

    /// Number of non-zero elements kept by a mask.
    fn mask_kept(&self, mask: &Self::Mask) -> Result<usize> {
        Ok(self.mask_to_keep(mask)?.iter().filter(|k| **k).count())
    }

    /// Keeps the given indices along `axis` (structured shrinking): the result is smaller.
    fn select(&self, t: &Self::Tensor, axis: usize, indices: &[usize]) -> Result<Self::Tensor> {
        let shape = self.shape(t);
        let data = self.to_vec(t)?;
        let (out, new_shape) =
            crate::host::select_axis(&data, &shape, axis, indices).map_err(|reason| {
                PruneError::Shape {
                    weight: "select".into(),
                    shape: shape.clone(),
                    reason,
                }
            })?;
        self.from_vec(t, out, &new_shape)
    }

    /// Combines `rows` x `cols` blocks of a 2-D tensor `[r, c]` into a `[r/rows, c/cols]` score grid.
    fn reduce_blocks(
        &self,
        t: &Self::Tensor,
        rows: usize,
        cols: usize,
        how: Reduce,
    ) -> Result<Vec<f32>> {
        let shape = self.shape(t);
        if shape.len() != 2 {
            return Err(PruneError::Shape {
                weight: "reduce_blocks".into(),
                shape,
                reason: "needs a 2-D tensor".into(),
            });
        }
        let data = self.to_vec(t)?;
        crate::host::reduce_blocks(&data, shape[0], shape[1], rows, cols, how).map_err(|reason| {
            PruneError::Shape {
                weight: "reduce_blocks".into(),
                shape,
                reason,
            }
        })
    }
}

/// How a framework stores a weight relative to the canonical view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Stored as the canonical [out, in] (or [out, in, kh, kw]), as PyTorch does.
    Canonical,
    /// A 2-D weight stored [in, out] (burn Linear, TF Dense): transposed at the boundary.
    Transposed,
    /// A 4-D conv kernel stored [kh, kw, in, out] (TensorFlow / Keras).
    Hwio,
}

impl Layout {
    /// The stored shape of a weight whose canonical shape is `canonical`.
    pub fn stored_shape(self, canonical: &[usize]) -> Vec<usize> {
        match (self, canonical) {
            (Layout::Transposed, [o, i]) => vec![*i, *o],
            (Layout::Hwio, [o, i, h, w]) => vec![*h, *w, *i, *o],
            _ => canonical.to_vec(),
        }
    }

    /// The canonical shape of a weight stored as `stored`.
    pub fn canonical_shape(self, stored: &[usize]) -> Vec<usize> {
        match (self, stored) {
            (Layout::Transposed, [i, o]) => vec![*o, *i],
            (Layout::Hwio, [h, w, i, o]) => vec![*o, *i, *h, *w],
            _ => stored.to_vec(),
        }
    }
}

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

/// Access to a model's named weights (and, where the framework has them, their gradients).
///
/// Writes are in place: the framework keeps training the same parameter objects, so optimizer
/// state stays bound to them.
pub trait Model {
    /// The tensor math for this model's tensors.
    type Backend: TensorBackend;

    /// The backend value.
    fn backend(&self) -> &Self::Backend;

    /// Every float parameter, in a stable order, with canonical names and shapes.
    fn weights(&self) -> Result<Vec<WeightInfo>>;

    /// The stored tensor of a weight (framework layout).
    fn weight(&self, name: &str) -> Result<<Self::Backend as TensorBackend>::Tensor>;

    /// Writes new values into existing weights, all or none: on error nothing has changed.
    fn set_weights(
        &mut self,
        updates: Vec<(String, <Self::Backend as TensorBackend>::Tensor)>,
    ) -> Result<()>;

    /// Re-applies masks to weights: `w = w * mask` for each pair, in place.
    fn apply_masks(
        &mut self,
        masks: &[(&str, &<Self::Backend as TensorBackend>::Mask)],
    ) -> Result<()> {
        let mut updates = Vec::with_capacity(masks.len());
        for (name, mask) in masks {
            let w = self.weight(name)?;
            updates.push((name.to_string(), self.backend().apply_mask(&w, mask)?));
        }
        self.set_weights(updates)
    }

    /// Replaces weights by tensors of a new shape (structured shrinking), all or none. The
    /// model must keep running with the new shapes: layer sizes such as the number of attention
    /// heads follow from the weights. Optimizer state of a resized weight does not carry over.
    fn resize_weights(
        &mut self,
        updates: Vec<(String, <Self::Backend as TensorBackend>::Tensor)>,
    ) -> Result<()> {
        let _ = updates;
        Err(PruneError::Unsupported {
            op: "resizing weights (structured shrinking)".into(),
            backend: self.backend().name().into(),
        })
    }

    /// Weight slices that must be shrunk together. The default recognises BERT-style encoders
    /// by their Hugging Face names (see [`crate::structure::bert_coupling_groups`]).
    fn coupling_groups(&self) -> Result<Vec<crate::structure::CouplingGroup>> {
        Ok(crate::structure::bert_coupling_groups(&self.weights()?))
    }

    /// Physically shrinks weights: each op keeps its indices along a canonical axis. All
    /// slices are computed before any weight is replaced, so a failure changes nothing.
    fn shrink(&mut self, ops: &[crate::structure::ShrinkOp]) -> Result<()> {
        let weights = self.weights()?;
        let mut updates = Vec::with_capacity(ops.len());
        for op in ops {
            let info = weights
                .iter()
                .find(|w| w.name == op.weight)
                .ok_or_else(|| PruneError::UnknownWeight {
                    weight: op.weight.clone(),
                    candidates: Vec::new(),
                })?;
            let axis = match (info.layout, info.shape.len(), op.axis) {
                (Layout::Transposed, 2, a) => 1 - a.min(1),
                (Layout::Hwio, 4, 0) => 3,
                (Layout::Hwio, 4, 1) => 2,
                (Layout::Hwio, 4, a) => a - 2,
                (_, _, a) => a,
            };
            let t = self.weight(&op.weight)?;
            let smaller = self
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
            updates.push((op.weight.clone(), smaller));
        }
        self.resize_weights(updates)
    }

    /// The gradient of a weight from the last backward pass, if the framework exposes it.
    fn gradient(&self, name: &str) -> Result<Option<<Self::Backend as TensorBackend>::Tensor>> {
        let _ = name;
        Ok(None)
    }

    /// Replaces gradients before the optimizer step, all or none.
    fn set_gradients(
        &mut self,
        updates: Vec<(String, <Self::Backend as TensorBackend>::Tensor)>,
    ) -> Result<()> {
        let _ = updates;
        Err(PruneError::Unsupported {
            op: "writing gradients".into(),
            backend: self.backend().name().into(),
        })
    }
}
