//! Order-preserving integer keys of element scores, read straight from stored values.
//!
//! A key is `>= 1` for a finite value and orders as the score does; `0` is left for an element a
//! previous mask prunes, so it sorts below every score. Comparing keys is comparing scores, with
//! no float in the loop and no copy of the values.

use std::ops::Range;

/// How an element's value becomes its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Score {
    /// `|x|` (magnitude, and accumulated importance).
    Abs,
    /// `x * x` (group lasso: tiles rank by their L2 norm).
    Square,
}

impl Score {
    /// The score of `x`.
    #[inline]
    pub fn of(self, x: f32) -> f32 {
        match self {
            Score::Abs => x.abs(),
            Score::Square => x * x,
        }
    }
}

/// A 16-bit float format stored little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    /// IEEE 754 binary16.
    F16,
    /// bfloat16 (the high half of an f32).
    Bf16,
}

/// The keys of a weight's elements, in stored order.
pub(super) trait Keys: Sync {
    /// Low key bits the first histogram level leaves together: 16 for 32-bit keys, 0 for keys
    /// that fit the histogram whole.
    const LOW_BITS: u32;
    /// Elements.
    fn len(&self) -> usize;
    /// The key of element `i` (stored order), `None` for NaN or infinity.
    fn key(&self, i: usize) -> Option<u32>;
    /// Calls `f(offset, key)` for every element of `range` in order, `offset` counted from
    /// `range.start`: the sequential form of [`Keys::key`] that passes use.
    fn each_key(&self, range: Range<usize>, mut f: impl FnMut(usize, Option<u32>)) {
        for (j, i) in range.enumerate() {
            f(j, self.key(i));
        }
    }
}

/// Keys of f32 values under a score.
pub(super) struct F32Keys<'a> {
    pub values: &'a [f32],
    pub score: Score,
}

impl F32Keys<'_> {
    #[inline]
    fn of(&self, x: f32) -> Option<u32> {
        // Non-negative finite f32 bits order as the values; a square that overflows to
        // infinity still orders last.
        x.is_finite().then(|| self.score.of(x).to_bits() + 1)
    }
}

impl Keys for F32Keys<'_> {
    const LOW_BITS: u32 = 16;
    fn len(&self) -> usize {
        self.values.len()
    }
    #[inline]
    fn key(&self, i: usize) -> Option<u32> {
        self.of(self.values[i])
    }
    #[inline]
    fn each_key(&self, range: Range<usize>, mut f: impl FnMut(usize, Option<u32>)) {
        for (j, &x) in self.values[range].iter().enumerate() {
            f(j, self.of(x));
        }
    }
}

/// Keys of 16-bit floats, little-endian bytes: the magnitude bits, which order as `|x|`.
///
/// For f16 they order as `x * x` too: the square of an f16 is exact in f32. For bf16 a square
/// can underflow or overflow in f32, so squares of bf16 go through f32 values instead.
pub(super) struct HalfKeys<'a> {
    pub bytes: &'a [u8],
    pub half: Half,
}

impl HalfKeys<'_> {
    /// Whether these keys order the elements exactly as `score` of their f32 values does.
    pub fn orders_as(half: Half, score: Score) -> bool {
        half == Half::F16 || score == Score::Abs
    }
}

impl HalfKeys<'_> {
    /// The exponent bits that, all set, mark NaN or infinity.
    #[inline]
    fn non_finite(&self) -> u16 {
        match self.half {
            Half::F16 => 0x7c00,
            Half::Bf16 => 0x7f80,
        }
    }

    #[inline]
    fn of(bits: u16, exponent: u16) -> Option<u32> {
        (bits & exponent != exponent).then(|| u32::from(bits & 0x7fff) + 1)
    }
}

impl Keys for HalfKeys<'_> {
    const LOW_BITS: u32 = 0;
    fn len(&self) -> usize {
        self.bytes.len() / 2
    }
    #[inline]
    fn key(&self, i: usize) -> Option<u32> {
        let bits = u16::from_le_bytes([self.bytes[2 * i], self.bytes[2 * i + 1]]);
        Self::of(bits, self.non_finite())
    }
    #[inline]
    fn each_key(&self, range: Range<usize>, mut f: impl FnMut(usize, Option<u32>)) {
        let exponent = self.non_finite();
        let bytes = &self.bytes[2 * range.start..2 * range.end];
        for (j, b) in bytes.chunks_exact(2).enumerate() {
            f(j, Self::of(u16::from_le_bytes([b[0], b[1]]), exponent));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_as_scores() {
        let values = [0.0f32, -0.0, 1e-40, -2.5, 2.5, 3.0, f32::MAX];
        let k = F32Keys {
            values: &values,
            score: Score::Abs,
        };
        let keys: Vec<u32> = (0..values.len()).map(|i| k.key(i).unwrap()).collect();
        assert_eq!(keys[0], keys[1]);
        assert!(keys[0] >= 1 && keys[0] < keys[2] && keys[2] < keys[3]);
        assert_eq!(keys[3], keys[4]);
        assert!(keys[4] < keys[5] && keys[5] < keys[6]);
        let sq = F32Keys {
            values: &[f32::MAX, f32::NAN],
            score: Score::Square,
        };
        assert_eq!(sq.key(0), Some(f32::INFINITY.to_bits() + 1));
        assert_eq!(sq.key(1), None);
    }

    #[test]
    fn half_keys_refuse_non_finite_and_ignore_sign() {
        // f16: 1.0 = 0x3c00, -1.0 = 0xbc00, inf = 0x7c00, NaN = 0x7e00, smallest subnormal 1.
        let bytes: Vec<u8> = [0x3c00u16, 0xbc00, 0x7c00, 0x7e00, 0x0001]
            .iter()
            .flat_map(|b| b.to_le_bytes())
            .collect();
        let k = HalfKeys {
            bytes: &bytes,
            half: Half::F16,
        };
        assert_eq!(k.key(0), k.key(1));
        assert_eq!((k.key(2), k.key(3)), (None, None));
        assert!(k.key(4).unwrap() < k.key(0).unwrap());
        // The same bits as bf16: 0x7c00 is a finite bf16, 0x7f80 its infinity.
        let b = HalfKeys {
            bytes: &bytes,
            half: Half::Bf16,
        };
        assert!(b.key(2).is_some());
        assert_eq!(b.key(3), Some(0x7e00 + 1));
        assert!(HalfKeys::orders_as(Half::F16, Score::Square));
        assert!(!HalfKeys::orders_as(Half::Bf16, Score::Square));
    }
}
