//! Structured compaction: turning whole zero rows into a physically smaller dense layer.

use crate::error::{PruneError, Result};

/// A Linear layer's values on the host, canonical layout.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearValues {
    /// `[out, in]`, row-major.
    pub weight: Vec<f32>,
    /// `[out]`, if the layer has a bias.
    pub bias: Option<Vec<f32>>,
    /// Output features.
    pub out_features: usize,
    /// Input features.
    pub in_features: usize,
}

impl LinearValues {
    fn check(&self, what: &str) -> Result<()> {
        let bias_ok = self
            .bias
            .as_ref()
            .is_none_or(|b| b.len() == self.out_features);
        if self.weight.len() != self.out_features * self.in_features || !bias_ok {
            return Err(PruneError::Shape {
                weight: what.into(),
                shape: vec![self.out_features, self.in_features],
                reason: format!(
                    "{} weight values and a bias of {:?}",
                    self.weight.len(),
                    self.bias.as_ref().map(Vec::len)
                ),
            });
        }
        Ok(())
    }
}

/// Removes the output units of `first` whose weight rows are entirely zero, and the matching
/// input columns of `second`. A removed unit still emits the constant `act(bias)`; that constant
/// times its column of `second` is folded into `second`'s bias, so
/// `second(act(first(x)))` is unchanged for every `x`. Returns the two smaller layers and the
/// kept unit indices (in their original order).
pub fn compact_linear_pair(
    first: &LinearValues,
    second: &LinearValues,
    act: impl Fn(f32) -> f32,
) -> Result<(LinearValues, LinearValues, Vec<usize>)> {
    first.check("first layer")?;
    second.check("second layer")?;
    if second.in_features != first.out_features {
        return Err(PruneError::Shape {
            weight: "second layer".into(),
            shape: vec![second.out_features, second.in_features],
            reason: format!(
                "its input does not match the first layer's {} outputs",
                first.out_features
            ),
        });
    }
    let (n_in, n_mid, n_out) = (first.in_features, first.out_features, second.out_features);
    let kept: Vec<usize> = (0..n_mid)
        .filter(|&u| {
            first.weight[u * n_in..(u + 1) * n_in]
                .iter()
                .any(|w| *w != 0.0)
        })
        .collect();
    let mut weight1 = Vec::with_capacity(kept.len() * n_in);
    for &u in &kept {
        weight1.extend_from_slice(&first.weight[u * n_in..(u + 1) * n_in]);
    }
    let bias1 = first
        .bias
        .as_ref()
        .map(|b| kept.iter().map(|&u| b[u]).collect());
    let mut bias2 = second.bias.clone().unwrap_or_else(|| vec![0.0; n_out]);
    let mut weight2 = Vec::with_capacity(n_out * kept.len());
    for (o, bias) in bias2.iter_mut().enumerate() {
        let row = &second.weight[o * n_mid..(o + 1) * n_mid];
        for u in 0..n_mid {
            if kept.binary_search(&u).is_err() {
                let constant = act(first.bias.as_ref().map_or(0.0, |b| b[u]));
                *bias += row[u] * constant;
            }
        }
        weight2.extend(kept.iter().map(|&u| row[u]));
    }
    let folded_bias = second.bias.is_some() || bias2.iter().any(|b| *b != 0.0);
    Ok((
        LinearValues {
            weight: weight1,
            bias: bias1,
            out_features: kept.len(),
            in_features: n_in,
        },
        LinearValues {
            weight: weight2,
            bias: folded_bias.then_some(bias2),
            out_features: n_out,
            in_features: kept.len(),
        },
        kept,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(l: &LinearValues, x: &[f32]) -> Vec<f32> {
        (0..l.out_features)
            .map(|o| {
                let row = &l.weight[o * l.in_features..(o + 1) * l.in_features];
                row.iter().zip(x).map(|(w, x)| w * x).sum::<f32>()
                    + l.bias.as_ref().map_or(0.0, |b| b[o])
            })
            .collect()
    }

    #[test]
    fn outputs_are_unchanged_and_layers_shrink() {
        let relu = |v: f32| v.max(0.0);
        let mut w1: Vec<f32> = (0..5 * 3)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0)
            .collect();
        for u in [1usize, 3] {
            w1[u * 3..(u + 1) * 3].iter_mut().for_each(|w| *w = 0.0);
        }
        let first = LinearValues {
            weight: w1,
            bias: Some(vec![0.1, 0.7, -0.2, -0.4, 0.3]),
            out_features: 5,
            in_features: 3,
        };
        let second = LinearValues {
            weight: (0..2 * 5).map(|i| (i as f32 - 4.0) / 3.0).collect(),
            bias: Some(vec![0.05, -0.05]),
            out_features: 2,
            in_features: 5,
        };
        let (a, b, kept) = compact_linear_pair(&first, &second, relu).unwrap();
        assert_eq!(kept, vec![0, 2, 4]);
        assert_eq!((a.out_features, b.in_features), (3, 3));
        for x in [[1.0, -2.0, 0.5], [0.0, 0.0, 0.0], [3.0, 1.0, -1.0]] {
            let h: Vec<f32> = forward(&first, &x).into_iter().map(relu).collect();
            let want = forward(&second, &h);
            let h2: Vec<f32> = forward(&a, &x).into_iter().map(relu).collect();
            let got = forward(&b, &h2);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn mismatched_layers_are_errors() {
        let l = LinearValues {
            weight: vec![0.0; 6],
            bias: None,
            out_features: 2,
            in_features: 3,
        };
        assert!(compact_linear_pair(&l, &l, |v| v).is_err());
    }
}
