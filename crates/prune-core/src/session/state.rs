//! The session's state on disk: masks, schedule position and counters, so that a run stopped at
//! any point resumes with bit-identical masks.
//!
//! Format (JSON, `format: "prune-session"`, `version: 1`):
//!
//! ```text
//! { "format": "prune-session", "version": 1,
//!   "pruners": <the resolved pruners, as `prune check --json` shows them without schedules>,
//!   "open_epoch": null | e, "steps": n,
//!   "bound": [ { "applied_sparsity": s,
//!                "weights": [ { "name", "shape", "pruned", "mask": null | { "len", "words" },
//!                               "importance": [f32, ...] (gradient_sensitivity only) } ] } ] }
//! ```
//!
//! Masks are stored as keep bits in the canonical layout (bit i of word i / 64 is element i),
//! so a state saved on one backend loads on another.

use crate::error::{PruneError, Result};
use serde::{Deserialize, Serialize};

/// Current version of the state format.
pub const STATE_VERSION: u32 = 1;
/// The `format` tag of a state file.
pub const STATE_FORMAT: &str = "prune-session";

/// A whole session's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    /// Always [`STATE_FORMAT`].
    pub format: String,
    /// [`STATE_VERSION`] when written.
    pub version: u32,
    /// The resolved pruners of the config that wrote it.
    pub pruners: serde_json::Value,
    /// The epoch open when saved, if any.
    pub open_epoch: Option<usize>,
    /// Steps seen.
    pub steps: u64,
    /// Per pruner, in config order; empty if the session had not met its model yet.
    pub bound: Vec<PrunerState>,
    /// Per structured gradient_sensitivity pruner, in config order: per-layer importance.
    #[serde(default)]
    pub structured: Vec<Vec<crate::algo::structured::LayerState>>,
}

/// One pruner's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrunerState {
    /// The sparsity its masks were computed for.
    pub applied_sparsity: f64,
    /// Its weights, in order.
    pub weights: Vec<WeightState>,
}

/// One weight's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightState {
    /// Canonical name.
    pub name: String,
    /// Canonical shape.
    pub shape: Vec<usize>,
    /// Elements the mask prunes.
    pub pruned: usize,
    /// The mask, if one was computed.
    pub mask: Option<PackedMask>,
    /// gradient_sensitivity: accumulated importance, canonical layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importance: Option<Vec<f32>>,
}

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

/// An error about a state file.
pub(crate) fn state_error(path: &str, reason: impl Into<String>) -> PruneError {
    PruneError::State {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// Names the first difference between two JSON values, as a path such as `[0].target_sparsity`.
pub(crate) fn first_difference(
    a: &serde_json::Value,
    b: &serde_json::Value,
    path: &str,
) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(u), Some(v)) => first_difference(u, v, &format!("{path}.{k}")),
                _ => Some(format!("{path}.{k}")),
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path} (length {} vs {})", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (u, v))| first_difference(u, v, &format!("{path}[{i}]")))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: {a} (saved) vs {b} (now)")),
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

    #[test]
    fn differences_are_located() {
        let a = serde_json::json!([{"target_sparsity": 0.9, "names": ["a"]}]);
        let b = serde_json::json!([{"target_sparsity": 0.8, "names": ["a"]}]);
        assert_eq!(
            first_difference(&a, &b, "pruners").unwrap(),
            "pruners[0].target_sparsity: 0.9 (saved) vs 0.8 (now)"
        );
        assert_eq!(first_difference(&a, &a, "pruners"), None);
    }
}
