//! Magnitude-style selection over a weight's values as the framework stores them.
//!
//! The element-wise per-tensor case (the common one) runs in two passes over the stored buffer,
//! with no copy and no transposition: a radix histogram of the score keys finds the bucket that
//! holds the k-th smallest score, and the second pass decides every element outside that
//! bucket and collects the few inside it, which are then ordered by (score, canonical index) on
//! their own. Other patterns go through the canonical view (see [`super::masks`]).

use super::bits::PackedMask;
use super::masks::{prune_count, pruned_flags};
use crate::config::{Method, Pattern};
use crate::model::host::view_2d;
use crate::model::layout::{to_canonical, to_stored};
use crate::model::{Layout, WeightInfo};

/// How an element's value becomes its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Score {
    /// `|x|` (magnitude, and accumulated importance).
    Abs,
    /// `x * x` (group lasso: tiles rank by their L2 norm).
    Square,
}

/// What a selection asks for.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The weight (canonical shape and how it is stored).
    pub info: &'a WeightInfo,
    /// Score of each value.
    pub score: Score,
    /// Tiles or N:M.
    pub pattern: Pattern,
    /// Per tensor or per channel.
    pub method: Method,
    /// Fraction to prune.
    pub sparsity: f64,
    /// The current mask (canonical keep bits): what it prunes stays pruned.
    pub previous: Option<&'a PackedMask>,
}

/// A selected mask.
#[derive(Debug, Clone, PartialEq)]
pub struct Selected {
    /// Keep flags in the stored order of the values.
    pub keep_stored: Vec<bool>,
    /// The same mask as canonical keep bits.
    pub kept: PackedMask,
    /// Elements pruned.
    pub pruned: usize,
}

/// Why a selection was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// This many values are NaN or infinite.
    NonFinite(usize),
    /// The values, the previous mask or the pattern do not fit the weight.
    Shape(String),
}

/// Selects a mask over `values`, the weight's values in its stored layout.
pub fn select(values: &[f32], r: &Request<'_>) -> Result<Selected, Refusal> {
    let n = r.info.numel();
    if values.len() != n {
        return Err(Refusal::Shape(format!(
            "{} values for {n} elements",
            values.len()
        )));
    }
    if let Some(p) = r.previous.filter(|p| p.len != n) {
        return Err(Refusal::Shape(format!(
            "a previous mask of {} flags for {n} elements",
            p.len
        )));
    }
    let element_wise =
        r.pattern == Pattern::Tile { rows: 1, cols: 1 } && r.method == Method::PerTensor;
    if let Some(p) = r.previous.filter(|p| p.words.len() != n.div_ceil(64)) {
        return Err(Refusal::Shape(format!(
            "{} words cannot hold {n} mask bits",
            p.words.len()
        )));
    }
    // The histogram counts in u32.
    let fits = u32::try_from(n).is_ok();
    match (element_wise && fits, stored_order(r.info)) {
        (true, Some(order)) => Ok(smallest_k_stored(
            values,
            r,
            order,
            prune_count(r.sparsity, n),
        )?),
        _ => through_canonical(values, r),
    }
}

/// How stored positions map to canonical ones, where the fast path handles it.
#[derive(Debug, Clone, Copy)]
enum Order {
    /// Stored = canonical.
    Same,
    /// A 2-D weight stored `[cols, rows]` (canonical `[rows, cols]`).
    Transposed { rows: usize, cols: usize },
}

fn stored_order(info: &WeightInfo) -> Option<Order> {
    match (info.layout, info.shape.as_slice()) {
        (Layout::Canonical, _) | (Layout::Transposed, [] | [_]) => Some(Order::Same),
        (Layout::Transposed, &[rows, cols]) => Some(Order::Transposed { rows, cols }),
        _ => None,
    }
}

impl Order {
    /// Canonical index of stored index `i`.
    #[inline]
    fn canonical(self, i: usize) -> usize {
        match self {
            Order::Same => i,
            // stored [cols, rows]: i = c * rows + r -> canonical r * cols + c
            Order::Transposed { rows, cols } => (i % rows) * cols + i / rows,
        }
    }
}

/// The score key of a value: order-preserving on scores (all >= 0), 0 for an element the
/// previous mask prunes (below every score), `None` for NaN or infinity.
#[inline]
fn key(x: f32, score: Score, forced: bool) -> Option<u32> {
    if !x.is_finite() {
        return None;
    }
    if forced {
        return Some(0);
    }
    let s = match score {
        Score::Abs => x.abs(),
        Score::Square => x * x,
    };
    // Non-negative finite f32 bits order as the values; +1 keeps 0 for forced elements. A
    // square can overflow to infinity, which still orders last.
    Some(s.to_bits() + 1)
}

#[inline]
fn forced_at(previous: &PackedMask, canonical: usize) -> bool {
    previous.words[canonical / 64] >> (canonical % 64) & 1 == 0
}

/// Exactly `k` of the elements pruned: the smallest scores, lower canonical index first among
/// equal scores, previously pruned elements first of all.
fn smallest_k_stored(
    values: &[f32],
    r: &Request<'_>,
    order: Order,
    k: usize,
) -> Result<Selected, Refusal> {
    let n = values.len();
    let previous = r.previous;
    let key_at = |i: usize| {
        let forced = previous.is_some_and(|p| forced_at(p, order.canonical(i)));
        key(values[i], r.score, forced)
    };
    // Pass 1: histogram of the high 16 bits of every key, and a count of non-finite values.
    let mut hist = vec![0u32; 1 << 16];
    let mut bad = 0usize;
    for i in 0..n {
        match key_at(i) {
            Some(kx) => hist[(kx >> 16) as usize] += 1,
            None => bad += 1,
        }
    }
    if bad > 0 {
        return Err(Refusal::NonFinite(bad));
    }
    // The bucket holding the k-th smallest key (k = 0: none; k = n: past the last).
    let (mut below, mut bucket) = (0usize, u32::MAX);
    if k > 0 {
        for (b, &c) in hist.iter().enumerate() {
            if below + c as usize >= k {
                bucket = b as u32;
                break;
            }
            below += c as usize;
        }
    }
    // Pass 2: every element outside the bucket is decided; those inside are collected.
    let mut keep_stored = vec![true; n];
    let mut candidates: Vec<(u32, usize, usize)> = Vec::new();
    for (i, keep) in keep_stored.iter_mut().enumerate() {
        let kx = key_at(i).expect("checked in pass 1");
        let high = kx >> 16;
        if k == 0 || high > bucket {
            continue;
        }
        if high < bucket {
            *keep = false;
        } else {
            candidates.push((kx, order.canonical(i), i));
        }
    }
    // The `k - below` smallest of the bucket, by (key, canonical index), are pruned too.
    let take = k.saturating_sub(below).min(candidates.len());
    if take > 0 && take < candidates.len() {
        candidates.select_nth_unstable_by(take - 1, |a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    }
    for &(_, _, i) in &candidates[..take] {
        keep_stored[i] = false;
    }
    let mut kept = PackedMask {
        len: n,
        words: vec![0u64; n.div_ceil(64)],
    };
    for (i, &keep) in keep_stored.iter().enumerate() {
        if keep {
            let c = order.canonical(i);
            kept.words[c / 64] |= 1 << (c % 64);
        }
    }
    Ok(Selected {
        keep_stored,
        kept,
        pruned: k,
    })
}

/// Any pattern, through a canonical copy of the scores.
fn through_canonical(values: &[f32], r: &Request<'_>) -> Result<Selected, Refusal> {
    let info = r.info;
    let canonical = to_canonical(values.to_vec(), info.layout, &info.shape);
    let mut bad = 0usize;
    let scores: Vec<f32> = canonical
        .iter()
        .map(|&x| {
            bad += usize::from(!x.is_finite());
            match r.score {
                Score::Abs => x.abs(),
                Score::Square => x * x,
            }
        })
        .collect();
    if bad > 0 {
        return Err(Refusal::NonFinite(bad));
    }
    let previous = match r.previous {
        Some(p) => Some(
            p.unpack()
                .map_err(Refusal::Shape)?
                .into_iter()
                .map(|k| !k)
                .collect::<Vec<bool>>(),
        ),
        None => None,
    };
    let (rows, cols) = view_2d(&info.shape);
    let flags = pruned_flags(
        &scores,
        rows,
        cols,
        r.pattern,
        r.method,
        r.sparsity,
        previous.as_deref(),
    )
    .map_err(Refusal::Shape)?;
    let pruned = flags.iter().filter(|p| **p).count();
    let keep: Vec<bool> = flags.into_iter().map(|p| !p).collect();
    let kept = PackedMask::pack(&keep);
    Ok(Selected {
        keep_stored: to_stored(keep, info.layout, &info.shape),
        kept,
        pruned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::uniform_values;

    fn info(shape: &[usize], layout: Layout) -> WeightInfo {
        WeightInfo {
            name: "w".into(),
            shape: shape.to_vec(),
            layout,
        }
    }

    /// The fast path against the canonical route, on values with many exact ties, with and
    /// without a previous mask, stored both ways.
    #[test]
    fn the_two_pass_path_agrees_with_the_canonical_route() {
        for (seed, (rows, cols)) in [(1u64, (7, 13)), (2, (64, 300)), (3, (1, 5000))] {
            let n = rows * cols;
            // Values on a coarse grid: many equal scores, of both signs.
            let canonical: Vec<f32> = uniform_values(seed, n)
                .into_iter()
                .map(|x| (x * 8.0).round() / 8.0)
                .collect();
            for layout in [Layout::Canonical, Layout::Transposed] {
                let w = info(&[rows, cols], layout);
                let stored = to_stored(canonical.clone(), layout, &w.shape);
                for score in [Score::Abs, Score::Square] {
                    let mut previous = None;
                    for sparsity in [0.0, 0.3, 0.5, 0.9, 1.0] {
                        let r = Request {
                            info: &w,
                            score,
                            pattern: Pattern::default(),
                            method: Method::PerTensor,
                            sparsity,
                            previous: previous.as_ref(),
                        };
                        let fast = select(&stored, &r).unwrap();
                        let slow = through_canonical(&stored, &r).unwrap();
                        assert_eq!(
                            fast, slow,
                            "{rows}x{cols} {layout:?} {score:?} s={sparsity}"
                        );
                        assert_eq!(fast.pruned, prune_count(sparsity, n));
                        previous = Some(fast.kept);
                    }
                }
            }
        }
    }

    #[test]
    fn refuses_non_finite_values_and_wrong_lengths() {
        let w = info(&[2, 4], Layout::Transposed);
        let mut v = vec![1.0f32; 8];
        v[3] = f32::NAN;
        v[5] = f32::NEG_INFINITY;
        let r = Request {
            info: &w,
            score: Score::Abs,
            pattern: Pattern::default(),
            method: Method::PerTensor,
            sparsity: 0.5,
            previous: None,
        };
        assert_eq!(select(&v, &r), Err(Refusal::NonFinite(2)));
        assert!(matches!(select(&v[..7], &r), Err(Refusal::Shape(_))));
        let short = PackedMask::pack(&[true; 5]);
        let r = Request {
            previous: Some(&short),
            ..r
        };
        assert!(matches!(select(&[1.0; 8], &r), Err(Refusal::Shape(_))));
    }
}
