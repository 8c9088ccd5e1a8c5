//! The tensor math a framework must provide.
//!
//! Algorithms are written once in this crate against this trait. A backend implements the
//! small required set; the operations a training step runs (mask application, the group-lasso
//! gradient term, importance accumulation) have host defaults in [`super::host`] that a backend
//! overrides with the framework's own operations, so a step reads nothing back from the device.

use super::access::WeightInfo;
use super::host::{add_group_lasso_gradient, view_2d};
use super::layout::{stored_blocks, try_to_canonical, try_to_stored};
use crate::error::{PruneError, Result};

/// Tensor math over one framework's tensors. Shapes are row-major.
///
/// The backend value is reached through [`Model::backend`](super::Model::backend), so it may
/// hold state (a device, a stream, a session); a session keeps a clone of it.
pub trait TensorBackend: Clone {
    /// A dense f32 tensor of the framework (any rank, with its device).
    type Tensor: Clone;
    /// A pruning mask of at most one byte per element, in the form the framework applies
    /// fastest (burn and torch: a u8 0/1 tensor on the weight's device).
    type Mask: Clone;

    /// Short backend name for messages, e.g. `burn`.
    fn name(&self) -> &'static str;

    /// The tensor's shape.
    fn shape(&self, t: &Self::Tensor) -> Vec<usize>;

    /// Copies the values out, row-major (a device-to-host copy).
    fn to_vec(&self, t: &Self::Tensor) -> Result<Vec<f32>>;

    /// Calls `f` with the tensor's values, row-major. A backend whose tensor lives in host
    /// memory lends its own buffer (no copy); the default copies through `to_vec`.
    fn with_host_values<R>(&self, t: &Self::Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
        let values = self.to_vec(t)?;
        Ok(f(&values))
    }

    /// A new tensor of the given shape, on the same device as `like`.
    #[allow(clippy::wrong_self_convention)]
    fn from_vec(
        &self,
        like: &Self::Tensor,
        data: Vec<f32>,
        shape: &[usize],
    ) -> Result<Self::Tensor>;

    /// A mask for tensors shaped like `like`, keeping the positions where `keep` is 1 and
    /// pruning those where it is 0 (row-major, in `like`'s own layout). The flags are given by
    /// value, so a backend may take the buffer as its mask without a copy.
    fn mask_from_keep(&self, like: &Self::Tensor, keep: Vec<u8>) -> Result<Self::Mask>;

    /// The mask's keep flags, row-major (a device-to-host copy).
    fn mask_to_keep(&self, mask: &Self::Mask) -> Result<Vec<bool>>;

    /// Elements the mask covers.
    fn mask_len(&self, mask: &Self::Mask) -> usize;

    /// `t` with masked positions set to zero (a new tensor value).
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

    /// Bytes a mask holds on the framework's side.
    fn mask_bytes(&self, mask: &Self::Mask) -> usize {
        self.mask_len(mask)
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

    /// Group lasso's gradient for one weight (stored layout): `grad + alpha * w / ||block||_2`
    /// over `block` = (rows, cols) tiles of the canonical 2-D view (nothing where a block's norm
    /// is 0), then zero wherever `mask` prunes. `w` and `grad` are shaped as `info` stores them.
    /// `grad` is the model's own gradient, which the result replaces: a backend may write the
    /// result into it in place and return it (torch on CPU does, in one pass).
    fn group_lasso_gradient(
        &self,
        info: &WeightInfo,
        w: &Self::Tensor,
        grad: &Self::Tensor,
        mask: Option<&Self::Mask>,
        block: (usize, usize),
        alpha: f32,
    ) -> Result<Self::Tensor> {
        host_group_lasso_gradient(self, info, w, grad, mask, block, alpha)
    }
}

/// The host form of [`TensorBackend::group_lasso_gradient`], for any layout: reads `w`, `grad`
/// and `mask` back, computes on the stored buffer where its tiles are rectangles (else on the
/// canonical view) and uploads the result. Native overrides fall back to it for layouts they do
/// not map.
pub fn host_group_lasso_gradient<B: TensorBackend>(
    be: &B,
    info: &WeightInfo,
    w: &B::Tensor,
    grad: &B::Tensor,
    mask: Option<&B::Mask>,
    block: (usize, usize),
    alpha: f32,
) -> Result<B::Tensor> {
    let shape_error = |reason: String| PruneError::Shape {
        weight: info.name.clone(),
        shape: info.shape.clone(),
        reason,
    };
    let (wv, mut g) = (be.to_vec(w)?, be.to_vec(grad)?);
    if wv.len() != info.numel() || g.len() != info.numel() {
        return Err(shape_error(format!(
            "{} weight values and {} gradient values for {} elements",
            wv.len(),
            g.len(),
            info.numel()
        )));
    }
    let keep = match mask {
        Some(m) => {
            let keep = be.mask_to_keep(m)?;
            if keep.len() != info.numel() {
                return Err(shape_error(format!("a mask of {} elements", keep.len())));
            }
            Some(keep.into_iter().map(u8::from).collect::<Vec<u8>>())
        }
        None => None,
    };
    if let Some(view) = stored_blocks(info, block) {
        add_group_lasso_gradient(&wv, &mut g, keep.as_deref(), view, alpha).map_err(shape_error)?;
        return be.from_vec(grad, g, &be.shape(grad));
    }
    let (rows, cols) = view_2d(&info.shape);
    let (br, bc) = block;
    if br == 0 || bc == 0 || rows % br != 0 || cols % bc != 0 {
        return Err(shape_error(format!(
            "a {br}x{bc} block does not divide the 2-D view [{rows}, {cols}]"
        )));
    }
    let wv = try_to_canonical(wv, info.layout, &info.shape).map_err(shape_error)?;
    let mut g = try_to_canonical(g, info.layout, &info.shape).map_err(shape_error)?;
    let keep = keep
        .map(|k| try_to_canonical(k, info.layout, &info.shape))
        .transpose()
        .map_err(shape_error)?;
    let view = [rows / br, br, cols / bc, bc];
    add_group_lasso_gradient(&wv, &mut g, keep.as_deref(), view, alpha).map_err(shape_error)?;
    let stored = try_to_stored(g, info.layout, &info.shape).map_err(shape_error)?;
    be.from_vec(grad, stored, &be.shape(grad))
}
