//! Exact, deterministic mask selection on the host.
//!
//! Every function here returns `pruned` flags (true = set to zero) in the canonical row-major
//! view `[out, in * kh * kw]`. Counts are exact and ties are broken by index (lower index pruned
//! first), so identical weights give identical masks on every backend and every run.

use crate::config::{Method, Pattern};
use crate::model::host::reduce_blocks;
use crate::model::Reduce;

/// How many of `n` units a sparsity prunes: `round(s * n)`, clamped to `n`.
pub fn prune_count(sparsity: f64, n: usize) -> usize {
    ((sparsity * n as f64).round() as usize).min(n)
}

/// An order-preserving map from f32 (total order, as `f32::total_cmp`) to u32.
#[inline]
fn key(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// The key of the `k`-th smallest score (0-based) and how many scores have a smaller key, by a
/// two-level radix histogram: two counting passes, no copy, no sort.
fn kth_key(scores: &[f32], k: usize) -> (u32, usize) {
    let mut hist = vec![0usize; 1 << 16];
    for &x in scores {
        hist[(key(x) >> 16) as usize] += 1;
    }
    let (mut below, mut high) = (0usize, 0usize);
    for (b, &c) in hist.iter().enumerate() {
        if below + c > k {
            high = b;
            break;
        }
        below += c;
    }
    hist.iter_mut().for_each(|c| *c = 0);
    for &x in scores {
        let kx = key(x);
        if (kx >> 16) as usize == high {
            hist[(kx & 0xffff) as usize] += 1;
        }
    }
    for (lo, &c) in hist.iter().enumerate() {
        if below + c > k {
            return (((high as u32) << 16) | lo as u32, below);
        }
        below += c;
    }
    unreachable!("k < scores.len() is checked by the caller")
}

/// Below this many scores a selection on a copy beats clearing the 64K-entry histograms.
const RADIX_FROM: usize = 1 << 16;

/// [`kth_key`] for small inputs: `select_nth_unstable` on a copy of the keys.
fn kth_key_small(scores: &[f32], k: usize) -> (u32, usize) {
    let mut keys: Vec<u32> = scores.iter().map(|&x| key(x)).collect();
    let (_, &mut thr, _) = keys.select_nth_unstable(k);
    (thr, scores.iter().filter(|&&x| key(x) < thr).count())
}

/// Flags exactly `k` of `scores` as pruned: the smallest, lower index first among equals.
///
/// Linear time and no copy of the scores: two histogram passes find the k-th value, one pass
/// writes the flags.
pub fn smallest_k(scores: &[f32], k: usize) -> Vec<bool> {
    let n = scores.len();
    if k == 0 {
        return vec![false; n];
    }
    if k >= n {
        return vec![true; n];
    }
    let (thr, below) = if n < RADIX_FROM {
        kth_key_small(scores, k - 1)
    } else {
        kth_key(scores, k - 1)
    };
    let mut equal_left = k - below;
    scores
        .iter()
        .map(|&s| {
            let ks = key(s);
            if ks < thr {
                true
            } else if ks == thr && equal_left > 0 {
                equal_left -= 1;
                true
            } else {
                false
            }
        })
        .collect()
}

/// Pruned flags for a magnitude-style score over a `[rows, cols]` canonical weight.
///
/// `scores` are per element (|w|, or accumulated importance); tiles sum them. `previous` flags
/// already-pruned elements, which are pruned first so masks only grow.
pub fn pruned_flags(
    scores: &[f32],
    rows: usize,
    cols: usize,
    pattern: Pattern,
    method: Method,
    sparsity: f64,
    previous: Option<&[bool]>,
) -> Result<Vec<bool>, String> {
    if scores.len() != rows * cols {
        return Err(format!(
            "{} scores for a [{rows}, {cols}] weight",
            scores.len()
        ));
    }
    if let Some(prev) = previous.filter(|p| p.len() != scores.len()) {
        return Err(format!(
            "a previous mask of {} flags for {} elements",
            prev.len(),
            scores.len()
        ));
    }
    match pattern {
        Pattern::Tile { rows: 1, cols: 1 } if method == Method::PerTensor => {
            let k = prune_count(sparsity, scores.len());
            Ok(match previous {
                Some(prev) => {
                    let adjusted: Vec<f32> = scores
                        .iter()
                        .zip(prev)
                        .map(|(&s, &p)| if p { f32::NEG_INFINITY } else { s })
                        .collect();
                    smallest_k(&adjusted, k)
                }
                None => smallest_k(scores, k),
            })
        }
        Pattern::Tile { rows: br, cols: bc } => {
            let grid = reduce_blocks(scores, rows, cols, br, bc, Reduce::Sum)?;
            let (gr, gc) = (rows / br, cols / bc);
            let grid = match previous {
                // A tile with any pruned element counts as pruned already.
                Some(prev) => {
                    let prev_f: Vec<f32> = prev.iter().map(|&p| f32::from(u8::from(p))).collect();
                    let hit = reduce_blocks(&prev_f, rows, cols, br, bc, Reduce::Max)?;
                    grid.iter()
                        .zip(hit)
                        .map(|(&s, h)| if h > 0.0 { f32::NEG_INFINITY } else { s })
                        .collect()
                }
                None => grid,
            };
            let tile_flags = match method {
                Method::PerTensor => smallest_k(&grid, prune_count(sparsity, grid.len())),
                Method::PerChannel => {
                    let k = prune_count(sparsity, gc);
                    grid.chunks(gc.max(1))
                        .flat_map(|row| smallest_k(row, k))
                        .collect()
                }
            };
            Ok(expand_tiles(&tile_flags, gr, gc, br, bc))
        }
        Pattern::NOfM { n, m } => {
            if n > m || m == 0 {
                return Err(format!("an N:M pattern {n}:{m} needs 0 < N <= M"));
            }
            if !cols.is_multiple_of(m) {
                return Err(format!(
                    "an N:M group of {m} does not divide the input dimension {cols}"
                ));
            }
            let mut out = vec![false; scores.len()];
            let mut order: Vec<usize> = Vec::with_capacity(m);
            for (g, group) in scores.chunks(m).enumerate() {
                let forced = |j: usize| previous.is_some_and(|p| p[g * m + j]);
                order.clear();
                order.extend(0..group.len());
                // Already-pruned first, then by score, then by index: the first m - n are pruned.
                order.sort_unstable_by(|&a, &b| {
                    forced(b)
                        .cmp(&forced(a))
                        .then(group[a].total_cmp(&group[b]))
                        .then(a.cmp(&b))
                });
                for &j in &order[..m - n] {
                    out[g * m + j] = true;
                }
            }
            Ok(out)
        }
    }
}

/// Element flags from tile flags of a `[gr, gc]` grid of `br x bc` tiles.
fn expand_tiles(tiles: &[bool], gr: usize, gc: usize, br: usize, bc: usize) -> Vec<bool> {
    let cols = gc * bc;
    let mut out = Vec::with_capacity(gr * br * cols);
    for i in 0..gr * br {
        let trow = &tiles[(i / br) * gc..(i / br + 1) * gc];
        for j in 0..cols {
            out.push(trow[j / bc]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_count_and_index_ties() {
        let s = [1.0, 0.5, 0.5, 0.5, 2.0];
        assert_eq!(smallest_k(&s, 2), vec![false, true, true, false, false]);
        assert_eq!(smallest_k(&s, 0), vec![false; 5]);
        assert_eq!(smallest_k(&s, 5), vec![true; 5]);
        let all_equal = [0.0f32; 10];
        assert_eq!(smallest_k(&all_equal, 3).iter().filter(|p| **p).count(), 3);
        assert!(smallest_k(&all_equal, 3)[..3].iter().all(|p| *p));
        let mixed = [3.0, -1.0, f32::NEG_INFINITY, 0.0, -0.0, 2.5, 1e-30, 7.0];
        let mut order: Vec<usize> = (0..mixed.len()).collect();
        order.sort_by(|&a, &b| mixed[a].total_cmp(&mixed[b]).then(a.cmp(&b)));
        for k in 0..=mixed.len() {
            let f = smallest_k(&mixed, k);
            let want: Vec<bool> = (0..mixed.len()).map(|i| order[..k].contains(&i)).collect();
            assert_eq!(f, want, "k={k}");
        }
    }

    #[test]
    fn radix_and_small_selection_agree() {
        let n = RADIX_FROM + 123;
        let s: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 100.0).collect();
        for k in [0, 1, 5000, n / 2, n - 1] {
            assert_eq!(kth_key(&s, k), kth_key_small(&s, k), "k={k}");
        }
    }

    #[test]
    fn round_half_and_whole_counts() {
        assert_eq!(prune_count(0.9, 1280), 1152);
        assert_eq!(prune_count(0.0, 10), 0);
        assert_eq!(prune_count(0.3, 10), 3);
        assert_eq!(prune_count(0.999, 10), 10);
    }

    #[test]
    fn tiles_prune_whole_blocks() {
        // [2, 4] with 1x2 tiles: sums 3, 7, 11, 1 -> 50% prunes tiles 3 and 0.
        let s = [1., 2., 3., 4., 5., 6., 0.5, 0.5];
        let f = pruned_flags(
            &s,
            2,
            4,
            Pattern::Tile { rows: 1, cols: 2 },
            Method::PerTensor,
            0.5,
            None,
        )
        .unwrap();
        assert_eq!(f, vec![true, true, false, false, false, false, true, true]);
        assert!(pruned_flags(
            &s,
            2,
            4,
            Pattern::Tile { rows: 1, cols: 3 },
            Method::PerTensor,
            0.5,
            None
        )
        .is_err());
    }

    #[test]
    fn per_channel_balances_rows() {
        let s = [1., 2., 3., 4., 10., 20., 30., 40.];
        let f = pruned_flags(&s, 2, 4, Pattern::default(), Method::PerChannel, 0.5, None).unwrap();
        assert_eq!(f, vec![true, true, false, false, true, true, false, false]);
    }

    #[test]
    fn n_of_m_keeps_exactly_n() {
        let s = [4., 1., 3., 2., 0., 0., 0., 0.];
        let f = pruned_flags(
            &s,
            1,
            8,
            Pattern::NOfM { n: 2, m: 4 },
            Method::PerTensor,
            0.5,
            None,
        )
        .unwrap();
        assert_eq!(f, vec![false, true, false, true, true, true, false, false]);
    }

    #[test]
    fn previous_mask_is_kept() {
        let s = [0.0, 5.0, 1.0, 2.0];
        let prev = [false, true, false, false];
        let f = pruned_flags(
            &s,
            1,
            4,
            Pattern::default(),
            Method::PerTensor,
            0.5,
            Some(&prev),
        )
        .unwrap();
        assert_eq!(f, vec![true, true, false, false]);
    }
}
