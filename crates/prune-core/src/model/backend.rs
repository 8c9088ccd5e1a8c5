//! The tensor math a framework must provide.
//!
//! Algorithms are written once in this crate against this trait. A backend implements the
//! small required set; composite operations have host-side defaults (through `Vec<f32>`) that a
//! backend may override with a native fast path.

use super::host::Reduce;
use crate::error::{PruneError, Result};

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
            super::host::select_axis(&data, &shape, axis, indices).map_err(|reason| {
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
        super::host::reduce_blocks(&data, shape[0], shape[1], rows, cols, how).map_err(|reason| {
            PruneError::Shape {
                weight: "reduce_blocks".into(),
                shape,
                reason,
            }
        })
    }
}
