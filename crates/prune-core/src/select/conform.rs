//! Whether a weight's zeros follow a pattern, over the same canonical view and groups the
//! selection uses (`[out, in * kh * kw]`; N:M groups of M consecutive inputs; tiles of
//! `rows x cols`), counted a mask word at a time.

use super::bits::PackedMask;
use crate::config::Pattern;
use crate::model::host::view_2d;

/// How a weight's zeros fit one pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conformance {
    /// Groups (N:M) or tiles in the weight.
    pub groups: usize,
    /// Groups that hold the pattern: N:M, at most N non-zeros; tiles, all zero.
    pub holding: usize,
    /// Whether the whole weight holds it: every N:M group, or every zero inside an all-zero
    /// tile.
    pub holds: bool,
}

/// How the zeros of a weight of canonical `shape` fit `pattern`; bit `i` of `nonzero` is set
/// when element `i` (row-major) is not zero. An error when the pattern does not divide the
/// shape or the bits do not cover it.
pub fn conformance(
    shape: &[usize],
    pattern: Pattern,
    nonzero: &PackedMask,
) -> Result<Conformance, String> {
    // An empty weight holds every pattern (and its other dimensions may not fit a usize).
    if shape.contains(&0) {
        return Ok(Conformance {
            groups: 0,
            holding: 0,
            holds: true,
        });
    }
    let (rows, cols) = view_2d(shape);
    if nonzero.len != rows * cols || nonzero.words.len() != nonzero.len.div_ceil(64) {
        return Err(format!(
            "{} bits in {} words for {} elements",
            nonzero.len,
            nonzero.words.len(),
            rows * cols
        ));
    }
    let words = &nonzero.words;
    match pattern {
        Pattern::NOfM { n, m } => {
            if m == 0 || n > m || !cols.is_multiple_of(m) {
                return Err(format!("{n}:{m} groups do not divide {cols} inputs"));
            }
            // Groups never cross a row, so they are consecutive runs of `m` bits.
            let groups = rows * cols / m;
            let holding = if m == 4 {
                let valid = groups * 4;
                words
                    .iter()
                    .enumerate()
                    .map(|(w, &word)| holding_nibbles(word, n, (valid - 64 * w).min(64) / 4))
                    .sum()
            } else if 64 % m == 0 {
                let ones = if m == 64 { u64::MAX } else { (1u64 << m) - 1 };
                let mut holding = 0usize;
                for (w, &word) in words.iter().enumerate() {
                    let in_word = (groups - w * (64 / m)).min(64 / m);
                    holding += (0..in_word)
                        .filter(|s| ((word >> (s * m)) & ones).count_ones() as usize <= n)
                        .count();
                }
                holding
            } else {
                (0..groups)
                    .filter(|g| count_ones(words, g * m, m) <= n)
                    .count()
            };
            Ok(Conformance {
                groups,
                holding,
                holds: holding == groups,
            })
        }
        Pattern::Tile { rows: br, cols: bc } => {
            if br == 0 || bc == 0 || !rows.is_multiple_of(br) || !cols.is_multiple_of(bc) {
                return Err(format!("{br}x{bc} tiles do not divide [{rows}, {cols}]"));
            }
            let (gr, gc) = (rows / br, cols / bc);
            let (mut holding, mut stray) = (0usize, false);
            // Per tile row: which columns hold any non-zero, and which hold only non-zeros.
            let row_words = cols.div_ceil(64);
            let (mut any, mut all) = (vec![0u64; row_words], vec![0u64; row_words]);
            for tr in 0..gr {
                any.iter_mut().for_each(|w| *w = 0);
                all.iter_mut().for_each(|w| *w = u64::MAX);
                for r in tr * br..(tr + 1) * br {
                    for (k, (a, l)) in any.iter_mut().zip(all.iter_mut()).enumerate() {
                        let len = (cols - 64 * k).min(64);
                        let bits = bits_at(words, r * cols + 64 * k, len);
                        *a |= bits;
                        *l &= bits;
                    }
                }
                if bc == 1 {
                    // One bit a tile: whole words at once.
                    for (k, (&a, &l)) in any.iter().zip(&all).enumerate() {
                        let len = (cols - 64 * k).min(64);
                        let valid = if len == 64 {
                            u64::MAX
                        } else {
                            (1u64 << len) - 1
                        };
                        holding += (!a & valid).count_ones() as usize;
                        stray |= a & !l & valid != 0;
                    }
                    continue;
                }
                for tc in 0..gc {
                    let some = count_ones(&any, tc * bc, bc) > 0;
                    let full = count_ones(&all, tc * bc, bc) == bc;
                    holding += usize::from(!some);
                    stray |= some && !full;
                }
            }
            Ok(Conformance {
                groups: gr * gc,
                holding,
                holds: !stray,
            })
        }
    }
}

/// How many of the first `groups` nibbles of `word` have at most `n` bits set (2:4 and the
/// other N:4 patterns, sixteen groups a word without a loop over them).
#[inline]
fn holding_nibbles(word: u64, n: usize, groups: usize) -> usize {
    if n >= 4 {
        return groups;
    }
    const FIVES: u64 = 0x5555_5555_5555_5555;
    const THREES: u64 = 0x3333_3333_3333_3333;
    // Bit counts per 2 bits, then per nibble (0..=4).
    let pairs = word - ((word >> 1) & FIVES);
    let nibbles = (pairs & THREES) + ((pairs >> 2) & THREES);
    // Adding 7 - n sets a nibble's top bit exactly when its count exceeds n (no carry: the
    // sum stays below 16).
    let over = (nibbles + (7 - n as u64) * 0x1111_1111_1111_1111) & 0x8888_8888_8888_8888;
    let valid = if groups >= 16 {
        u64::MAX
    } else {
        (1u64 << (4 * groups)) - 1
    };
    groups - (over & valid).count_ones() as usize
}

/// `len` (at most 64) bits from bit `start`, as the low bits of a word.
#[inline]
fn bits_at(words: &[u64], start: usize, len: usize) -> u64 {
    let (w, b) = (start / 64, start % 64);
    let mut bits = words[w] >> b;
    if b > 0 && b + len > 64 {
        bits |= words[w + 1] << (64 - b);
    }
    if len < 64 {
        bits &= (1u64 << len) - 1;
    }
    bits
}

/// Set bits among `len` bits from bit `start` (within the words).
#[inline]
fn count_ones(words: &[u64], start: usize, len: usize) -> usize {
    let (mut at, end, mut ones) = (start, start + len, 0usize);
    while at < end {
        let (w, b) = (at / 64, at % 64);
        let take = (64 - b).min(end - at);
        let part = words[w] >> b;
        let part = if take == 64 {
            part
        } else {
            part & ((1u64 << take) - 1)
        };
        ones += part.count_ones() as usize;
        at += take;
    }
    ones
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::uniform_values;

    fn nonzero(v: &[f32]) -> PackedMask {
        PackedMask::pack(&v.iter().map(|x| *x != 0.0).collect::<Vec<bool>>())
    }

    #[test]
    fn two_of_four_groups_are_counted() {
        // Row 0: groups [0 1 0 1] (holds), [1 1 1 0] (does not).
        let v = [0., 1., 0., 1., 1., 1., 1., 0.];
        let c = conformance(&[1, 8], Pattern::NOfM { n: 2, m: 4 }, &nonzero(&v)).unwrap();
        assert_eq!((c.groups, c.holding, c.holds), (2, 1, false));
        let w = [0., 1., 0., 1., 0., 0., 1., 0.];
        let c = conformance(&[1, 8], Pattern::NOfM { n: 2, m: 4 }, &nonzero(&w)).unwrap();
        assert!(c.holds);
        let six = nonzero(&[1.0; 6]);
        assert!(conformance(&[1, 6], Pattern::NOfM { n: 2, m: 4 }, &six).is_err());
        assert!(conformance(&[1, 8], Pattern::NOfM { n: 2, m: 4 }, &six).is_err());
    }

    #[test]
    fn zeros_must_fill_whole_tiles() {
        // [2, 4] in 2x2 tiles: left tile all zero, right tile one zero.
        let v = [0., 0., 1., 0., 0., 0., 1., 1.];
        let c = conformance(&[2, 4], Pattern::Tile { rows: 2, cols: 2 }, &nonzero(&v)).unwrap();
        assert_eq!((c.groups, c.holding, c.holds), (2, 1, false));
        let w = [0., 0., 1., 2., 0., 0., 1., 1.];
        let c = conformance(&[2, 4], Pattern::Tile { rows: 2, cols: 2 }, &nonzero(&w)).unwrap();
        assert!(c.holds);
    }

    /// Counts over words (groups straddling words, rows not starting on one) against a count
    /// element by element.
    #[test]
    fn word_counts_agree_with_element_counts() {
        let (rows, cols) = (12, 60);
        let v: Vec<f32> = uniform_values(9, rows * cols)
            .into_iter()
            .map(|x| if x.abs() < 0.6 { 0.0 } else { x })
            .collect();
        let bits = nonzero(&v);
        for pattern in [
            Pattern::NOfM { n: 2, m: 4 },
            Pattern::NOfM { n: 0, m: 4 },
            Pattern::NOfM { n: 3, m: 4 },
            Pattern::NOfM { n: 4, m: 4 },
            Pattern::NOfM { n: 1, m: 2 },
            Pattern::NOfM { n: 3, m: 12 },
            Pattern::NOfM { n: 5, m: 60 },
            Pattern::Tile { rows: 2, cols: 3 },
            Pattern::Tile { rows: 4, cols: 1 },
            Pattern::Tile { rows: 1, cols: 60 },
        ] {
            let got = conformance(&[rows, cols], pattern, &bits).unwrap();
            let (groups, holding, stray) = match pattern {
                Pattern::NOfM { n, m } => {
                    let counts: Vec<usize> = v
                        .chunks(m)
                        .map(|g| g.iter().filter(|x| **x != 0.0).count())
                        .collect();
                    let holding = counts.iter().filter(|c| **c <= n).count();
                    (counts.len(), holding, holding != counts.len())
                }
                Pattern::Tile { rows: br, cols: bc } => {
                    let (mut holding, mut stray) = (0, false);
                    for tr in 0..rows / br {
                        for tc in 0..cols / bc {
                            let zeros = (0..br * bc)
                                .filter(|k| v[(tr * br + k / bc) * cols + tc * bc + k % bc] == 0.0)
                                .count();
                            holding += usize::from(zeros == br * bc);
                            stray |= zeros > 0 && zeros < br * bc;
                        }
                    }
                    (rows / br * (cols / bc), holding, stray)
                }
            };
            assert_eq!(
                got,
                Conformance {
                    groups,
                    holding,
                    holds: !stray
                },
                "{pattern:?}"
            );
        }
    }
}
