//! [`TensorBackend`] over TensorFlow host tensors (`tensorflow::Tensor<f32>`).
//!
//! TensorFlow's C API computes in graphs; the few element-wise operations pruning needs run on
//! the host buffers here, and per-step mask application runs in the graph (see `TfModel`).

use prune_core::{PruneError, Result, TensorBackend};
use tensorflow::Tensor;

/// The TensorFlow backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tf;

pub(crate) fn tf_error(message: impl std::fmt::Display) -> PruneError {
    PruneError::Backend {
        backend: "tf".into(),
        message: message.to_string(),
    }
}

pub(crate) fn dims(t: &Tensor<f32>) -> Vec<usize> {
    t.dims().iter().map(|&d| d as usize).collect()
}

/// A host tensor of the given shape and values.
pub(crate) fn tensor(shape: &[usize], data: &[f32]) -> Result<Tensor<f32>> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(PruneError::Shape {
            weight: "tensor".into(),
            shape: shape.to_vec(),
            reason: format!("{} values given", data.len()),
        });
    }
    let d: Vec<u64> = shape.iter().map(|&x| x as u64).collect();
    Tensor::new(&d).with_values(data).map_err(tf_error)
}

fn zip(
    op: &str,
    a: &Tensor<f32>,
    b: &Tensor<f32>,
    f: impl Fn(f32, f32) -> f32,
) -> Result<Tensor<f32>> {
    if a.dims() != b.dims() {
        return Err(PruneError::Shape {
            weight: op.into(),
            shape: dims(a),
            reason: format!("does not match shape {:?}", dims(b)),
        });
    }
    let v: Vec<f32> = a.iter().zip(b.iter()).map(|(x, y)| f(*x, *y)).collect();
    tensor(&dims(a), &v)
}

impl TensorBackend for Tf {
    type Tensor = Tensor<f32>;
    type Mask = Tensor<f32>;

    fn name(&self) -> &'static str {
        "tf"
    }
    fn shape(&self, t: &Tensor<f32>) -> Vec<usize> {
        dims(t)
    }
    fn to_vec(&self, t: &Tensor<f32>) -> Result<Vec<f32>> {
        Ok(t.to_vec())
    }
    fn from_vec(
        &self,
        _like: &Tensor<f32>,
        data: Vec<f32>,
        shape: &[usize],
    ) -> Result<Tensor<f32>> {
        tensor(shape, &data)
    }
    fn mask_from_keep(&self, like: &Tensor<f32>, keep: Vec<u8>) -> Result<Tensor<f32>> {
        let v: Vec<f32> = keep.into_iter().map(f32::from).collect();
        tensor(&dims(like), &v)
    }
    fn mask_to_keep(&self, mask: &Tensor<f32>) -> Result<Vec<bool>> {
        Ok(mask.iter().map(|x| *x != 0.0).collect())
    }
    fn mask_len(&self, mask: &Tensor<f32>) -> usize {
        mask.len()
    }
    /// The graph's masked assign takes an f32 feed, so a mask here holds 4 bytes per element.
    fn mask_bytes(&self, mask: &Tensor<f32>) -> usize {
        mask.len() * std::mem::size_of::<f32>()
    }
    fn apply_mask(&self, t: &Tensor<f32>, mask: &Tensor<f32>) -> Result<Tensor<f32>> {
        zip("apply_mask", t, mask, |x, m| x * m)
    }
    fn mul(&self, a: &Tensor<f32>, b: &Tensor<f32>) -> Result<Tensor<f32>> {
        zip("mul", a, b, |x, y| x * y)
    }
    fn add(&self, a: &Tensor<f32>, b: &Tensor<f32>) -> Result<Tensor<f32>> {
        zip("add", a, b, |x, y| x + y)
    }
}
