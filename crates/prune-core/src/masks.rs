//! Exact, deterministic mask selection on the host.
//!
//! Every function here returns `pruned` flags (true = set to zero) in the canonical row-major
//! view `[out, in * kh * kw]`. Counts are exact and ties are broken by index (lower index pruned
//! first), so identical weights give identical masks on every backend and every run.

use crate::backend::Reduce;
use crate::config::{Method, Pattern};
use crate::host::reduce_blocks;
use std::cmp::Ordering;

/// How many of `n` units a sparsity prunes: `round(s * n)`, clamped to `n`.
pub fn prune_count(sparsity: f64, n: usize) -> usize {
    ((sparsity * n as f64).round() as usize).min(n)
}

/// Flags exactly `k` of `scores` as pruned: the smallest, lower index first among equals.
///
/// Linear time: one selection for the k-th value, then one pass.
pub fn smallest_k(scores: &[f32], k: usize) -> Vec<bool> {
    let n = scores.len();
    if k == 0 {
        return vec![false; n];
    }
    if k >= n {
        return vec![true; n];
    }
    let mut work = scores.to_vec();
    let (_, &mut thr, _) = work.select_nth_unstable_by(k - 1, |a, b| a.total_cmp(b));
    let below = scores
        .iter()
        .filter(|s| s.total_cmp(&thr) == Ordering::Less)
        .count();
    let mut equal_left = k - below;
    scores
        .iter()
        .map(|s| match s.total_cmp(&thr) {
            Ordering::Less => true,
            Ordering::Equal if equal_left > 0 => {
                equal_left -= 1;
                true
            }
            _ => false,
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
    match pattern {
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
            if cols % m != 0 {
                return Err(format!(
                    "an N:M group of {m} does not divide the input dimension {cols}"
                ));
            }
            let mut out = Vec::with_capacity(scores.len());
            for (g, group) in scores.chunks(m).enumerate() {
                let adjusted: Vec<f32> = match previous {
                    Some(prev) => group
                        .iter()
                        .zip(&prev[g * m..(g + 1) * m])
                        .map(|(&s, &p)| if p { f32::NEG_INFINITY } else { s })
                        .collect(),
                    None => group.to_vec(),
                };
                out.extend(smallest_k(&adjusted, m - n));
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
