//! Masks as host bits: what a session keeps beside each device mask and what a state saves.

use serde::{Deserialize, Serialize};

/// Keep bits, 64 to a word.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackedMask {
    /// Number of elements.
    pub len: usize,
    /// Bit `i % 64` of word `i / 64` is set when element `i` is kept.
    pub words: Vec<u64>,
}

impl PackedMask {
    /// Packs keep flags.
    pub fn pack(keep: &[bool]) -> Self {
        let mut words = vec![0u64; keep.len().div_ceil(64)];
        for (i, k) in keep.iter().enumerate() {
            if *k {
                words[i / 64] |= 1 << (i % 64);
            }
        }
        PackedMask {
            len: keep.len(),
            words,
        }
    }

    /// Unpacks keep flags; fails if the words do not hold `len` bits.
    pub fn unpack(&self) -> Result<Vec<bool>, String> {
        if self.words.len() != self.len.div_ceil(64) {
            return Err(format!(
                "{} words cannot hold {} mask bits",
                self.words.len(),
                self.len
            ));
        }
        Ok((0..self.len)
            .map(|i| self.words[i / 64] >> (i % 64) & 1 == 1)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips() {
        let keep: Vec<bool> = (0..130).map(|i| i % 3 != 0).collect();
        let p = PackedMask::pack(&keep);
        assert_eq!(p.words.len(), 3);
        assert_eq!(p.unpack().unwrap(), keep);
        assert!(PackedMask {
            len: 200,
            words: vec![0]
        }
        .unpack()
        .is_err());
    }
}
