//! The group-lasso regulariser's gradient, on the host, over the canonical 2-D view.

use crate::model::host::reduce_blocks;
use crate::model::Reduce;

/// Adds the gradient of `alpha * sum over blocks of ||W_block||_2` to `grad`, in place:
/// `g += alpha * w / ||W_block||` (nothing where a block's norm is 0), then zeroes the gradient
/// wherever `pruned` is set. `w` and `grad` are `[rows, cols]` row-major; blocks are `br x bc`.
#[allow(clippy::too_many_arguments)]
pub fn add_group_lasso_gradient(
    w: &[f32],
    grad: &mut [f32],
    rows: usize,
    cols: usize,
    br: usize,
    bc: usize,
    alpha: f32,
    pruned: Option<&[bool]>,
) -> Result<(), String> {
    let norms = reduce_blocks(w, rows, cols, br, bc, Reduce::L2)?;
    let gc = cols / bc;
    for i in 0..rows {
        for j in 0..cols {
            let k = i * cols + j;
            let norm = norms[(i / br) * gc + j / bc];
            if norm > 0.0 {
                grad[k] += alpha * w[k] / norm;
            }
        }
    }
    if let Some(p) = pruned {
        grad.iter_mut()
            .zip(p)
            .filter(|(_, p)| **p)
            .for_each(|(g, _)| *g = 0.0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_hand_computed_gradient() {
        // One row, two 1x2 blocks: [3, 4] (norm 5) and [0, 0] (norm 0).
        let w = [3.0, 4.0, 0.0, 0.0];
        let mut g = [1.0, 1.0, 1.0, 1.0];
        add_group_lasso_gradient(&w, &mut g, 1, 4, 1, 2, 0.5, None).unwrap();
        assert_eq!(g, [1.0 + 0.5 * 0.6, 1.0 + 0.5 * 0.8, 1.0, 1.0]);
        let mut g = [1.0; 4];
        add_group_lasso_gradient(
            &w,
            &mut g,
            1,
            4,
            1,
            2,
            0.5,
            Some(&[false, true, false, true]),
        )
        .unwrap();
        assert_eq!(g, [1.3, 0.0, 1.0, 0.0]);
        assert!(add_group_lasso_gradient(&w, &mut g, 1, 4, 1, 3, 0.5, None).is_err());
    }

    #[test]
    fn agrees_with_a_finite_difference() {
        let w: Vec<f32> = (0..8).map(|i| (i as f32 - 3.5) * 0.3).collect();
        let penalty = |w: &[f32]| -> f64 {
            reduce_blocks(w, 2, 4, 2, 2, Reduce::L2)
                .unwrap()
                .iter()
                .map(|&n| n as f64)
                .sum()
        };
        let mut g = vec![0.0f32; 8];
        add_group_lasso_gradient(&w, &mut g, 2, 4, 2, 2, 1.0, None).unwrap();
        for k in 0..8 {
            let (mut up, mut down) = (w.clone(), w.clone());
            up[k] += 1e-3;
            down[k] -= 1e-3;
            let numeric = (penalty(&up) - penalty(&down)) / 2e-3;
            assert!(
                (numeric - g[k] as f64).abs() < 1e-3,
                "k={k}: {numeric} vs {}",
                g[k]
            );
        }
    }
}
