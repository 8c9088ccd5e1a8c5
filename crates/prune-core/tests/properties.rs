//! Properties of mask selection and the schedule, over random shapes, values and settings.

use proptest::prelude::*;
use prune_core::config::{Method, Pattern};
use prune_core::schedule::Schedule;
use prune_core::select::masks::{prune_count, pruned_flags, smallest_k};

/// Scores on a coarse grid, so that ties are common.
fn scores(len: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec((0u8..12).prop_map(|v| v as f32 / 4.0), len)
}

/// The oracle for exact selection: indices sorted by (score, index), the first `k` pruned.
fn oracle(scores: &[f32], k: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].partial_cmp(&scores[b]).unwrap().then(a.cmp(&b)));
    let mut flags = vec![false; scores.len()];
    for &i in order.iter().take(k) {
        flags[i] = true;
    }
    flags
}

/// The patterns of one weight, with the method they run under.
fn patterns() -> impl Strategy<Value = (Pattern, Method)> {
    prop_oneof![
        Just((Pattern::default(), Method::PerTensor)),
        Just((Pattern::default(), Method::PerChannel)),
        Just((Pattern::Tile { rows: 2, cols: 1 }, Method::PerTensor)),
        Just((Pattern::Tile { rows: 1, cols: 4 }, Method::PerTensor)),
        Just((Pattern::Tile { rows: 1, cols: 4 }, Method::PerChannel)),
        Just((Pattern::NOfM { n: 2, m: 4 }, Method::PerTensor)),
        Just((Pattern::NOfM { n: 1, m: 4 }, Method::PerTensor)),
    ]
}

fn shape_and_scores() -> impl Strategy<Value = (usize, usize, Vec<f32>)> {
    (1usize..9, 1usize..5).prop_flat_map(|(r, c4)| {
        let cols = c4 * 4;
        (Just(r * 2), Just(cols), scores(r * 2 * cols))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn exactly_k_smallest_with_index_ties(s in scores(40), k in 0usize..45) {
        let flags = smallest_k(&s, k);
        prop_assert_eq!(flags.iter().filter(|f| **f).count(), k.min(s.len()));
        // Every pruned score is <= every kept score, and among equal scores pruned ones come first.
        for i in 0..s.len() {
            for j in 0..s.len() {
                if flags[i] && !flags[j] {
                    prop_assert!(s[i] < s[j] || (s[i] == s[j] && i < j), "i={} j={}", i, j);
                }
            }
        }
    }

    #[test]
    fn element_masks_have_exact_counts((rows, cols, s) in shape_and_scores(), sparsity in 0.0f64..1.0) {
        let f = pruned_flags(&s, rows, cols, Pattern::default(), Method::PerTensor, sparsity, None).unwrap();
        prop_assert_eq!(f.iter().filter(|x| **x).count(), prune_count(sparsity, rows * cols));
    }

    #[test]
    fn tiles_are_whole_and_counted_exactly((rows, cols, s) in shape_and_scores(), sparsity in 0.0f64..1.0, tall in any::<bool>()) {
        let (br, bc) = if tall { (2, 1) } else { (1, 4) };
        let f = pruned_flags(&s, rows, cols, Pattern::Tile { rows: br, cols: bc }, Method::PerTensor, sparsity, None).unwrap();
        let tiles = (rows / br) * (cols / bc);
        prop_assert_eq!(f.iter().filter(|x| **x).count(), prune_count(sparsity, tiles) * br * bc);
        for ti in 0..rows / br {
            for tj in 0..cols / bc {
                let first = f[ti * br * cols + tj * bc];
                for i in 0..br {
                    for j in 0..bc {
                        prop_assert_eq!(f[(ti * br + i) * cols + tj * bc + j], first);
                    }
                }
            }
        }
    }

    #[test]
    fn n_of_m_keeps_exactly_n_per_group((rows, cols, s) in shape_and_scores(), n in 1usize..4) {
        let f = pruned_flags(&s, rows, cols, Pattern::NOfM { n, m: 4 }, Method::PerTensor, 0.5, None).unwrap();
        for g in f.chunks(4) {
            prop_assert_eq!(g.iter().filter(|p| !**p).count(), n);
        }
    }

    #[test]
    fn per_channel_prunes_the_same_count_in_every_row((rows, cols, s) in shape_and_scores(), sparsity in 0.0f64..1.0) {
        let f = pruned_flags(&s, rows, cols, Pattern::default(), Method::PerChannel, sparsity, None).unwrap();
        for row in f.chunks(cols) {
            prop_assert_eq!(row.iter().filter(|x| **x).count(), prune_count(sparsity, cols));
        }
    }

    #[test]
    fn schedules_rise_monotonically_to_the_target(
        initial in 0.0f64..0.5, extra in 0.0f64..0.49, start in 0usize..5, len in 0usize..10, frequency in 0.1f64..6.0
    ) {
        let sch = Schedule { initial, target: initial + extra, start, end: start + len, frequency };
        let v: Vec<f64> = (0..start + len + 3).map(|e| sch.sparsity_at(e)).collect();
        prop_assert!(v.windows(2).all(|w| w[0] <= w[1] + 1e-12), "{:?}", v);
        prop_assert!((sch.sparsity_at(start + len) - (initial + extra)).abs() < 1e-12);
        prop_assert!(v.iter().all(|s| *s >= 0.0 && *s <= initial + extra + 1e-12));
    }

    #[test]
    fn element_masks_match_the_sorting_oracle((rows, cols, s) in shape_and_scores(), sparsity in 0.0f64..1.0) {
        let n = rows * cols;
        let f = pruned_flags(&s, rows, cols, Pattern::default(), Method::PerTensor, sparsity, None).unwrap();
        prop_assert_eq!(f, oracle(&s, prune_count(sparsity, n)));
    }

    #[test]
    fn per_channel_masks_match_the_oracle_row_by_row((rows, cols, s) in shape_and_scores(), sparsity in 0.0f64..1.0) {
        let f = pruned_flags(&s, rows, cols, Pattern::default(), Method::PerChannel, sparsity, None).unwrap();
        let want: Vec<bool> = s.chunks(cols).flat_map(|row| oracle(row, prune_count(sparsity, cols))).collect();
        prop_assert_eq!(f, want);
    }

    #[test]
    fn tile_masks_match_the_oracle_on_tile_sums((rows, cols, s) in shape_and_scores(), sparsity in 0.0f64..1.0) {
        let (br, bc) = (1, 4);
        let f = pruned_flags(&s, rows, cols, Pattern::Tile { rows: br, cols: bc }, Method::PerTensor, sparsity, None).unwrap();
        // Tile sums in a fixed order; the grid's scores are multiples of 1/4, so sums are exact.
        let sums: Vec<f32> = s.chunks(bc).map(|t| t.iter().sum()).collect();
        let tiles = oracle(&sums, prune_count(sparsity, sums.len()));
        let want: Vec<bool> = tiles.iter().flat_map(|&t| std::iter::repeat_n(t, bc)).collect();
        prop_assert_eq!(f, want);
    }

    #[test]
    fn every_pattern_grows_and_is_idempotent((rows, cols, s) in shape_and_scores(), (pattern, method) in patterns(), a in 0.0f64..1.0, b in 0.0f64..1.0) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let first = pruned_flags(&s, rows, cols, pattern, method, lo, None).unwrap();
        let masked: Vec<f32> = s.iter().zip(&first).map(|(v, p)| if *p { 0.0 } else { *v }).collect();
        let second = pruned_flags(&masked, rows, cols, pattern, method, hi, Some(&first)).unwrap();
        prop_assert!(first.iter().zip(&second).all(|(x, y)| !*x || *y), "{:?}: a pruned weight came back", pattern);
        let again = pruned_flags(&masked, rows, cols, pattern, method, lo, Some(&first)).unwrap();
        prop_assert_eq!(again, first, "{:?}: re-applying at the same sparsity changed the mask", pattern);
    }

    #[test]
    fn a_previous_mask_of_the_wrong_length_is_an_error((rows, cols, s) in shape_and_scores(), (pattern, method) in patterns(), cut in 1usize..5, longer in any::<bool>()) {
        let n = rows * cols;
        let len = if longer { n + cut } else { n.saturating_sub(cut) };
        let prev = vec![false; len];
        let err = pruned_flags(&s, rows, cols, pattern, method, 0.5, Some(&prev)).unwrap_err();
        prop_assert!(err.contains("previous mask"), "{}", err);
        let short = &s[..n - 1];
        prop_assert!(pruned_flags(short, rows, cols, pattern, method, 0.5, None).is_err());
    }
}
