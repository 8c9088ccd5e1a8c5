//! [`TensorBackend`] over burn tensors (any burn device; autodiff is dropped for pruning math).

use burn::tensor::{Tensor, TensorData};
use prune_core::{PruneError, Result, TensorBackend};

/// The burn backend. Tensors are held flattened (1-D, without autodiff) with their logical shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Burn;

/// A burn tensor, flattened, with its logical shape.
#[derive(Debug, Clone)]
pub struct BurnTensor {
    /// The values as a 1-D tensor on the parameter's (inner) device.
    pub flat: Tensor<1>,
    /// Logical row-major shape.
    pub shape: Vec<usize>,
}

/// A 0/1 float mask, flattened, on the parameter's (inner) device.
#[derive(Debug, Clone)]
pub struct BurnMask {
    /// 1.0 where kept, 0.0 where pruned.
    pub flat: Tensor<1>,
}

pub(crate) fn backend_error(message: impl std::fmt::Display) -> PruneError {
    PruneError::Backend {
        backend: "burn".into(),
        message: message.to_string(),
    }
}

fn check_len(op: &str, got: usize, shape: &[usize]) -> Result<()> {
    let n: usize = shape.iter().product();
    if got != n {
        return Err(PruneError::Shape {
            weight: op.into(),
            shape: shape.to_vec(),
            reason: format!("{got} values given"),
        });
    }
    Ok(())
}

fn same_shape(op: &str, a: &BurnTensor, b: &BurnTensor) -> Result<()> {
    if a.shape != b.shape {
        return Err(PruneError::Shape {
            weight: op.into(),
            shape: a.shape.clone(),
            reason: format!("does not match shape {:?}", b.shape),
        });
    }
    Ok(())
}

/// Copies a 1-D burn tensor to the host as f32.
pub(crate) fn host_f32(t: &Tensor<1>) -> Result<Vec<f32>> {
    t.to_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| backend_error(format!("reading tensor data: {e:?}")))
}

impl TensorBackend for Burn {
    type Tensor = BurnTensor;
    type Mask = BurnMask;

    fn name(&self) -> &'static str {
        "burn"
    }
    fn shape(&self, t: &BurnTensor) -> Vec<usize> {
        t.shape.clone()
    }
    fn to_vec(&self, t: &BurnTensor) -> Result<Vec<f32>> {
        host_f32(&t.flat)
    }
    fn from_vec(&self, like: &BurnTensor, data: Vec<f32>, shape: &[usize]) -> Result<BurnTensor> {
        check_len("from_vec", data.len(), shape)?;
        let n = data.len();
        let flat = Tensor::<1>::from_data(TensorData::new(data, [n]), &like.flat.device());
        Ok(BurnTensor {
            flat,
            shape: shape.to_vec(),
        })
    }
    fn mask_from_keep(&self, like: &BurnTensor, keep: &[bool]) -> Result<BurnMask> {
        check_len("mask", keep.len(), &like.shape)?;
        let values: Vec<f32> = keep.iter().map(|k| if *k { 1.0 } else { 0.0 }).collect();
        let flat =
            Tensor::<1>::from_data(TensorData::new(values, [keep.len()]), &like.flat.device());
        Ok(BurnMask { flat })
    }
    fn mask_to_keep(&self, mask: &BurnMask) -> Result<Vec<bool>> {
        Ok(host_f32(&mask.flat)?
            .into_iter()
            .map(|x| x != 0.0)
            .collect())
    }
    fn apply_mask(&self, t: &BurnTensor, mask: &BurnMask) -> Result<BurnTensor> {
        if t.flat.dims()[0] != mask.flat.dims()[0] {
            return Err(PruneError::Shape {
                weight: "apply_mask".into(),
                shape: t.shape.clone(),
                reason: format!("mask has {} elements", mask.flat.dims()[0]),
            });
        }
        Ok(BurnTensor {
            flat: t.flat.clone() * mask.flat.clone(),
            shape: t.shape.clone(),
        })
    }
    fn mask_bytes(&self, mask: &BurnMask) -> Result<usize> {
        Ok(mask.flat.dims()[0] * std::mem::size_of::<f32>())
    }
    fn mul(&self, a: &BurnTensor, b: &BurnTensor) -> Result<BurnTensor> {
        same_shape("mul", a, b)?;
        Ok(BurnTensor {
            flat: a.flat.clone() * b.flat.clone(),
            shape: a.shape.clone(),
        })
    }
    fn add(&self, a: &BurnTensor, b: &BurnTensor) -> Result<BurnTensor> {
        same_shape("add", a, b)?;
        Ok(BurnTensor {
            flat: a.flat.clone() + b.flat.clone(),
            shape: a.shape.clone(),
        })
    }
    fn abs(&self, t: &BurnTensor) -> Result<BurnTensor> {
        Ok(BurnTensor {
            flat: t.flat.clone().abs(),
            shape: t.shape.clone(),
        })
    }
    fn scale(&self, t: &BurnTensor, factor: f32) -> Result<BurnTensor> {
        Ok(BurnTensor {
            flat: t.flat.clone().mul_scalar(factor),
            shape: t.shape.clone(),
        })
    }
}
