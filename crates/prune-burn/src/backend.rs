//! [`TensorBackend`] over burn tensors (any burn device; autodiff is dropped for pruning math).

use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::{DType, Int, Tensor, TensorData};
use prune_core::model::host::group_lasso_gradient_into;
use prune_core::model::host_group_lasso_gradient;
use prune_core::model::layout::stored_blocks;
use prune_core::{PruneError, Result, TensorBackend, WeightInfo};

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

/// A one-byte-per-element mask, flattened, on the parameter's (inner) device.
#[derive(Debug, Clone)]
pub struct BurnMask {
    /// 1 where the element is kept, 0 where it is pruned, as u8. On burn's CPU device (flex)
    /// applied by one pass over the weight's own memory; elsewhere by multiplying with its f32
    /// form, made per use (faster than `mask_fill` with a bool mask), so the mask itself stays
    /// at one byte per element.
    pub keep: Tensor<1, Int>,
}

impl BurnMask {
    /// Elements the mask covers.
    pub fn len(&self) -> usize {
        self.keep.dims()[0]
    }

    /// Whether the mask covers no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
    fn with_host_values<R>(&self, t: &BurnTensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
        if let Some(values) = on_flex(&t.flat) {
            if let Some(v) = values.as_slice::<f32>() {
                return Ok(f(v));
            }
        }
        Ok(f(&host_f32(&t.flat)?))
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
    fn mask_from_keep(&self, like: &BurnTensor, keep: Vec<u8>) -> Result<BurnMask> {
        check_len("mask", keep.len(), &like.shape)?;
        let n = keep.len();
        // Made as u8 from the u8 flags: no wider integer in between.
        let keep = Tensor::<1, Int>::from_data(
            TensorData::new(keep, [n]),
            (&like.flat.device(), DType::U8),
        );
        Ok(BurnMask { keep })
    }
    fn mask_to_keep(&self, mask: &BurnMask) -> Result<Vec<bool>> {
        let flags = mask
            .keep
            .to_data()
            .convert::<u8>()
            .try_to_vec::<u8>()
            .map_err(|e| backend_error(format!("reading a mask: {e:?}")))?;
        Ok(flags.into_iter().map(|f| f != 0).collect())
    }
    fn mask_len(&self, mask: &BurnMask) -> usize {
        mask.len()
    }
    fn mask_bytes(&self, mask: &BurnMask) -> usize {
        mask.len() * mask.keep.dtype().size()
    }
    fn apply_mask(&self, t: &BurnTensor, mask: &BurnMask) -> Result<BurnTensor> {
        if t.flat.dims()[0] != mask.len() {
            return Err(PruneError::Shape {
                weight: "apply_mask".into(),
                shape: t.shape.clone(),
                reason: format!("mask has {} elements", mask.len()),
            });
        }
        Ok(BurnTensor {
            flat: t.flat.clone() * mask.keep.clone().float(),
            shape: t.shape.clone(),
        })
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
    fn group_lasso_gradient(
        &self,
        info: &WeightInfo,
        w: &BurnTensor,
        grad: &BurnTensor,
        mask: Option<&BurnMask>,
        block: (usize, usize),
        alpha: f32,
    ) -> Result<BurnTensor> {
        let Some([gr, br, gc, bc]) = stored_blocks(info, block) else {
            return host_group_lasso_gradient(self, info, w, grad, mask, block, alpha);
        };
        let n = gr * br * gc * bc;
        if w.flat.dims()[0] != n || grad.flat.dims()[0] != n || mask.is_some_and(|m| m.len() != n) {
            return Err(PruneError::Shape {
                weight: info.name.clone(),
                shape: info.shape.clone(),
                reason: "weight, gradient and mask differ in size".into(),
            });
        }
        if let Some(g) = lasso_on_flex(info, w, grad, mask, [gr, br, gc, bc], alpha)? {
            return Ok(g);
        }
        let w4: Tensor<4> = w.flat.clone().reshape([gr, br, gc, bc]);
        let norms = w4.clone().square().sum_dim(3).sum_dim(1).sqrt();
        // A zero-norm block holds only zeros, so dividing it by 1 adds nothing, as the host does.
        let safe = norms.clone().mask_fill(norms.equal_elem(0.0), 1.0);
        let term = w4.mul_scalar(alpha) / safe;
        let mut g = grad.flat.clone().reshape([gr, br, gc, bc]) + term;
        if let Some(m) = mask {
            g = g * m.keep.clone().float().reshape([gr, br, gc, bc]);
        }
        Ok(BurnTensor {
            flat: g.reshape([n]),
            shape: grad.shape.clone(),
        })
    }
}

/// The tensor's own storage when it lives on burn's CPU device (flex): a shared handle, no copy.
fn on_flex<K>(t: &Tensor<1, K>) -> Option<FlexTensor>
where
    K: burn::tensor::kind::Basic + burn::tensor::BackendPrimitive<Flex, Primitive = FlexTensor>,
{
    t.clone().try_into_primitive::<Flex>().ok()
}

/// Group lasso on flex tensors, in one fused pass over burn's own memory into a new gradient;
/// `None` when a tensor is not a contiguous flex tensor of the expected type.
fn lasso_on_flex(
    info: &WeightInfo,
    w: &BurnTensor,
    grad: &BurnTensor,
    mask: Option<&BurnMask>,
    view: [usize; 4],
    alpha: f32,
) -> Result<Option<BurnTensor>> {
    let (Some(wt), Some(gt)) = (on_flex(&w.flat), on_flex(&grad.flat)) else {
        return Ok(None);
    };
    let kt = match mask {
        Some(m) => match on_flex(&m.keep) {
            Some(k) => Some(k),
            None => return Ok(None),
        },
        None => None,
    };
    let (Some(wv), Some(gv)) = (wt.as_slice::<f32>(), gt.as_slice::<f32>()) else {
        return Ok(None);
    };
    let keep = match &kt {
        Some(k) => match k.as_slice::<u8>() {
            Some(k) => Some(k),
            None => return Ok(None),
        },
        None => None,
    };
    let mut out = vec![0f32; gv.len()];
    group_lasso_gradient_into(wv, gv, &mut out, keep, view, alpha).map_err(|reason| {
        PruneError::Shape {
            weight: info.name.clone(),
            shape: info.shape.clone(),
            reason,
        }
    })?;
    let n = out.len();
    Ok(Some(BurnTensor {
        flat: Tensor::<1>::from_data(TensorData::new(out, [n]), &grad.flat.device()),
        shape: grad.shape.clone(),
    }))
}

/// `t` with the positions `mask` prunes set to zero. On flex, one pass over burn's own memory:
/// in place when `t` holds its storage alone (a parameter between steps does), else into a new
/// buffer; elsewhere the framework's multiply by the mask's f32 form.
pub(crate) fn zero_pruned<const D: usize>(t: Tensor<D>, mask: &BurnMask) -> Tensor<D> {
    let dims = t.dims();
    let keep = on_flex(&mask.keep);
    let Some(flags) = keep.as_ref().and_then(|k| k.as_slice::<u8>()) else {
        return t * mask.keep.clone().float().reshape(dims);
    };
    let Ok(mut values) = t.clone().try_into_primitive::<Flex>() else {
        return t * mask.keep.clone().float().reshape(dims);
    };
    let n = flags.len();
    let whole = values.is_contiguous()
        && values.layout().start_offset() == 0
        && values.dtype() == DType::F32
        && values.layout().num_elements() == n
        && values.bytes().len() == n * 4;
    if !whole {
        return t * mask.keep.clone().float().reshape(dims);
    }
    // `t` is no longer needed: dropping it leaves `values` the only holder when nothing else
    // shares the storage.
    drop(t);
    let zeroed = |w: &mut [f32]| {
        // The lengths were checked above.
        let _ = prune_core::model::host::zero_pruned_in_place(w, flags);
    };
    if let Some(w) = values.try_storage_mut::<f32>() {
        zeroed(w);
        return Tensor::<D>::from_primitive::<Flex>(values);
    }
    let mut out = values.storage::<f32>().to_vec();
    zeroed(&mut out);
    Tensor::<1>::from_data(TensorData::new(out, [n]), &mask.keep.device()).reshape(dims)
}
