//! Magnitude-style selection over a weight's values as the framework stores them.
//!
//! Every pattern runs over the stored buffer, with no copy and no transposition, and returns
//! canonical keep bits:
//! - element-wise per tensor: two passes, a radix histogram of the score keys that finds the
//!   bucket holding the k-th smallest score, then one pass that decides every element outside
//!   that bucket and collects the few inside it, ordered by (score, canonical index) on their
//!   own;
//! - per channel, N:M and tiles: one pass per group of rows (see [`super::groups`]).
//!
//! Passes over large weights are split over the cores. A layout other than canonical or a
//! transposed 2-D weight goes through a canonical copy (see [`super::masks`]).

use super::bits::PackedMask;
use super::groups;
use super::keys::{F32Keys, HalfKeys, Keys};
pub use super::keys::{Half, Score};
use super::masks::{prune_count, pruned_flags};
use super::parallel;
use crate::config::{Method, Pattern};
use crate::model::host::view_2d;
use crate::model::layout::{try_to_canonical, try_to_stored};
use crate::model::{Layout, WeightInfo};

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
    /// Canonical keep bits.
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
    check(values.len(), r)?;
    let keys = F32Keys {
        values,
        score: r.score,
    };
    match (stored_order(r.info), tile(r.pattern)) {
        (Some(order), None) => over_keys(&keys, r, order),
        (Some(order), Some(block)) => groups::tiles(values, r, order, block),
        (None, _) => through_canonical(values, r),
    }
}

/// Selects a mask over 16-bit floats (little-endian bytes, stored layout) without converting
/// them, where their bits order as the score does; `None` where the request needs f32 values
/// (tiles sum scores; squares of bf16 leave f32's range), for [`select`] to take.
pub fn select_half(bytes: &[u8], half: Half, r: &Request<'_>) -> Result<Option<Selected>, Refusal> {
    if !bytes.len().is_multiple_of(2) {
        return Err(Refusal::Shape(format!(
            "{} bytes are not whole 16-bit values",
            bytes.len()
        )));
    }
    check(bytes.len() / 2, r)?;
    let order = stored_order(r.info);
    match order {
        Some(order) if tile(r.pattern).is_none() && HalfKeys::orders_as(half, r.score) => {
            over_keys(&HalfKeys { bytes, half }, r, order).map(Some)
        }
        _ => Ok(None),
    }
}

/// The stored-order flags (1 = keep, 0 = prune) of canonical keep bits: what a backend uploads.
pub fn stored_flags(kept: &PackedMask, info: &WeightInfo) -> Result<Vec<u8>, String> {
    let n = info.numel();
    if kept.len != n || kept.words.len() != n.div_ceil(64) {
        return Err(format!(
            "a mask of {} bits in {} words for {n} elements",
            kept.len,
            kept.words.len()
        ));
    }
    let bit = |c: usize| (kept.words[c / 64] >> (c % 64) & 1) as u8;
    Ok(match stored_order(info) {
        Some(Order::Same) => {
            let mut out = vec![0u8; n];
            let parts = parallel::split(kept.words.len(), parallel::parts(n), 1);
            let mut items = Vec::with_capacity(parts.len());
            let mut rest = out.as_mut_slice();
            for words in parts {
                let (mine, tail) = rest.split_at_mut((words.len() * 64).min(rest.len()));
                items.push((words, mine));
                rest = tail;
            }
            parallel::each(items, |(words, out)| {
                for (chunk, &word) in out.chunks_mut(64).zip(&kept.words[words]) {
                    for (j, flag) in chunk.iter_mut().enumerate() {
                        *flag = (word >> j & 1) as u8;
                    }
                }
            });
            out
        }
        Some(Order::Transposed { rows, cols }) => {
            // Stored row `c` holds canonical column `c`. Parts take whole stored rows; within
            // one, 64 canonical columns at a time read one mask word per canonical row.
            let mut out = vec![0u8; n];
            let parts = parallel::split(cols, parallel::parts(n), 64);
            let mut items = Vec::with_capacity(parts.len());
            let mut rest = out.as_mut_slice();
            for columns in parts {
                let (mine, tail) = rest.split_at_mut(columns.len() * rows);
                items.push((columns, mine));
                rest = tail;
            }
            parallel::each(items, |(columns, out)| {
                let first = columns.start;
                if cols % 64 == 0 {
                    for block in (columns.start..columns.end).step_by(64) {
                        let width = (columns.end - block).min(64);
                        for r in 0..rows {
                            let word = kept.words[(r * cols + block) / 64];
                            for j in 0..width {
                                out[(block + j - first) * rows + r] = (word >> j & 1) as u8;
                            }
                        }
                    }
                } else {
                    for c in columns {
                        for r in 0..rows {
                            out[(c - first) * rows + r] = bit(r * cols + c);
                        }
                    }
                }
            });
            out
        }
        None => try_to_stored((0..n).map(bit).collect(), info.layout, &info.shape)?,
    })
}

/// Length checks shared by both entry points.
fn check(len: usize, r: &Request<'_>) -> Result<(), Refusal> {
    let n = r.info.numel();
    if len != n {
        return Err(Refusal::Shape(format!("{len} values for {n} elements")));
    }
    if let Some(p) = r.previous {
        if p.len != n {
            return Err(Refusal::Shape(format!(
                "a previous mask of {} flags for {n} elements",
                p.len
            )));
        }
        if p.words.len() != n.div_ceil(64) {
            return Err(Refusal::Shape(format!(
                "{} words cannot hold {n} mask bits",
                p.words.len()
            )));
        }
    }
    Ok(())
}

/// The block of a tile pattern larger than one element.
fn tile(pattern: Pattern) -> Option<(usize, usize)> {
    match pattern {
        Pattern::Tile { rows, cols } if (rows, cols) != (1, 1) => Some((rows, cols)),
        _ => None,
    }
}

/// Element-wise (per tensor or per channel) and N:M selections, which only compare keys.
fn over_keys<K: Keys>(keys: &K, r: &Request<'_>, order: Order) -> Result<Selected, Refusal> {
    let n = keys.len();
    let (rows, cols) = view_2d(&r.info.shape);
    let kept = match (r.pattern, r.method) {
        (Pattern::NOfM { n: keep, m }, _) => {
            groups::n_of_m(keys, order, (rows, cols), (keep, m), r.previous)?
        }
        (_, Method::PerChannel) => {
            let k = prune_count(r.sparsity, cols);
            groups::per_row(keys, order, (rows, cols), k, r.previous)?
        }
        // The histogram counts in u32.
        (_, Method::PerTensor) if u32::try_from(n).is_ok() => {
            smallest_k(keys, order, prune_count(r.sparsity, n), r.previous)?
        }
        (_, Method::PerTensor) => {
            return Err(Refusal::Shape(format!(
                "{n} elements: element-wise selection counts up to {} per weight",
                u32::MAX
            )))
        }
    };
    Ok(finish(kept))
}

/// A selection from its keep bits.
pub(super) fn finish(kept: PackedMask) -> Selected {
    let ones: usize = kept.words.iter().map(|w| w.count_ones() as usize).sum();
    Selected {
        pruned: kept.len - ones,
        kept,
    }
}

/// How stored positions map to canonical ones.
#[derive(Debug, Clone, Copy)]
pub(super) enum Order {
    /// Stored = canonical.
    Same,
    /// A 2-D weight stored `[cols, rows]` (canonical `[rows, cols]`).
    Transposed { rows: usize, cols: usize },
}

/// The order of a weight's stored values, where the stored passes handle it.
fn stored_order(info: &WeightInfo) -> Option<Order> {
    match (info.layout, info.shape.as_slice()) {
        (Layout::Transposed, &[rows, cols]) => Some(Order::Transposed { rows, cols }),
        (Layout::Hwio, [_, _, _, _]) => None,
        _ => Some(Order::Same),
    }
}

impl Order {
    /// Stored index of canonical row `r`, column `c` of a `[_, cols]` view.
    #[inline]
    pub fn stored(self, r: usize, c: usize, cols: usize) -> usize {
        match self {
            Order::Same => r * cols + c,
            Order::Transposed { rows, .. } => c * rows + r,
        }
    }
}

/// Whether the previous mask prunes canonical element `c`.
#[inline]
pub(super) fn forced_at(previous: Option<&PackedMask>, c: usize) -> bool {
    previous.is_some_and(|p| p.words[c / 64] >> (c % 64) & 1 == 0)
}

/// The stored buffer split over the cores: element ranges that start on a mask word (stored =
/// canonical) or on a stored row (transposed), each visited by [`visit`].
fn stored_parts(order: Order, n: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parallel::parts(n);
    match order {
        Order::Same => parallel::split(n, parts, 64),
        Order::Transposed { rows, cols } => parallel::split(cols, parts, 1)
            .into_iter()
            .map(|r| r.start * rows..r.end * rows)
            .collect(),
    }
}

/// Calls `f(canonical index, key)` for every element of `part` (from [`stored_parts`]), in
/// stored order; an element the previous mask prunes has key 0.
#[inline]
fn visit<K: Keys>(
    keys: &K,
    order: Order,
    part: std::ops::Range<usize>,
    previous: Option<&PackedMask>,
    mut f: impl FnMut(usize, Option<u32>),
) {
    match order {
        Order::Same => {
            let Some(p) = previous else {
                let start = part.start;
                return keys.each_key(part, |j, k| f(start + j, k));
            };
            for w in part.start / 64..part.end.div_ceil(64) {
                let (start, prev) = (w * 64, p.words[w]);
                keys.each_key(start..(start + 64).min(part.end), |j, k| {
                    let forced = prev >> j & 1 == 0;
                    f(start + j, k.map(|kx| if forced { 0 } else { kx }));
                });
            }
        }
        Order::Transposed { rows, cols } => {
            for stored_row in part.start / rows.max(1)..part.end / rows.max(1) {
                let start = stored_row * rows;
                keys.each_key(start..start + rows, |r, k| {
                    let c = r * cols + stored_row;
                    let forced = forced_at(previous, c);
                    f(c, k.map(|kx| if forced { 0 } else { kx }));
                });
            }
        }
    }
}

/// Keep bits pruning exactly `k` elements: the smallest keys, lower canonical index first
/// among equal keys, previously pruned elements first of all.
fn smallest_k<K: Keys>(
    keys: &K,
    order: Order,
    k: usize,
    previous: Option<&PackedMask>,
) -> Result<PackedMask, Refusal> {
    let n = keys.len();
    // Pass 1: histogram of the high bits of every key, and a count of non-finite values.
    let counted = parallel::each(stored_parts(order, n), |part| {
        let mut hist = vec![0u32; 1 << 16];
        let mut bad = 0usize;
        visit(keys, order, part, previous, |_, key| match key {
            Some(kx) => hist[(kx >> K::LOW_BITS) as usize] += 1,
            None => bad += 1,
        });
        (hist, bad)
    });
    let bad: usize = counted.iter().map(|c| c.1).sum();
    if bad > 0 {
        return Err(Refusal::NonFinite(bad));
    }
    let mut words = vec![0u64; n.div_ceil(64)];
    if k == 0 {
        fill_kept(&mut words, n);
        return Ok(PackedMask { len: n, words });
    }
    // The bucket holding the k-th smallest key.
    let (mut below, mut bucket) = (0usize, u32::MAX);
    for b in 0..1usize << 16 {
        let c: usize = counted.iter().map(|(h, _)| h[b] as usize).sum();
        if below + c >= k {
            bucket = b as u32;
            break;
        }
        below += c;
    }
    drop(counted);
    // Pass 2: every element outside the bucket is decided; those inside are collected, as
    // (key, canonical index). `out` holds the bits from canonical index `base` on.
    let decide = |part: std::ops::Range<usize>, out: &mut [u64], base: usize| {
        let mut candidates: Vec<(u32, usize)> = Vec::new();
        visit(keys, order, part, previous, |c, key| {
            let kx = key.unwrap_or(u32::MAX);
            let high = kx >> K::LOW_BITS;
            let at = c - base;
            out[at / 64] |= u64::from(high > bucket) << (at % 64);
            if high == bucket {
                candidates.push((kx, c));
            }
        });
        candidates
    };
    let parts = stored_parts(order, n);
    let mut candidates = match order {
        // Each part writes its own words.
        Order::Same => {
            let mut items = Vec::with_capacity(parts.len());
            let mut rest = words.as_mut_slice();
            for part in parts {
                let (mine, tail) = rest.split_at_mut(part.len().div_ceil(64));
                items.push((part, mine));
                rest = tail;
            }
            parallel::each(items, |(part, out)| {
                let base = part.start;
                decide(part, out, base)
            })
            .concat()
        }
        // Canonical positions of one part spread over the whole mask: with several parts,
        // each fills a mask of its own, merged after.
        Order::Transposed { .. } if parts.len() == 1 => {
            let all = 0..n;
            decide(all, &mut words, 0)
        }
        Order::Transposed { .. } => {
            let found = parallel::each(parts, |part| {
                let mut own = vec![0u64; n.div_ceil(64)];
                let c = decide(part, &mut own, 0);
                (own, c)
            });
            let mut all = Vec::new();
            for (own, c) in found {
                for (w, o) in words.iter_mut().zip(own) {
                    *w |= o;
                }
                all.extend(c);
            }
            all
        }
    };
    // The `k - below` smallest of the bucket, by (key, canonical index), are pruned too.
    let take = k - below;
    if take < candidates.len() {
        if take > 0 {
            candidates.select_nth_unstable(take - 1);
        }
        for &(_, c) in &candidates[take..] {
            words[c / 64] |= 1 << (c % 64);
        }
    }
    Ok(PackedMask { len: n, words })
}

/// Sets the first `n` bits.
pub(super) fn fill_kept(words: &mut [u64], n: usize) {
    words.iter_mut().for_each(|w| *w = u64::MAX);
    if !n.is_multiple_of(64) {
        if let Some(last) = words.last_mut() {
            *last = (1u64 << (n % 64)) - 1;
        }
    }
}

/// Any pattern, through a canonical copy of the scores.
fn through_canonical(values: &[f32], r: &Request<'_>) -> Result<Selected, Refusal> {
    let info = r.info;
    let canonical =
        try_to_canonical(values.to_vec(), info.layout, &info.shape).map_err(Refusal::Shape)?;
    let mut bad = 0usize;
    let scores: Vec<f32> = canonical
        .iter()
        .map(|&x| {
            bad += usize::from(!x.is_finite());
            r.score.of(x)
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
    let keep: Vec<bool> = flags.into_iter().map(|p| !p).collect();
    Ok(finish(PackedMask::pack(&keep)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layout::to_stored;
    use crate::rng::uniform_values;

    fn info(shape: &[usize], layout: Layout) -> WeightInfo {
        WeightInfo {
            name: "w".into(),
            shape: shape.to_vec(),
            layout,
        }
    }

    fn patterns() -> Vec<(Pattern, Method)> {
        let mut out = vec![];
        for method in [Method::PerTensor, Method::PerChannel] {
            for (rows, cols) in [(1, 1), (2, 2), (4, 1), (1, 4)] {
                out.push((Pattern::Tile { rows, cols }, method));
            }
        }
        for (n, m) in [(2, 4), (1, 4), (0, 4), (4, 4)] {
            out.push((Pattern::NOfM { n, m }, Method::PerTensor));
        }
        out
    }

    /// The stored passes against the canonical route, on values with many exact ties, for
    /// every pattern, with and without a previous mask, stored both ways, on weights small
    /// enough for one thread and large enough to be split over the cores.
    #[test]
    fn the_stored_passes_agree_with_the_canonical_route() {
        for (seed, (rows, cols)) in [
            (1u64, (8, 12)),
            (2, (64, 300)),
            (3, (1, 5000)),
            (4, (512, 1028)),
        ] {
            let n = rows * cols;
            // Values on a coarse grid: many equal scores, of both signs.
            let canonical: Vec<f32> = uniform_values(seed, n)
                .into_iter()
                .map(|x| (x * 8.0).round() / 8.0)
                .collect();
            for layout in [Layout::Canonical, Layout::Transposed] {
                let w = info(&[rows, cols], layout);
                let stored = to_stored(canonical.clone(), layout, &w.shape);
                for (pattern, method) in patterns() {
                    for score in [Score::Abs, Score::Square] {
                        let mut previous = None;
                        for sparsity in [0.0, 0.3, 0.5, 0.9, 1.0] {
                            let r = Request {
                                info: &w,
                                score,
                                pattern,
                                method,
                                sparsity,
                                previous: previous.as_ref(),
                            };
                            let what = format!(
                                "{rows}x{cols} {layout:?} {pattern:?} {method:?} {score:?} s={sparsity}"
                            );
                            let fast = select(&stored, &r);
                            let slow = through_canonical(&stored, &r);
                            assert_eq!(fast, slow, "{what}");
                            let Ok(fast) = fast else { break };
                            if pattern == Pattern::default() && method == Method::PerTensor {
                                assert_eq!(fast.pruned, prune_count(sparsity, n), "{what}");
                            }
                            assert_eq!(
                                stored_flags(&fast.kept, &w).unwrap(),
                                to_stored(fast.kept.unpack().unwrap(), layout, &w.shape)
                                    .into_iter()
                                    .map(u8::from)
                                    .collect::<Vec<u8>>(),
                                "{what}"
                            );
                            previous = Some(fast.kept);
                        }
                    }
                }
            }
        }
    }

    /// f16 and bf16 bits select exactly what their f32 values select.
    #[test]
    fn half_values_select_as_their_f32_values() {
        let (rows, cols) = (96, 80);
        let canonical: Vec<f32> = uniform_values(5, rows * cols)
            .into_iter()
            .map(|x| (x * 64.0).round() / 16.0)
            .collect();
        for half in [Half::F16, Half::Bf16] {
            let (values, bytes): (Vec<f32>, Vec<u8>) = match half {
                Half::F16 => {
                    let h: Vec<half::f16> =
                        canonical.iter().map(|&x| half::f16::from_f32(x)).collect();
                    (
                        h.iter().map(|x| x.to_f32()).collect(),
                        h.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    )
                }
                Half::Bf16 => {
                    let h: Vec<half::bf16> =
                        canonical.iter().map(|&x| half::bf16::from_f32(x)).collect();
                    (
                        h.iter().map(|x| x.to_f32()).collect(),
                        h.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    )
                }
            };
            for layout in [Layout::Canonical, Layout::Transposed] {
                let w = info(&[rows, cols], layout);
                let stored_values = to_stored(values.clone(), layout, &w.shape);
                let stored_bytes: Vec<u8> = stored_values
                    .iter()
                    .flat_map(|&x| match half {
                        Half::F16 => half::f16::from_f32(x).to_le_bytes(),
                        Half::Bf16 => half::bf16::from_f32(x).to_le_bytes(),
                    })
                    .collect();
                assert_eq!(stored_bytes.len(), bytes.len());
                for (pattern, method) in patterns() {
                    for score in [Score::Abs, Score::Square] {
                        let r = Request {
                            info: &w,
                            score,
                            pattern,
                            method,
                            sparsity: 0.6,
                            previous: None,
                        };
                        let from_f32 = select(&stored_values, &r).unwrap();
                        match select_half(&stored_bytes, half, &r).unwrap() {
                            Some(from_bits) => assert_eq!(
                                from_bits, from_f32,
                                "{half:?} {layout:?} {pattern:?} {method:?} {score:?}"
                            ),
                            None => assert!(
                                tile(pattern).is_some()
                                    || (half, score) == (Half::Bf16, Score::Square),
                                "{half:?} {pattern:?} {score:?} fell back"
                            ),
                        }
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
        for (pattern, method) in patterns() {
            let r = Request {
                info: &w,
                score: Score::Abs,
                pattern,
                method,
                sparsity: 0.5,
                previous: None,
            };
            if matches!(pattern, Pattern::Tile { rows: 4, .. }) {
                assert!(
                    matches!(select(&v, &r), Err(Refusal::Shape(_))),
                    "{pattern:?}"
                );
                continue;
            }
            assert_eq!(
                select(&v, &r),
                Err(Refusal::NonFinite(2)),
                "{pattern:?} {method:?}"
            );
            assert!(matches!(select(&v[..7], &r), Err(Refusal::Shape(_))));
            let short = PackedMask::pack(&[true; 5]);
            let r = Request {
                previous: Some(&short),
                ..r
            };
            assert!(matches!(select(&[1.0; 8], &r), Err(Refusal::Shape(_))));
            assert!(matches!(
                select_half(&[0; 15], Half::F16, &r),
                Err(Refusal::Shape(_))
            ));
        }
        assert!(stored_flags(&PackedMask::pack(&[true; 7]), &w).is_err());
    }
}
