//! How a framework stores a weight relative to the canonical `[out, in]` (or
//! `[out, in, kh, kw]`) view, and the conversions between the two.

/// How a framework stores a weight relative to the canonical view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Stored as the canonical [out, in] (or [out, in, kh, kw]), as PyTorch does.
    Canonical,
    /// A 2-D weight stored [in, out] (burn Linear, TF Dense): transposed at the boundary.
    Transposed,
    /// A 4-D conv kernel stored [kh, kw, in, out] (TensorFlow / Keras).
    Hwio,
}

impl Layout {
    /// The stored shape of a weight whose canonical shape is `canonical`.
    pub fn stored_shape(self, canonical: &[usize]) -> Vec<usize> {
        match (self, canonical) {
            (Layout::Transposed, [o, i]) => vec![*i, *o],
            (Layout::Hwio, [o, i, h, w]) => vec![*h, *w, *i, *o],
            _ => canonical.to_vec(),
        }
    }

    /// The canonical shape of a weight stored as `stored`.
    pub fn canonical_shape(self, stored: &[usize]) -> Vec<usize> {
        match (self, stored) {
            (Layout::Transposed, [i, o]) => vec![*o, *i],
            (Layout::Hwio, [h, w, i, o]) => vec![*o, *i, *h, *w],
            _ => stored.to_vec(),
        }
    }

    /// The stored axis of canonical axis `axis` of a weight of canonical rank `rank`. A layout
    /// that does not fit the rank is treated as canonical; an axis past the rank is an error.
    pub fn stored_axis(self, rank: usize, axis: usize) -> Result<usize, String> {
        if axis >= rank {
            return Err(format!("axis {axis} out of range for rank {rank}"));
        }
        Ok(match (self, rank) {
            (Layout::Transposed, 2) => 1 - axis,
            // canonical [out, in, kh, kw] -> stored [kh, kw, in, out]
            (Layout::Hwio, 4) => [3, 2, 0, 1][axis],
            _ => axis,
        })
    }
}

/// A weight's stored values seen as `[grid rows, block rows, grid cols, block cols]`: the
/// `block` = (rows, cols) tiles of its canonical 2-D view `[d0, d1 * d2 * ...]`, when the stored
/// layout keeps every tile a rectangle (canonical storage, or a transposed 2-D weight, whose
/// tiles are transposed too). `None` when the layout does not, or the block does not divide.
pub fn stored_blocks(info: &super::WeightInfo, (br, bc): (usize, usize)) -> Option<[usize; 4]> {
    let (rows, cols) = super::host::view_2d(&info.shape);
    if br == 0 || bc == 0 || rows % br != 0 || cols % bc != 0 {
        return None;
    }
    match (info.layout, info.shape.len()) {
        (Layout::Transposed, 2) => Some([cols / bc, bc, rows / br, br]),
        (Layout::Canonical, _) => Some([rows / br, br, cols / bc, bc]),
        _ => None,
    }
}

/// The number of values of a row-major buffer of `shape`, `None` when it overflows.
fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// Transposes a row-major `[r, c]` buffer into `[c, r]`; refused when `data` does not hold
/// `r * c` values.
pub fn try_transpose<T: Copy>(data: &[T], r: usize, c: usize) -> Result<Vec<T>, String> {
    if numel(&[r, c]) != Some(data.len()) {
        return Err(format!("{} values for a [{r}, {c}] buffer", data.len()));
    }
    let mut out = Vec::with_capacity(data.len());
    for j in 0..c {
        for i in 0..r {
            out.push(data[i * c + j]);
        }
    }
    Ok(out)
}

/// [`try_transpose`] for callers that have checked the length: a buffer that does not hold
/// `r * c` values gives an empty `Vec` (never a panic, never the values in the wrong order).
pub fn transpose<T: Copy>(data: &[T], r: usize, c: usize) -> Vec<T> {
    try_transpose(data, r, c).unwrap_or_default()
}

/// Permutes the axes of a row-major buffer of shape `shape`: output axis `k` is input axis
/// `perm[k]`. Refused when `perm` is not a permutation of the axes of `shape` or `data` does not
/// hold the shape's number of values.
pub fn try_permute<T: Copy>(data: &[T], shape: &[usize], perm: &[usize]) -> Result<Vec<T>, String> {
    let rank = shape.len();
    let mut seen = vec![false; rank];
    if perm.len() != rank
        || perm
            .iter()
            .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
    {
        return Err(format!(
            "{perm:?} is not a permutation of the {rank} axes of shape {shape:?}"
        ));
    }
    if numel(shape) != Some(data.len()) {
        return Err(format!("{} values for shape {shape:?}", data.len()));
    }
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
    Ok(out)
}

/// [`try_permute`] for callers that have checked the length: a buffer or permutation that does
/// not fit `shape` gives an empty `Vec` (never a panic, never the values in the wrong order).
pub fn permute<T: Copy>(data: &[T], shape: &[usize], perm: &[usize]) -> Vec<T> {
    try_permute(data, shape, perm).unwrap_or_default()
}

/// Values of a weight in the canonical view, given its stored values; refused when `stored`
/// does not hold the shape's number of values. A layout that does not fit the rank (a
/// "transposed" 1-D weight) is treated as canonical.
pub fn try_to_canonical<T: Copy>(
    stored: Vec<T>,
    layout: Layout,
    canonical_shape: &[usize],
) -> Result<Vec<T>, String> {
    if numel(canonical_shape) != Some(stored.len()) {
        return Err(format!(
            "{} stored values for canonical shape {canonical_shape:?}",
            stored.len()
        ));
    }
    match (layout, canonical_shape.len()) {
        (Layout::Canonical, _)
        | (Layout::Transposed, 0 | 1 | 3..)
        | (Layout::Hwio, 0..=3 | 5..) => Ok(stored),
        // stored [in, out] -> canonical [out, in]
        (Layout::Transposed, _) => try_transpose(&stored, canonical_shape[1], canonical_shape[0]),
        // stored [kh, kw, in, out] -> canonical [out, in, kh, kw]
        (Layout::Hwio, _) => try_permute(
            &stored,
            &layout.stored_shape(canonical_shape),
            &[3, 2, 0, 1],
        ),
    }
}

/// [`try_to_canonical`] for callers that have checked the length: values that do not fill
/// `canonical_shape` give an empty `Vec`, which no consumer takes for the weight's values.
pub fn to_canonical<T: Copy>(stored: Vec<T>, layout: Layout, canonical_shape: &[usize]) -> Vec<T> {
    try_to_canonical(stored, layout, canonical_shape).unwrap_or_default()
}

/// Values in the stored layout, given canonical ones; refused when `canonical` does not hold
/// the shape's number of values.
pub fn try_to_stored<T: Copy>(
    canonical: Vec<T>,
    layout: Layout,
    canonical_shape: &[usize],
) -> Result<Vec<T>, String> {
    if numel(canonical_shape) != Some(canonical.len()) {
        return Err(format!(
            "{} canonical values for canonical shape {canonical_shape:?}",
            canonical.len()
        ));
    }
    match (layout, canonical_shape.len()) {
        (Layout::Canonical, _)
        | (Layout::Transposed, 0 | 1 | 3..)
        | (Layout::Hwio, 0..=3 | 5..) => Ok(canonical),
        (Layout::Transposed, _) => {
            try_transpose(&canonical, canonical_shape[0], canonical_shape[1])
        }
        // canonical [out, in, kh, kw] -> stored [kh, kw, in, out]
        (Layout::Hwio, _) => try_permute(&canonical, canonical_shape, &[2, 3, 1, 0]),
    }
}

/// [`try_to_stored`] for callers that have checked the length: values that do not fill
/// `canonical_shape` give an empty `Vec`, which no consumer takes for the weight's values.
pub fn to_stored<T: Copy>(canonical: Vec<T>, layout: Layout, canonical_shape: &[usize]) -> Vec<T> {
    try_to_stored(canonical, layout, canonical_shape).unwrap_or_default()
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
    fn stored_axes_follow_the_layout_and_refuse_past_the_rank() {
        assert_eq!(Layout::Transposed.stored_axis(2, 0), Ok(1));
        assert_eq!(Layout::Transposed.stored_axis(1, 0), Ok(0));
        assert_eq!(Layout::Hwio.stored_axis(4, 0), Ok(3));
        assert_eq!(Layout::Hwio.stored_axis(4, 1), Ok(2));
        assert_eq!(Layout::Hwio.stored_axis(4, 3), Ok(1));
        assert!(Layout::Transposed.stored_axis(2, 2).is_err());
        assert!(Layout::Canonical.stored_axis(1, 1).is_err());
    }

    #[test]
    fn a_length_that_disagrees_with_the_shape_is_refused_not_a_panic() {
        let five: Vec<f32> = (0..5).map(|x| x as f32).collect();
        let e = try_transpose(&five, 2, 3).unwrap_err();
        assert!(e.contains("5 values for a [2, 3] buffer"), "{e}");
        assert!(transpose(&five, 2, 3).is_empty());
        let e = try_permute(&five, &[1, 2, 3], &[2, 1, 0]).unwrap_err();
        assert!(e.contains("5 values for shape [1, 2, 3]"), "{e}");
        assert!(permute(&five, &[1, 2, 3], &[2, 1, 0]).is_empty());
        let e = try_permute(&five, &[5], &[1]).unwrap_err();
        assert!(e.contains("[1] is not a permutation of the 1 axes"), "{e}");
        let e = try_permute(&[0u8; 4], &[2, 2], &[0, 0]).unwrap_err();
        assert!(e.contains("[0, 0] is not a permutation"), "{e}");
        assert!(permute(&[0u8; 4], &[2, 2], &[1]).is_empty());
        for layout in [Layout::Canonical, Layout::Transposed, Layout::Hwio] {
            let shape: &[usize] = if layout == Layout::Hwio {
                &[4, 2, 3, 3]
            } else {
                &[2, 3]
            };
            let e = try_to_canonical(five.clone(), layout, shape).unwrap_err();
            assert!(
                e.contains(&format!("5 stored values for canonical shape {shape:?}")),
                "{e}"
            );
            let e = try_to_stored(five.clone(), layout, shape).unwrap_err();
            assert!(
                e.contains(&format!("5 canonical values for canonical shape {shape:?}")),
                "{e}"
            );
            assert!(to_canonical(five.clone(), layout, shape).is_empty());
            assert!(to_stored(five.clone(), layout, shape).is_empty());
        }
        // An overflowing shape is a mismatch too.
        assert!(try_transpose(&five, usize::MAX, 2).is_err());
        assert!(try_to_stored(five.clone(), Layout::Canonical, &[usize::MAX, 2]).is_err());
    }
}
