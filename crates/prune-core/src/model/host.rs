//! Host-side (plain `Vec<f32>`) kernels behind the backends' default methods.

use crate::select::parallel;

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
/// `g += w * (alpha / ||W_block||)` (nothing where a block's norm is 0), then zeroes the gradient
/// wherever `keep` is 0. `w`, `grad` and `keep` are row-major buffers seen as `view` =
/// `[grid rows, block rows, grid cols, block cols]` (a canonical `[rows, cols]` weight with
/// `br x bc` blocks is `[rows / br, br, cols / bc, bc]`; see
/// [`stored_blocks`](super::layout::stored_blocks) for stored layouts). Nothing is written when a
/// length disagrees; large buffers are split over the cores by grid rows.
pub fn add_group_lasso_gradient(
    w: &[f32],
    grad: &mut [f32],
    keep: Option<&[u8]>,
    view: [usize; 4],
    alpha: f32,
) -> Result<(), String> {
    group_lasso(w, None, grad, keep, view, alpha)
}

/// [`add_group_lasso_gradient`] from `grad` into `out` (same length), leaving `grad` as it is.
pub fn group_lasso_gradient_into(
    w: &[f32],
    grad: &[f32],
    out: &mut [f32],
    keep: Option<&[u8]>,
    view: [usize; 4],
    alpha: f32,
) -> Result<(), String> {
    if grad.len() != out.len() {
        return Err(format!(
            "{} gradient values and {} output values",
            grad.len(),
            out.len()
        ));
    }
    group_lasso(w, Some(grad), out, keep, view, alpha)
}

/// The group-lasso pass: `out = (src + w * scale) * keep`, where `src` is `out` itself when
/// `None`.
fn group_lasso(
    w: &[f32],
    src: Option<&[f32]>,
    out: &mut [f32],
    keep: Option<&[u8]>,
    view: [usize; 4],
    alpha: f32,
) -> Result<(), String> {
    let [gr, br, gc, bc] = view;
    let Some(n) = view.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) else {
        return Err(format!("the block view {view:?} overflows"));
    };
    if w.len() != n {
        return Err(format!("{} values for a {view:?} block view", w.len()));
    }
    if out.len() != n {
        return Err(format!(
            "{} gradient values for a {view:?} block view of {n} weights",
            out.len()
        ));
    }
    if let Some(k) = keep.filter(|k| k.len() != n) {
        return Err(format!(
            "{} mask flags for a {view:?} block view of {n} weights",
            k.len()
        ));
    }
    if n == 0 {
        return Ok(());
    }
    let band = br * gc * bc;
    let parts = parallel::split(gr, parallel::parts(n), 1);
    let mut work = Vec::with_capacity(parts.len());
    let (mut rest_w, mut rest_src, mut rest_out, mut rest_keep) = (w, src, out, keep);
    for r in &parts {
        let len = r.len() * band;
        let (part_w, tail_w) = rest_w.split_at(len);
        let (part_out, tail_out) = rest_out.split_at_mut(len);
        let src_split = rest_src.map(|s| s.split_at(len));
        let keep_split = rest_keep.map(|k| k.split_at(len));
        rest_w = tail_w;
        rest_out = tail_out;
        rest_src = src_split.map(|(_, tail)| tail);
        rest_keep = keep_split.map(|(_, tail)| tail);
        work.push((
            part_w,
            src_split.map(|(part, _)| part),
            part_out,
            keep_split.map(|(part, _)| part),
        ));
    }
    parallel::each(work, |(w, src, out, keep)| {
        let row_len = gc * bc;
        // Per block `alpha / ||block||` (0 for a zero block), then per element of a row the
        // scale of its block, so the row pass is one flat multiply-add.
        let mut scale = vec![0f32; gc];
        let mut row_scale = vec![0f32; if bc == 1 { 0 } else { row_len }];
        for (b, wb) in w.chunks_exact(band).enumerate() {
            scale.fill(0.0);
            for row in wb.chunks_exact(row_len) {
                if bc == 1 {
                    let row = &row[..gc];
                    for j in 0..gc {
                        scale[j] += row[j] * row[j];
                    }
                } else if bc == 4 {
                    for (s, b) in scale.iter_mut().zip(row.chunks_exact(4)) {
                        *s += ((b[0] * b[0] + b[1] * b[1]) + b[2] * b[2]) + b[3] * b[3];
                    }
                } else {
                    for (s, blk) in scale.iter_mut().zip(row.chunks_exact(bc)) {
                        *s += blk.iter().map(|x| x * x).sum::<f32>();
                    }
                }
            }
            scale
                .iter_mut()
                .for_each(|s| *s = if *s > 0.0 { alpha / s.sqrt() } else { 0.0 });
            let per_element: &[f32] = if bc == 1 {
                &scale
            } else {
                for (o, s) in row_scale.chunks_exact_mut(bc).zip(&scale) {
                    o.fill(*s);
                }
                &row_scale
            };
            for (r, wrow) in wb.chunks_exact(row_len).enumerate() {
                let at = b * band + r * row_len;
                let o = &mut out[at..at + row_len];
                let k = keep.map(|k| &k[at..at + row_len]);
                let g = src.map(|g| &g[at..at + row_len]);
                lasso_row(wrow, &per_element[..row_len], g, o, k);
            }
        }
    });
    Ok(())
}

/// One row of the group-lasso pass; each combination is its own flat loop, so it vectorizes.
#[inline]
fn lasso_row(w: &[f32], s: &[f32], src: Option<&[f32]>, out: &mut [f32], keep: Option<&[u8]>) {
    let n = out.len();
    let (w, s) = (&w[..n], &s[..n]);
    match (src, keep) {
        (None, None) => {
            for i in 0..n {
                out[i] += w[i] * s[i];
            }
        }
        (None, Some(k)) => {
            let k = &k[..n];
            for i in 0..n {
                let v = out[i] + w[i] * s[i];
                out[i] = if k[i] != 0 { v } else { 0.0 };
            }
        }
        (Some(g), None) => {
            let g = &g[..n];
            for i in 0..n {
                out[i] = g[i] + w[i] * s[i];
            }
        }
        (Some(g), Some(k)) => {
            let (g, k) = (&g[..n], &k[..n]);
            for i in 0..n {
                let v = g[i] + w[i] * s[i];
                out[i] = if k[i] != 0 { v } else { 0.0 };
            }
        }
    }
}

/// Sets `w` to zero wherever `keep` is 0, in place (the per-step mask application on a backend
/// that lends its CPU memory), split over the cores. `keep` holds one flag per value.
pub fn zero_pruned_in_place(w: &mut [f32], keep: &[u8]) -> Result<(), String> {
    if w.len() != keep.len() {
        return Err(format!(
            "a mask of {} flags for {} values",
            keep.len(),
            w.len()
        ));
    }
    let parts = parallel::split(w.len(), parallel::parts(w.len()), 64);
    let mut items = Vec::with_capacity(parts.len());
    let mut rest = w;
    for r in parts {
        let (mine, tail) = rest.split_at_mut(r.len());
        items.push((mine, &keep[r]));
        rest = tail;
    }
    parallel::each(items, |(w, k)| {
        w.iter_mut()
            .zip(k)
            .for_each(|(w, &k)| *w = if k != 0 { *w } else { 0.0 })
    });
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
    fn zeroing_keeps_flagged_values_across_parts_and_refuses_a_short_mask() {
        // Large enough to split over the cores, with a length that is not a multiple of 64.
        let n = (1 << 19) + 37;
        let values: Vec<f32> = (0..n).map(|i| i as f32 + 0.5).collect();
        let keep: Vec<u8> = (0..n).map(|i| u8::from(i % 3 == 0 || i == n - 1)).collect();
        let mut w = values.clone();
        zero_pruned_in_place(&mut w, &keep).unwrap();
        for i in 0..n {
            assert_eq!(w[i], if keep[i] != 0 { values[i] } else { 0.0 }, "at {i}");
        }
        let mut w = values.clone();
        let err = zero_pruned_in_place(&mut w, &keep[1..]).unwrap_err();
        assert!(
            err.contains(&format!("{} flags for {n} values", n - 1)),
            "{err}"
        );
        assert_eq!(w, values, "a refused mask changes nothing");
    }

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
        add_group_lasso_gradient(&w, &mut g, None, [1, 1, 2, 2], 0.5).unwrap();
        assert_eq!(g, [1.0 + 0.5 * 0.6, 1.0 + 0.5 * 0.8, 1.0, 1.0]);
        let mut g = [1.0; 4];
        add_group_lasso_gradient(&w, &mut g, Some(&[1, 0, 1, 0]), [1, 1, 2, 2], 0.5).unwrap();
        assert_eq!(g, [1.3, 0.0, 1.0, 0.0]);
        // The same weight stored transposed ([4, 1]): blocks of 2 rows and 1 column.
        let mut g = [1.0; 4];
        add_group_lasso_gradient(&w, &mut g, Some(&[1, 0, 1, 0]), [2, 2, 1, 1], 0.5).unwrap();
        assert_eq!(g, [1.3, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn one_column_blocks_match_the_general_path() {
        // [rows, 64] canonical with 4x1 blocks, split over the cores or not, against a
        // per-element reference.
        for rows in [8usize, 1 << 13] {
            let cols = 64;
            let n = rows * cols;
            let w: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.01)
                .collect();
            let keep: Vec<u8> = (0..n).map(|i| (i % 3 != 0) as u8).collect();
            let mut g = vec![0.5f32; n];
            add_group_lasso_gradient(&w, &mut g, Some(&keep), [rows / 4, 4, cols, 1], 0.1).unwrap();
            let (src, mut out) = (vec![0.5f32; n], vec![f32::NAN; n]);
            let view = [rows / 4, 4, cols, 1];
            group_lasso_gradient_into(&w, &src, &mut out, Some(&keep), view, 0.1).unwrap();
            assert_eq!(out, g, "out of place and in place agree");
            assert!(src.iter().all(|&v| v == 0.5), "the source is left as it is");
            for i in 0..rows {
                for j in 0..cols {
                    let band = i / 4 * 4;
                    let norm = (band..band + 4)
                        .map(|r| w[r * cols + j] * w[r * cols + j])
                        .sum::<f32>()
                        .sqrt();
                    let k = i * cols + j;
                    let want = if keep[k] == 0 {
                        0.0
                    } else if norm > 0.0 {
                        0.5 + w[k] * (0.1 / norm)
                    } else {
                        0.5
                    };
                    assert!((g[k] - want).abs() < 1e-6, "[{i}, {j}]: {} vs {want}", g[k]);
                }
            }
        }
    }

    #[test]
    fn lengths_that_disagree_with_the_weight_are_refused() {
        let w = [3.0, 4.0, 0.0, 0.0];
        let mut short = [1.0; 3];
        let e = add_group_lasso_gradient(&w, &mut short, None, [1, 1, 2, 2], 0.5).unwrap_err();
        assert!(e.contains("3 gradient values"), "{e}");
        let mut g = [1.0; 4];
        let e = add_group_lasso_gradient(&w, &mut g, Some(&[1; 5]), [1, 1, 2, 2], 0.5).unwrap_err();
        assert!(e.contains("5 mask flags"), "{e}");
        assert_eq!(g, [1.0; 4], "nothing is written before the checks");
        let e = add_group_lasso_gradient(&w[..3], &mut g, None, [1, 1, 2, 2], 0.5).unwrap_err();
        assert!(e.contains("3 values for a [1, 1, 2, 2] block view"), "{e}");
        let e = add_group_lasso_gradient(&w, &mut g, None, [1, 1, 1, 3], 0.5).unwrap_err();
        assert!(e.contains("4 values for a [1, 1, 1, 3] block view"), "{e}");
        let e = add_group_lasso_gradient(&w, &mut g, None, [usize::MAX, 2, 1, 1], 0.5).unwrap_err();
        assert!(e.contains("overflows"), "{e}");
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
        add_group_lasso_gradient(&w, &mut g, None, [1, 2, 2, 2], 1.0).unwrap();
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
