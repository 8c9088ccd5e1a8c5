//! A Hugging Face `config.json` brought to a shrunk BERT-family checkpoint's sizes: the FFN
//! width (`intermediate_size`) and the removed heads (`pruned_heads`, which Hugging Face applies
//! to a new model before it loads the weights).

use prune_core::model::ShrinkOp;
use prune_core::{PruneError, Result};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The layer number in a name such as `bert.encoder.layer.3.intermediate.dense.weight`.
fn layer_of(name: &str) -> Option<usize> {
    let rest = &name[name.find("layer.")? + "layer.".len()..];
    rest.split('.').next()?.parse().ok()
}

fn problem(path: &Path, reason: String) -> PruneError {
    PruneError::Io {
        path: path.display().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
    }
}

/// `config` (read from `path`) updated to the shrinks in `ops`; `None` when no shrink changes a
/// size it records. Refuses layers left with different FFN widths (config.json holds one),
/// heads removed from a config that already lists pruned heads, and missing or unreadable
/// sizes, naming the key.
pub fn updated(path: &Path, config: &Value, ops: &[ShrinkOp]) -> Result<Option<Value>> {
    let mut out = config.clone();
    let Some(obj) = out.as_object_mut() else {
        return Err(problem(path, "expected a JSON object".into()));
    };
    let size = |obj: &Map<String, Value>, key: &str| -> Result<usize> {
        obj.get(key)
            .and_then(Value::as_u64)
            .map(|v| v as usize)
            .ok_or_else(|| problem(path, format!("`{key}` is missing or not a whole number")))
    };
    let mut changed = false;
    let ffn: BTreeMap<usize, usize> = ops
        .iter()
        .filter(|op| op.axis == 0 && op.weight.ends_with("intermediate.dense.weight"))
        .filter_map(|op| Some((layer_of(&op.weight)?, op.keep.len())))
        .collect();
    if let Some(&width) = ffn.values().next() {
        if let Some((layer, other)) = ffn.iter().find(|(_, w)| **w != width) {
            return Err(problem(
                path,
                format!(
                    "layer {layer} keeps {other} FFN units and another layer {width}; \
                     `intermediate_size` holds one width for every layer"
                ),
            ));
        }
        obj.insert("intermediate_size".into(), Value::from(width));
        changed = true;
    }
    let queries: Vec<(usize, &ShrinkOp)> = ops
        .iter()
        .filter(|op| op.axis == 0 && op.weight.ends_with("attention.self.query.weight"))
        .filter_map(|op| Some((layer_of(&op.weight)?, op)))
        .collect();
    if !queries.is_empty() {
        let hidden = size(obj, "hidden_size")?;
        let heads = size(obj, "num_attention_heads")?;
        if heads == 0 || hidden % heads != 0 {
            return Err(problem(
                path,
                format!(
                    "`hidden_size` {hidden} is not a multiple of `num_attention_heads` {heads}"
                ),
            ));
        }
        let head_dim = hidden / heads;
        let already = obj
            .get("pruned_heads")
            .and_then(Value::as_object)
            .is_some_and(|m| {
                m.values()
                    .any(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            });
        if already {
            return Err(problem(
                path,
                "`pruned_heads` already lists removed heads; shrink the original checkpoint".into(),
            ));
        }
        let mut pruned = Map::new();
        for (layer, op) in queries {
            let kept: Vec<usize> = op.keep.iter().map(|r| r / head_dim).collect();
            let removed: Vec<Value> = (0..heads)
                .filter(|h| !kept.contains(h))
                .map(Value::from)
                .collect();
            if !removed.is_empty() {
                pruned.insert(layer.to_string(), Value::Array(removed));
            }
        }
        obj.insert("pruned_heads".into(), Value::Object(pruned));
        changed = true;
    }
    Ok(changed.then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(weight: &str, keep: Vec<usize>) -> ShrinkOp {
        ShrinkOp {
            weight: weight.into(),
            axis: 0,
            keep,
        }
    }

    #[test]
    fn ffn_width_and_removed_heads_are_recorded() {
        let config = serde_json::json!({"hidden_size": 8, "num_attention_heads": 4, "intermediate_size": 16});
        let ops = [
            op("encoder.layer.0.intermediate.dense.weight", vec![1, 2, 3]),
            op("encoder.layer.1.intermediate.dense.weight", vec![0, 5, 9]),
            op(
                "encoder.layer.1.attention.self.query.weight",
                vec![0, 1, 6, 7],
            ),
        ];
        let out = updated(Path::new("config.json"), &config, &ops)
            .unwrap()
            .unwrap();
        assert_eq!(out["intermediate_size"], 3);
        assert_eq!(out["pruned_heads"], serde_json::json!({"1": [1, 2]}));
        assert_eq!(out["hidden_size"], 8);
        assert!(updated(Path::new("c"), &config, &[]).unwrap().is_none());
    }

    #[test]
    fn uneven_widths_and_earlier_pruned_heads_are_refused() {
        let config = serde_json::json!({"hidden_size": 8, "num_attention_heads": 4});
        let ops = [
            op("encoder.layer.0.intermediate.dense.weight", vec![1, 2, 3]),
            op("encoder.layer.1.intermediate.dense.weight", vec![0, 5]),
        ];
        let err = updated(Path::new("c"), &config, &ops)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("layer 1 keeps 2 FFN units") && err.contains("intermediate_size"),
            "{err}"
        );
        let config = serde_json::json!({"hidden_size": 8, "num_attention_heads": 4, "pruned_heads": {"0": [1]}});
        let ops = [op(
            "encoder.layer.0.attention.self.query.weight",
            vec![0, 1],
        )];
        let err = updated(Path::new("c"), &config, &ops)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`pruned_heads` already lists"), "{err}");
    }
}
