//! Host-side (plain `Vec<f32>`) kernels behind the backends' default methods.

/// How values of one block are combined into a block score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// Sum of values.
    Sum,
    /// Sum of absolute values.
    L1,
    /// Euclidean norm.
    L2,
    /// Largest absolute value.
    Max,
}

/// Block reduction of a row-major `[r, c]` buffer into a `[r/rows, c/cols]` grid.
pub fn reduce_blocks(
    data: &[f32],
    r: usize,
    c: usize,
    rows: usize,
    cols: usize,
    how: Reduce,
) -> Result<Vec<f32>, String> {
    if rows == 0 || cols == 0 || !r.is_multiple_of(rows) || !c.is_multiple_of(cols) {
        return Err(format!("a {rows}x{cols} block does not divide [{r}, {c}]"));
    }
    if r.checked_mul(c) != Some(data.len()) {
        return Err(format!("{} values for a [{r}, {c}] tensor", data.len()));
    }
    let (gr, gc) = (r / rows, c / cols);
    let mut out = vec![0f32; gr * gc];
    for i in 0..r {
        let row = &data[i * c..(i + 1) * c];
        let grow = &mut out[(i / rows) * gc..(i / rows + 1) * gc];
        for (j, &x) in row.iter().enumerate() {
            let cell = &mut grow[j / cols];
            match how {
                Reduce::Sum => *cell += x,
                Reduce::L1 => *cell += x.abs(),
                Reduce::L2 => *cell += x * x,
                Reduce::Max => *cell = cell.max(x.abs()),
            }
        }
    }
    if how == Reduce::L2 {
        out.iter_mut().for_each(|v| *v = v.sqrt());
    }
    Ok(out)
}

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
    // reduce_blocks checked that rows * cols is w.len().
    let n = w.len();
    if grad.len() != n {
        return Err(format!(
            "{} gradient values for a [{rows}, {cols}] weight",
            grad.len()
        ));
    }
    if let Some(p) = pruned.filter(|p| p.len() != n) {
        return Err(format!(
            "{} pruned flags for a [{rows}, {cols}] weight",
            p.len()
        ));
    }
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

/// The canonical 2-D view `[rows, cols]` of a weight shape: `[d0, d1 * d2 * ...]`, 1-D as `[1, n]`.
pub fn view_2d(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (1, *n),
        [d0, rest @ ..] => (*d0, rest.iter().product()),
    }
}

/// Keeps `indices` along `axis` of a row-major tensor.
pub fn select_axis(
    data: &[f32],
    shape: &[usize],
    axis: usize,
    indices: &[usize],
) -> Result<(Vec<f32>, Vec<usize>), String> {
    if axis >= shape.len() {
        return Err(format!("axis {axis} out of range for rank {}", shape.len()));
    }
    if let Some(bad) = indices.iter().find(|&&i| i >= shape[axis]) {
        return Err(format!(
            "index {bad} out of range for axis {axis} of size {}",
            shape[axis]
        ));
    }
    if shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) != Some(data.len()) {
        return Err(format!("{} values for shape {shape:?}", data.len()));
    }
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(outer * indices.len() * inner);
    for o in 0..outer {
        for &i in indices {
            let base = (o * shape[axis] + i) * inner;
            out.extend_from_slice(&data[base..base + inner]);
        }
    }
    let mut new_shape = shape.to_vec();
    new_shape[axis] = indices.len();
    Ok((out, new_shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_reduce_each_way() {
        let d = vec![1., -2., 3., -4., 5., -6., 7., -8.]; // [2, 4]
        assert_eq!(
            reduce_blocks(&d, 2, 4, 1, 2, Reduce::L1).unwrap(),
            vec![3., 7., 11., 15.]
        );
        assert_eq!(
            reduce_blocks(&d, 2, 4, 2, 2, Reduce::Sum).unwrap(),
            vec![-2., -2.]
        );
        assert_eq!(
            reduce_blocks(&d, 2, 4, 2, 1, Reduce::Max).unwrap(),
            vec![5., 6., 7., 8.]
        );
        assert_eq!(
            reduce_blocks(&[3., 4.], 1, 2, 1, 2, Reduce::L2).unwrap(),
            vec![5.]
        );
        assert!(reduce_blocks(&d, 2, 4, 1, 3, Reduce::L1).is_err());
    }

    #[test]
    fn select_keeps_rows_and_columns() {
        let d: Vec<f32> = (0..6).map(|x| x as f32).collect(); // [2, 3]
        assert_eq!(
            select_axis(&d, &[2, 3], 1, &[0, 2]).unwrap(),
            (vec![0., 2., 3., 5.], vec![2, 2])
        );
        assert_eq!(
            select_axis(&d, &[2, 3], 0, &[1]).unwrap(),
            (vec![3., 4., 5.], vec![1, 3])
        );
        assert!(select_axis(&d, &[2, 3], 0, &[2]).is_err());
    }

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
    fn lengths_that_disagree_with_the_weight_are_refused() {
        let w = [3.0, 4.0, 0.0, 0.0];
        let mut short = [1.0; 3];
        let e = add_group_lasso_gradient(&w, &mut short, 1, 4, 1, 2, 0.5, None).unwrap_err();
        assert!(e.contains("3 gradient values for a [1, 4] weight"), "{e}");
        let mut g = [1.0; 4];
        let e =
            add_group_lasso_gradient(&w, &mut g, 1, 4, 1, 2, 0.5, Some(&[true; 5])).unwrap_err();
        assert!(e.contains("5 pruned flags for a [1, 4] weight"), "{e}");
        assert_eq!(g, [1.0; 4], "nothing is written before the checks");
        let e = add_group_lasso_gradient(&w[..3], &mut g, 1, 4, 1, 2, 0.5, None).unwrap_err();
        assert!(e.contains("3 values for a [1, 4] tensor"), "{e}");
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
