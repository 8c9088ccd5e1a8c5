//! The session's state on disk: masks, schedule position and counters, so that a run stopped at
//! any point resumes with bit-identical masks.
//!
//! Format (JSON, `format: "prune-session"`, `version: 2`):
//!
//! ```text
//! { "format": "prune-session", "version": 2,
//!   "pruners": <the resolved pruners, as `prune check --json` shows them without schedules>,
//!   "open_epoch": null | e, "steps": n,
//!   "bound": [ { "applied_sparsity": s,
//!                "weights": [ { "name", "shape", "pruned", "mask": null | { "len", "words" },
//!                               "importance": "<base64>" (gradient_sensitivity only) } ] } ] }
//! ```
//!
//! Masks are stored as keep bits in the canonical layout (bit i of word i / 64 is element i),
//! so a state saved on one backend loads on another. Importance is the canonical-layout f32
//! values as little-endian bytes in standard base64 (a BERT-sized float list in JSON text would
//! be several times larger and slower to read).

use crate::error::PruneError;
use serde::{Deserialize, Serialize};

pub use crate::select::bits::PackedMask;

/// Current version of the state format.
pub const STATE_VERSION: u32 = 2;
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
    pub importance: Option<F32Values>,
}

/// f32 values saved as base64 of their little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct F32Values(pub Vec<f32>);

impl Serialize for F32Values {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use base64::Engine;
        let bytes: Vec<u8> = self.0.iter().flat_map(|x| x.to_le_bytes()).collect();
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

impl<'de> Deserialize<'de> for F32Values {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use base64::Engine;
        use serde::de::Error;
        let text = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| D::Error::custom(format!("importance is not base64: {e}")))?;
        if bytes.len() % 4 != 0 {
            return Err(D::Error::custom(format!(
                "importance of {} bytes is not a whole number of f32 values",
                bytes.len()
            )));
        }
        Ok(F32Values(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
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
    fn importance_round_trips_bit_exactly_and_refuses_a_torn_value() {
        let v = F32Values(vec![0.0, -0.0, 1.5e-39, f32::MAX, 3.25]);
        let text = serde_json::to_string(&v).unwrap();
        let back: F32Values = serde_json::from_str(&text).unwrap();
        let bits = |v: &F32Values| v.0.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&v));
        let err = serde_json::from_str::<F32Values>("\"AAAA\"")
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains("not a whole number"), "{err}");
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
