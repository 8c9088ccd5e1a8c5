//! [`TensorBackend`] over tch tensors (f32, any device).

use prune_core::{PruneError, Result, TensorBackend};
use tch::{Kind, Tensor};

/// The libtorch backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Torch;

use prune_core::model::host::{add_group_lasso_gradient, zero_pruned_in_place};
use prune_core::model::host_group_lasso_gradient;
use prune_core::model::layout::stored_blocks;
use prune_core::WeightInfo;

/// A tch tensor. Cloning is shallow (shares storage); backend operations never write in place.
#[derive(Debug)]
pub struct TorchTensor(pub Tensor);

impl Clone for TorchTensor {
    fn clone(&self) -> Self {
        TorchTensor(self.0.shallow_clone())
    }
}

/// A u8 keep mask in the weight's stored shape (1 kept, 0 pruned): one byte per element. On
/// CPU the pruned values are zeroed in place in libtorch's memory; elsewhere the weight is
/// multiplied in place by it (`mul_`, faster than a bool mask or `masked_fill_`).
#[derive(Debug)]
pub struct TorchMask(pub Tensor);

impl Clone for TorchMask {
    fn clone(&self) -> Self {
        TorchMask(self.0.shallow_clone())
    }
}

pub(crate) fn torch_error(message: impl std::fmt::Display) -> PruneError {
    PruneError::Backend {
        backend: "torch".into(),
        message: message.to_string(),
    }
}

fn dims(t: &Tensor) -> Vec<usize> {
    t.size().iter().map(|&d| d as usize).collect()
}

fn check_same(op: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.size() != b.size() {
        return Err(PruneError::Shape {
            weight: op.into(),
            shape: dims(a),
            reason: format!("does not match shape {:?}", dims(b)),
        });
    }
    Ok(())
}

/// Copies a tensor's values to the host as f32, row-major.
pub(crate) fn host_f32(t: &Tensor) -> Result<Vec<f32>> {
    let read = |e: tch::TchError| torch_error(format!("reading tensor data: {e}"));
    let flat = t
        .f_detach()
        .and_then(|t| t.f_to_device(tch::Device::Cpu))
        .and_then(|t| t.f_to_kind(Kind::Float))
        .and_then(|t| t.f_contiguous())
        .and_then(|t| t.f_view([-1]))
        .map_err(read)?;
    Vec::<f32>::try_from(&flat).map_err(read)
}

/// A libtorch result as a tensor, or an error naming the operation (e.g. operands on two
/// devices), instead of a panic.
fn fallible(op: &str, r: std::result::Result<Tensor, tch::TchError>) -> Result<TorchTensor> {
    r.map(TorchTensor)
        .map_err(|e| torch_error(format!("{op}: {e}")))
}

fn shaped(data: &[f32], shape: &[usize], like: &Tensor) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    if data.len() != n {
        return Err(PruneError::Shape {
            weight: "from_vec".into(),
            shape: shape.to_vec(),
            reason: format!("{} values given", data.len()),
        });
    }
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(data)
        .f_reshape(dims.as_slice())
        .and_then(|t| t.f_to_device(like.device()))
        .map_err(|e| torch_error(format!("making a tensor of shape {shape:?}: {e}")))
}

impl TensorBackend for Torch {
    type Tensor = TorchTensor;
    type Mask = TorchMask;

    fn name(&self) -> &'static str {
        "torch"
    }
    fn shape(&self, t: &TorchTensor) -> Vec<usize> {
        dims(&t.0)
    }
    fn to_vec(&self, t: &TorchTensor) -> Result<Vec<f32>> {
        host_f32(&t.0)
    }
    fn with_host_values<R>(&self, t: &TorchTensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
        let t = &t.0;
        let lendable =
            t.device() == tch::Device::Cpu && t.kind() == Kind::Float && t.is_contiguous();
        if !lendable {
            return Ok(f(&host_f32(t)?));
        }
        let n = t.numel();
        if n == 0 {
            return Ok(f(&[]));
        }
        // SAFETY: `t` is a contiguous f32 CPU tensor of `n` elements, so its data pointer is
        // valid and aligned for `n` f32 values; `t` (borrowed for the whole call) keeps the
        // storage alive, and nothing writes to it while `f` runs: the session holds the model
        // exclusively during a mask update.
        let values = unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, n) };
        Ok(f(values))
    }
    fn from_vec(&self, like: &TorchTensor, data: Vec<f32>, shape: &[usize]) -> Result<TorchTensor> {
        Ok(TorchTensor(shaped(&data, shape, &like.0)?))
    }
    fn mask_from_keep(&self, like: &TorchTensor, keep: Vec<u8>) -> Result<TorchMask> {
        let shape = dims(&like.0);
        if keep.len() != shape.iter().product::<usize>() {
            return Err(PruneError::Shape {
                weight: "mask".into(),
                shape,
                reason: format!("{} keep flags given", keep.len()),
            });
        }
        let size: Vec<i64> = like.0.size();
        Tensor::from_slice(&keep)
            .f_reshape(size.as_slice())
            .and_then(|t| t.f_to_device(like.0.device()))
            .map(TorchMask)
            .map_err(|e| torch_error(format!("making a mask of shape {shape:?}: {e}")))
    }
    fn mask_to_keep(&self, mask: &TorchMask) -> Result<Vec<bool>> {
        let read = |e: tch::TchError| torch_error(format!("reading a mask: {e}"));
        let flags = mask
            .0
            .f_to_device(tch::Device::Cpu)
            .and_then(|t| t.f_contiguous())
            .and_then(|t| t.f_view([-1]))
            .map_err(read)?;
        Ok(Vec::<u8>::try_from(&flags)
            .map_err(read)?
            .into_iter()
            .map(|f| f != 0)
            .collect())
    }
    fn mask_len(&self, mask: &TorchMask) -> usize {
        mask.0.numel()
    }
    fn mask_bytes(&self, mask: &TorchMask) -> usize {
        mask.0.numel() * mask.0.kind().elt_size_in_bytes()
    }
    fn apply_mask(&self, t: &TorchTensor, mask: &TorchMask) -> Result<TorchTensor> {
        check_same("apply_mask", &t.0, &mask.0)?;
        fallible("apply_mask", tch::no_grad(|| t.0.f_mul(&mask.0)))
    }
    fn mul(&self, a: &TorchTensor, b: &TorchTensor) -> Result<TorchTensor> {
        check_same("mul", &a.0, &b.0)?;
        fallible("mul", tch::no_grad(|| a.0.f_mul(&b.0)))
    }
    fn add(&self, a: &TorchTensor, b: &TorchTensor) -> Result<TorchTensor> {
        check_same("add", &a.0, &b.0)?;
        fallible("add", tch::no_grad(|| a.0.f_add(&b.0)))
    }
    fn abs(&self, t: &TorchTensor) -> Result<TorchTensor> {
        fallible("abs", tch::no_grad(|| t.0.f_abs()))
    }
    fn group_lasso_gradient(
        &self,
        info: &WeightInfo,
        w: &TorchTensor,
        grad: &TorchTensor,
        mask: Option<&TorchMask>,
        block: (usize, usize),
        alpha: f32,
    ) -> Result<TorchTensor> {
        let Some(view) = stored_blocks(info, block) else {
            return host_group_lasso_gradient(self, info, w, grad, mask, block, alpha);
        };
        check_same("group_lasso_gradient", &w.0, &grad.0)?;
        if let Some(m) = mask {
            check_same("group_lasso_gradient", &w.0, &m.0)?;
        }
        if let Some(done) = lasso_on_cpu_buffers(info, w, grad, mask, view, alpha)? {
            return Ok(done);
        }
        let view: Vec<i64> = view.iter().map(|&d| d as i64).collect();
        let failed = |e: tch::TchError| torch_error(format!("group lasso on `{}`: {e}", info.name));
        tch::no_grad(|| {
            let w4 = w.0.f_reshape(view.as_slice())?;
            let norms = w4
                .f_square()?
                .f_sum_dim_intlist([3i64, 1].as_slice(), true, Kind::Float)?
                .f_sqrt()?;
            // A zero-norm block holds only zeros, so dividing it by 1 adds nothing, as the
            // host does.
            let safe = norms.f_masked_fill(&norms.f_eq(0.0)?, 1.0)?;
            // alpha / norm per block, then g + w * that in one op: a broadcast division over
            // the whole weight is several times slower in libtorch than a broadcast multiply.
            let scale = safe.f_reciprocal()?.f_mul_scalar(alpha as f64)?;
            let mut g = grad.0.f_reshape(view.as_slice())?.f_addcmul(&w4, &scale)?;
            if let Some(m) = mask {
                let _ = g.f_mul_(&m.0.f_reshape(view.as_slice())?)?;
            }
            g.f_reshape(grad.0.size().as_slice())
        })
        .map(TorchTensor)
        .map_err(failed)
    }
}

/// Whether `t` is a contiguous CPU tensor of `kind`, whose memory can be read as a slice.
fn on_cpu_as(t: &Tensor, kind: Kind) -> bool {
    t.device() == tch::Device::Cpu && t.kind() == kind && t.is_contiguous() && t.numel() > 0
}

/// Zeroes the positions `mask` prunes in `t`, in place in libtorch's own CPU memory, in one
/// pass split over the cores. `false` (nothing done) when `t` is not a contiguous CPU f32
/// tensor, the mask not a contiguous CPU u8 tensor, or their sizes differ.
pub(crate) fn zero_pruned_on_cpu(t: &Tensor, mask: &TorchMask) -> bool {
    let cpu = on_cpu_as(t, Kind::Float)
        && on_cpu_as(&mask.0, Kind::Uint8)
        && t.numel() == mask.0.numel()
        && t.data_ptr() != mask.0.data_ptr();
    if !cpu {
        return false;
    }
    let n = t.numel();
    // SAFETY: both are contiguous CPU tensors of `n` elements of the kinds read here (checked
    // above), so their data pointers are valid and aligned for `n` values, and the borrowed
    // tensors keep their storage alive for the call. The mask is a u8 tensor of its own, so the
    // two do not overlap; the session holds the model, so nothing else touches the weight.
    let (values, keep) = unsafe {
        (
            std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, n),
            std::slice::from_raw_parts(mask.0.data_ptr() as *const u8, n),
        )
    };
    zero_pruned_in_place(values, keep).is_ok()
}

/// Group lasso on CPU tensors, in one fused pass over libtorch's own memory: the term and the
/// mask are written into `grad` in place, and `grad` is returned (the session sets it as the
/// gradient, which then costs nothing). `None` when a tensor is not a contiguous CPU tensor of
/// the expected kind, or `grad` shares memory with `w`.
fn lasso_on_cpu_buffers(
    info: &WeightInfo,
    w: &TorchTensor,
    grad: &TorchTensor,
    mask: Option<&TorchMask>,
    view: [usize; 4],
    alpha: f32,
) -> Result<Option<TorchTensor>> {
    let cpu = on_cpu_as(&w.0, Kind::Float)
        && on_cpu_as(&grad.0, Kind::Float)
        && mask.is_none_or(|m| on_cpu_as(&m.0, Kind::Uint8))
        && w.0.data_ptr() != grad.0.data_ptr();
    if !cpu {
        return Ok(None);
    }
    let n = w.0.numel();
    // SAFETY: `w`, `grad` and the mask are contiguous CPU tensors of `n` elements (checked
    // above and by the callers' shape checks) of the kinds read here, so their data pointers are
    // valid and aligned for `n` values; the borrowed tensors keep their storage alive for the
    // call. `grad` does not share memory with `w` (checked) nor with the mask (a u8 tensor of its
    // own), and nothing else touches the gradient while the session holds the model.
    let (wv, gv, keep) = unsafe {
        (
            std::slice::from_raw_parts(w.0.data_ptr() as *const f32, n),
            std::slice::from_raw_parts_mut(grad.0.data_ptr() as *mut f32, n),
            mask.map(|m| std::slice::from_raw_parts(m.0.data_ptr() as *const u8, n)),
        )
    };
    add_group_lasso_gradient(wv, gv, keep, view, alpha).map_err(|reason| PruneError::Shape {
        weight: info.name.clone(),
        shape: info.shape.clone(),
        reason,
    })?;
    Ok(Some(grad.clone()))
}
