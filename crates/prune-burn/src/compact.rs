//! Compacting burn `Linear` pairs whose hidden units were pruned whole (see
//! [`prune_core::algo::compact`]).

use crate::backend::host_f32;
use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Tensor, TensorData};
use prune_core::algo::compact::LinearValues;
use prune_core::model::layout::transpose;
use prune_core::Result;

/// A burn Linear's values in the canonical `[out, in]` layout.
pub fn linear_values(l: &Linear) -> Result<LinearValues> {
    let w = l.weight.val().inner();
    let [d_in, d_out] = w.dims();
    let stored = host_f32(&w.reshape([d_in * d_out]))?;
    let bias = match &l.bias {
        Some(b) => Some(host_f32(&b.val().inner())?),
        None => None,
    };
    Ok(LinearValues {
        weight: transpose(&stored, d_in, d_out),
        bias,
        out_features: d_out,
        in_features: d_in,
    })
}

/// A new burn Linear holding `v`, on the same device as `like` (trainable on an autodiff device).
pub fn linear_from_values(v: &LinearValues, like: &Linear) -> Linear {
    let device = like.weight.val().device();
    let trainable = |t: Tensor<2>| {
        if device.is_autodiff() {
            t.require_grad()
        } else {
            t
        }
    };
    let trainable_1 = |t: Tensor<1>| {
        if device.is_autodiff() {
            t.require_grad()
        } else {
            t
        }
    };
    let mut l = LinearConfig::new(v.in_features, v.out_features)
        .with_bias(v.bias.is_some())
        .init(&device);
    let stored = transpose(&v.weight, v.out_features, v.in_features);
    l.weight = Param::from_tensor(trainable(Tensor::<2>::from_data(
        TensorData::new(stored, [v.in_features, v.out_features]),
        &device,
    )));
    l.bias = v.bias.as_ref().map(|b| {
        Param::from_tensor(trainable_1(Tensor::<1>::from_data(
            TensorData::new(b.clone(), [b.len()]),
            &device,
        )))
    });
    l
}

/// Removes the hidden units of `first` whose weights are all zero (and the matching inputs of
/// `second`), folding their constant `act(bias)` into `second`'s bias: the pair computes the same
/// function with fewer units. Returns the new layers and the kept unit indices.
pub fn compact_linear_pair(
    first: &Linear,
    second: &Linear,
    act: impl Fn(f32) -> f32,
) -> Result<(Linear, Linear, Vec<usize>)> {
    let (a, b, kept) = prune_core::algo::compact::compact_linear_pair(
        &linear_values(first)?,
        &linear_values(second)?,
        act,
    )?;
    Ok((
        linear_from_values(&a, first),
        linear_from_values(&b, second),
        kept,
    ))
}
