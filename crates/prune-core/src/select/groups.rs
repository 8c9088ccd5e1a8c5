//! Selections within groups of a weight's canonical 2-D view, read in its stored order:
//! N:M groups, per-channel rows and tiles. Rows are split over the cores; each part writes
//! the keep bits of its own rows.

use super::bits::PackedMask;
use super::keys::Keys;
use super::masks::{prune_count, smallest_k};
use super::parallel;
use super::stored::{finish, forced_at, Order, Refusal, Request, Selected};
use crate::config::Method;
use crate::model::host::view_2d;
use std::ops::Range;

/// Rows split over the cores so that every part's keep bits start on a word.
fn row_parts(rows: usize, cols: usize) -> Vec<Range<usize>> {
    let align = 64 / gcd(cols.max(1), 64);
    parallel::split(rows, parallel::parts(rows * cols), align)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Runs `each_row(rows, own_words, first_bit)` on every part of the rows, giving each the
/// words of its own rows' bits, and adds up what the parts return (non-finite counts).
fn over_rows(
    (rows, cols): (usize, usize),
    words: &mut [u64],
    each_row: impl Fn(Range<usize>, &mut [u64], usize) -> usize + Sync,
) -> usize {
    let mut items = Vec::new();
    let mut rest = words;
    for r in row_parts(rows, cols) {
        let bits = r.len() * cols;
        let start = r.start * cols;
        // Only the last part may end inside a word.
        let take = if r.end == rows { rest.len() } else { bits / 64 };
        let (mine, tail) = rest.split_at_mut(take);
        items.push((r, mine, start));
        rest = tail;
    }
    parallel::each(items, |(r, out, start)| each_row(r, out, start))
        .into_iter()
        .sum()
}

#[inline]
fn set(out: &mut [u64], bit: usize) {
    out[bit / 64] |= 1 << (bit % 64);
}

/// Keep bits of an N:M pattern: in every group of `m` consecutive inputs of a canonical row,
/// the `n` largest keys are kept (previously pruned elements go first, then the smallest keys,
/// then the lower index).
pub(super) fn n_of_m<K: Keys>(
    keys: &K,
    order: Order,
    (rows, cols): (usize, usize),
    (n, m): (usize, usize),
    previous: Option<&PackedMask>,
) -> Result<PackedMask, Refusal> {
    if n > m || m == 0 {
        return Err(Refusal::Shape(format!(
            "an N:M pattern {n}:{m} needs 0 < N <= M"
        )));
    }
    if !cols.is_multiple_of(m) {
        return Err(Refusal::Shape(format!(
            "an N:M group of {m} does not divide the input dimension {cols}"
        )));
    }
    let len = rows * cols;
    let mut words = vec![0u64; len.div_ceil(64)];
    let groups = cols / m;
    let bad = over_rows((rows, cols), &mut words, |part, out, first| {
        let mut bad = 0usize;
        let mut buf = vec![0u64; m];
        // The group's entries are (key, index in the group); its `n` largest are kept.
        let keep_largest = |buf: &mut [u64], at: usize, out: &mut [u64]| {
            if let [e0, e1, e2, e3] = *buf {
                // Groups of four: each entry's rank from six comparisons (entries differ, by
                // their index); an entry is kept when at least 4 - n entries are smaller.
                let (c01, c02, c03) = (
                    usize::from(e0 < e1),
                    usize::from(e0 < e2),
                    usize::from(e0 < e3),
                );
                let (c12, c13, c23) = (
                    usize::from(e1 < e2),
                    usize::from(e1 < e3),
                    usize::from(e2 < e3),
                );
                let ranks = [
                    3 - c01 - c02 - c03,
                    c01 + 2 - c12 - c13,
                    c02 + c12 + 1 - c23,
                    c03 + c13 + c23,
                ];
                let mut bits = 0u64;
                for (j, &rank) in ranks.iter().enumerate() {
                    bits |= u64::from(rank >= 4 - n) << j;
                }
                let at = at - first;
                out[at / 64] |= bits << (at % 64);
                if at % 64 > 60 {
                    out[at / 64 + 1] |= bits >> (64 - at % 64);
                }
                return;
            }
            if m <= 16 {
                insertion_sort(buf);
            } else {
                buf.sort_unstable();
            }
            for &e in &buf[m - n..] {
                set(out, at + (e & 0xffff_ffff) as usize - first);
            }
        };
        let mut entry = |key: Option<u32>, c: usize, j: usize| {
            let key = match key {
                Some(_) if forced_at(previous, c) => 0,
                Some(kx) => kx,
                None => {
                    bad += 1;
                    0
                }
            };
            (u64::from(key) << 32) | j as u64
        };
        match order {
            // A row's groups are consecutive stored values: one sequential read per row.
            Order::Same => {
                for r in part {
                    let row = r * cols;
                    let mut j = 0;
                    keys.each_key(row..row + cols, |c, key| {
                        buf[j] = entry(key, row + c, j);
                        j += 1;
                        if j == m {
                            keep_largest(&mut buf, row + c + 1 - m, out);
                            j = 0;
                        }
                    });
                }
            }
            // Stored rows are canonical columns: walk each group's m stored rows together.
            Order::Transposed { .. } => {
                for g in 0..groups {
                    for r in part.clone() {
                        for (j, slot) in buf.iter_mut().enumerate() {
                            let c = g * m + j;
                            *slot = entry(keys.key(order.stored(r, c, cols)), r * cols + c, j);
                        }
                        keep_largest(&mut buf, r * cols + g * m, out);
                    }
                }
            }
        }
        bad
    });
    if bad > 0 {
        return Err(Refusal::NonFinite(bad));
    }
    Ok(PackedMask { len, words })
}

/// Keep bits pruning the `k` smallest keys of every canonical row (per-channel element-wise).
pub(super) fn per_row<K: Keys>(
    keys: &K,
    order: Order,
    (rows, cols): (usize, usize),
    k: usize,
    previous: Option<&PackedMask>,
) -> Result<PackedMask, Refusal> {
    if u32::try_from(cols).is_err() {
        return Err(Refusal::Shape(format!(
            "{cols} inputs per channel: per-channel selection counts up to {}",
            u32::MAX
        )));
    }
    let len = rows * cols;
    let mut words = vec![0u64; len.div_ceil(64)];
    let bad = over_rows((rows, cols), &mut words, |part, out, first| {
        let mut bad = 0usize;
        let mut buf = Vec::with_capacity(cols);
        for r in part {
            buf.clear();
            for c in 0..cols {
                let key = match keys.key(order.stored(r, c, cols)) {
                    Some(_) if forced_at(previous, r * cols + c) => 0,
                    Some(kx) => kx,
                    None => {
                        bad += 1;
                        0
                    }
                };
                buf.push((u64::from(key) << 32) | c as u64);
            }
            if k > 0 && k < cols {
                buf.select_nth_unstable(k - 1);
            }
            for &e in &buf[k.min(cols)..] {
                set(out, r * cols + (e & 0xffff_ffff) as usize - first);
            }
        }
        bad
    });
    if bad > 0 {
        return Err(Refusal::NonFinite(bad));
    }
    Ok(PackedMask { len, words })
}

/// Tiles of `rows x cols` of the canonical view, ranked by the sum of their scores (summed in
/// row-major order within the tile, as the canonical route does, so sums agree to the bit).
/// A tile holding a previously pruned element is pruned first.
pub(super) fn tiles(
    values: &[f32],
    r: &Request<'_>,
    order: Order,
    (br, bc): (usize, usize),
) -> Result<Selected, Refusal> {
    let (rows, cols) = view_2d(&r.info.shape);
    if br == 0 || bc == 0 || !rows.is_multiple_of(br) || !cols.is_multiple_of(bc) {
        return Err(Refusal::Shape(format!(
            "a {br}x{bc} block does not divide [{rows}, {cols}]"
        )));
    }
    let (gr, gc) = (rows / br, cols / bc);
    let parts = parallel::split(gr, parallel::parts(values.len()), 1);
    // Per band of tile rows: the tile sums, whether each tile holds a pruned element, and the
    // non-finite count.
    let bands = parallel::each(parts, |band| {
        let mut grid = vec![0f32; band.len() * gc];
        let mut hit = vec![false; band.len() * gc];
        let mut bad = 0usize;
        let mut add = |row: usize, c: usize| {
            let x = values[order.stored(row, c, cols)];
            bad += usize::from(!x.is_finite());
            let t = (row / br - band.start) * gc + c / bc;
            grid[t] += r.score.of(x);
            hit[t] |= forced_at(r.previous, row * cols + c);
        };
        let band_rows = band.start * br..band.end * br;
        if let Some(done) = tile_sums_by_slices(values, r, order, (br, bc), &band_rows, cols) {
            return done;
        }
        match order {
            Order::Same => band_rows.for_each(|row| (0..cols).for_each(|c| add(row, c))),
            // Within a tile still row by row, reading `bc` stored rows side by side.
            Order::Transposed { .. } => (0..gc).for_each(|tj| {
                band_rows
                    .clone()
                    .for_each(|row| (tj * bc..(tj + 1) * bc).for_each(|c| add(row, c)))
            }),
        }
        (grid, hit, bad)
    });
    let bad: usize = bands.iter().map(|b| b.2).sum();
    if bad > 0 {
        return Err(Refusal::NonFinite(bad));
    }
    let mut grid = Vec::with_capacity(gr * gc);
    for (g, hit, _) in bands {
        grid.extend(
            g.into_iter()
                .zip(hit)
                .map(|(s, h)| if h { f32::NEG_INFINITY } else { s }),
        );
    }
    let pruned_tiles = match r.method {
        Method::PerTensor => smallest_k(&grid, prune_count(r.sparsity, grid.len())),
        Method::PerChannel => {
            let k = prune_count(r.sparsity, gc);
            grid.chunks(gc.max(1))
                .flat_map(|row| smallest_k(row, k))
                .collect()
        }
    };
    // Expand: the bits of one canonical row of each tile row, copied to its `br` rows.
    let len = rows * cols;
    let mut words = vec![0u64; len.div_ceil(64)];
    let mut row_bits = vec![0u64; cols.div_ceil(64)];
    for tr in 0..gr {
        row_bits.iter_mut().for_each(|w| *w = 0);
        for c in 0..cols {
            if !pruned_tiles[tr * gc + c / bc] {
                set(&mut row_bits, c);
            }
        }
        for row in tr * br..(tr + 1) * br {
            let first = row * cols;
            if first % 64 == 0 {
                let w0 = first / 64;
                for (w, &bits) in words[w0..].iter_mut().zip(&row_bits) {
                    *w |= bits;
                }
            } else {
                for c in (0..cols).filter(|&c| row_bits[c / 64] >> (c % 64) & 1 == 1) {
                    set(&mut words, first + c);
                }
            }
        }
    }
    Ok(finish(PackedMask { len, words }))
}

/// The tile sums, pruned-tile flags and non-finite count of one band of tile rows, read as
/// whole stored slices where a tile's elements in canonical row-major order are consecutive in
/// a slice (canonical storage; one-column tiles of transposed storage), so the sums are taken
/// in the same order as element by element. `None` for the other cases.
fn tile_sums_by_slices(
    values: &[f32],
    r: &Request<'_>,
    order: Order,
    (br, bc): (usize, usize),
    band_rows: &Range<usize>,
    cols: usize,
) -> Option<(Vec<f32>, Vec<bool>, usize)> {
    let gc = cols / bc;
    let tile_rows = band_rows.len() / br;
    let mut grid = vec![0f32; tile_rows * gc];
    let mut bad = 0usize;
    let first_tile_row = band_rows.start / br;
    let accumulate = |acc: &mut f32, xs: &[f32]| match r.score {
        super::keys::Score::Abs => xs.iter().for_each(|x| *acc += x.abs()),
        super::keys::Score::Square => xs.iter().for_each(|x| *acc += x * x),
    };
    match order {
        Order::Same => {
            for row in band_rows.clone() {
                let xs = &values[row * cols..(row + 1) * cols];
                bad += xs.iter().filter(|x| !x.is_finite()).count();
                let cells = &mut grid[(row / br - first_tile_row) * gc..][..gc];
                if bc == 1 {
                    match r.score {
                        super::keys::Score::Abs => {
                            cells.iter_mut().zip(xs).for_each(|(g, x)| *g += x.abs())
                        }
                        super::keys::Score::Square => {
                            cells.iter_mut().zip(xs).for_each(|(g, x)| *g += x * x)
                        }
                    }
                } else {
                    for (g, tile) in cells.iter_mut().zip(xs.chunks_exact(bc)) {
                        accumulate(g, tile);
                    }
                }
            }
        }
        Order::Transposed { rows, .. } if bc == 1 => {
            // Stored row `c` is canonical column `c`; a tile is `br` consecutive values of it.
            for c in 0..cols {
                let xs = &values[c * rows + band_rows.start..c * rows + band_rows.end];
                bad += xs.iter().filter(|x| !x.is_finite()).count();
                for (t, tile) in xs.chunks_exact(br).enumerate() {
                    accumulate(&mut grid[t * gc + c], tile);
                }
            }
        }
        Order::Transposed { .. } => return None,
    }
    let mut hit = vec![false; tile_rows * gc];
    if let Some(previous) = r.previous {
        for row in band_rows.clone() {
            let t0 = (row / br - first_tile_row) * gc;
            for c in 0..cols {
                hit[t0 + c / bc] |= forced_at(Some(previous), row * cols + c);
            }
        }
    }
    Some((grid, hit, bad))
}

/// Sorts a group's few entries in place.
#[inline]
fn insertion_sort(v: &mut [u64]) {
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && v[j - 1] > x {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
    }
}
