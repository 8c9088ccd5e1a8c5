//! Digests of a session's masks and schedule position: what data-parallel ranks compare to
//! prove they prune alike, without sending the masks themselves.

use super::{Phase, Pruning};
use crate::model::TensorBackend;

/// 64-bit FNV-1a over words: stable across platforms, processes and runs.
#[derive(Debug, Clone, Copy)]
pub struct Digest(u64);

impl Default for Digest {
    fn default() -> Self {
        Digest(0xcbf2_9ce4_8422_2325)
    }
}

impl Digest {
    /// Folds one word in.
    pub fn word(&mut self, w: u64) -> &mut Self {
        for byte in w.to_le_bytes() {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }

    /// The digest so far.
    pub fn value(&self) -> u64 {
        self.0
    }
}

/// What a session's masks and schedule position digest to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDigest {
    /// The open epoch, if any.
    pub epoch: Option<usize>,
    /// Optimizer steps seen.
    pub steps: u64,
    /// Structured shrinks applied.
    pub shrinks: u64,
    /// Each pruner's applied sparsity and each structured pruner's kept groups.
    pub position: u64,
    /// One digest per masked weight, in the session's order: (name, digest of its keep bits).
    pub masks: Vec<(String, u64)>,
}

impl SessionDigest {
    /// One digest over every mask (their order included).
    pub fn masks_digest(&self) -> u64 {
        let mut d = Digest::default();
        for (_, m) in &self.masks {
            d.word(*m);
        }
        d.value()
    }
}

impl<B: TensorBackend> Pruning<B> {
    /// Digests of every mask (from the host bits, no device access) and of the schedule
    /// position. Two sessions that hold the same masks at the same point of the same schedule
    /// give equal digests.
    pub fn digest(&self) -> SessionDigest {
        let mut position = Digest::default();
        let mut masks = Vec::new();
        for b in self.bound.iter().flatten() {
            position.word(b.applied_sparsity.to_bits());
            for w in &b.weights {
                let mut d = Digest::default();
                d.word(w.pruned as u64);
                if let Some(bits) = &w.kept {
                    d.word(bits.len as u64);
                    for word in &bits.words {
                        d.word(*word);
                    }
                }
                masks.push((w.info.name.clone(), d.value()));
            }
        }
        for layer in self.structured.iter().flat_map(|p| p.state()) {
            position.word(layer.layer as u64);
            for k in layer.kept.iter().flatten() {
                position.word(*k as u64);
            }
        }
        SessionDigest {
            epoch: match self.phase {
                Phase::InEpoch(e) => Some(e),
                Phase::BetweenEpochs => None,
            },
            steps: self.steps,
            shrinks: self.shrinks,
            position: position.value(),
            masks,
        }
    }
}
