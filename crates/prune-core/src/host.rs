//! Host-side (plain `Vec<f32>`) kernels behind the backends' default methods and the mask logic.

use crate::backend::{Layout, Reduce};

/// Transposes a row-major `[r, c]` buffer into `[c, r]`.
pub fn transpose<T: Copy>(data: &[T], r: usize, c: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(data.len());
    for j in 0..c {
        for i in 0..r {
            out.push(data[i * c + j]);
        }
    }
    out
}

/// Permutes the axes of a row-major buffer of shape `shape`: output axis `k` is input axis `perm[k]`.
pub fn permute<T: Copy>(data: &[T], shape: &[usize], perm: &[usize]) -> Vec<T> {
    let rank = shape.len();
    let mut in_strides = vec![1usize; rank];
    for k in (0..rank.saturating_sub(1)).rev() {
        in_strides[k] = in_strides[k + 1] * shape[k + 1];
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let mut out = Vec::with_capacity(data.len());
    let mut idx = vec![0usize; rank];
    for _ in 0..data.len() {
        let offset: usize = idx.iter().zip(perm).map(|(&i, &p)| i * in_strides[p]).sum();
        out.push(data[offset]);
        for k in (0..rank).rev() {
            idx[k] += 1;
            if idx[k] < out_shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

/// Values of a weight in the canonical view, given its stored values.
/// A layout that does not fit the rank (a "transposed" 1-D weight) is treated as canonical.
pub fn to_canonical<T: Copy>(stored: Vec<T>, layout: Layout, canonical_shape: &[usize]) -> Vec<T> {
    match (layout, canonical_shape.len()) {
        (Layout::Canonical, _)
        | (Layout::Transposed, 0 | 1 | 3..)
        | (Layout::Hwio, 0..=3 | 5..) => stored,
        // stored [in, out] -> canonical [out, in]
        (Layout::Transposed, _) => transpose(&stored, canonical_shape[1], canonical_shape[0]),
        // stored [kh, kw, in, out] -> canonical [out, in, kh, kw]
        (Layout::Hwio, _) => permute(
            &stored,
            &layout.stored_shape(canonical_shape),
            &[3, 2, 0, 1],
        ),
    }
}

/// Values in the stored layout, given canonical ones.
pub fn to_stored<T: Copy>(canonical: Vec<T>, layout: Layout, canonical_shape: &[usize]) -> Vec<T> {
    match (layout, canonical_shape.len()) {
        (Layout::Canonical, _)
        | (Layout::Transposed, 0 | 1 | 3..)
        | (Layout::Hwio, 0..=3 | 5..) => canonical,
        (Layout::Transposed, _) => transpose(&canonical, canonical_shape[0], canonical_shape[1]),
        // canonical [out, in, kh, kw] -> stored [kh, kw, in, out]
        (Layout::Hwio, _) => permute(&canonical, canonical_shape, &[2, 3, 1, 0]),
    }
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
    fn transpose_round_trips() {
        let d: Vec<f32> = (0..6).map(|x| x as f32).collect();
        let t = transpose(&d, 2, 3);
        assert_eq!(t, vec![0., 3., 1., 4., 2., 5.]);
        assert_eq!(transpose(&t, 3, 2), d);
    }

    #[test]
    fn hwio_round_trips_and_matches_transpose() {
        let canonical: Vec<u32> = (0..4 * 2 * 3 * 3).collect();
        let shape = [4, 2, 3, 3];
        let stored = to_stored(canonical.clone(), Layout::Hwio, &shape);
        // stored[h][w][i][o] == canonical[o][i][h][w]
        let (h, w, i, o) = (1, 2, 1, 3);
        assert_eq!(
            stored[((h * 3 + w) * 2 + i) * 4 + o],
            canonical[((o * 2 + i) * 3 + h) * 3 + w]
        );
        assert_eq!(to_canonical(stored, Layout::Hwio, &shape), canonical);
        let m: Vec<u32> = (0..6).collect();
        assert_eq!(permute(&m, &[2, 3], &[1, 0]), transpose(&m, 2, 3));
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
}
