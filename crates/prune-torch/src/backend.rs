//! [`TensorBackend`] over tch tensors (f32, any device).

use prune_core::{PruneError, Result, TensorBackend};
use tch::{Kind, Tensor};

/// The libtorch backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Torch;

/// A tch tensor. Cloning is shallow (shares storage); backend operations never write in place.
#[derive(Debug)]
pub struct TorchTensor(pub Tensor);

impl Clone for TorchTensor {
    fn clone(&self) -> Self {
        TorchTensor(self.0.shallow_clone())
    }
}

/// A 0/1 f32 mask (multiplying by f32 is several times faster than by bool in libtorch).
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
    fn from_vec(&self, like: &TorchTensor, data: Vec<f32>, shape: &[usize]) -> Result<TorchTensor> {
        Ok(TorchTensor(shaped(&data, shape, &like.0)?))
    }
    fn mask_from_keep(&self, like: &TorchTensor, keep: &[bool]) -> Result<TorchMask> {
        let values: Vec<f32> = keep.iter().map(|k| if *k { 1.0 } else { 0.0 }).collect();
        Ok(TorchMask(shaped(&values, &dims(&like.0), &like.0)?))
    }
    fn mask_to_keep(&self, mask: &TorchMask) -> Result<Vec<bool>> {
        Ok(host_f32(&mask.0)?.into_iter().map(|x| x != 0.0).collect())
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
    fn scale(&self, t: &TorchTensor, factor: f32) -> Result<TorchTensor> {
        fallible("scale", tch::no_grad(|| t.0.f_mul_scalar(factor as f64)))
    }
    fn mask_bytes(&self, mask: &TorchMask) -> Result<usize> {
        Ok(mask.0.numel() * mask.0.kind().elt_size_in_bytes())
    }
    fn mask_kept(&self, mask: &TorchMask) -> Result<usize> {
        let n = mask
            .0
            .f_count_nonzero(None::<i64>)
            .and_then(|n| n.f_int64_value(&[]))
            .map_err(|e| torch_error(format!("counting a mask: {e}")))?;
        Ok(n as usize)
    }
}
