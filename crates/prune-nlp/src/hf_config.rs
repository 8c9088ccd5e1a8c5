//! A Hugging Face `config.json` brought to a shrunk BERT-family checkpoint's sizes: the FFN
//! width (`intermediate_size`), the removed heads (`pruned_heads`, which Hugging Face applies
//! to a new model before it loads the weights) and the hidden size (`hidden_size`; when the
//! heads left no longer fill it, `attention_head_size` keeps their width).

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
    let new_hidden = ops
        .iter()
        .find(|op| op.axis == 1 && op.weight.ends_with("embeddings.word_embeddings.weight"))
        .map(|op| op.keep.len());
    if queries.is_empty() && new_hidden.is_none() {
        return Ok(changed.then_some(out));
    }
    let hidden = size(obj, "hidden_size")?;
    let heads = size(obj, "num_attention_heads")?;
    let head_dim = match obj.get("attention_head_size") {
        Some(_) => size(obj, "attention_head_size")?,
        None if heads > 0 && hidden.is_multiple_of(heads) => hidden / heads,
        None => {
            return Err(problem(
                path,
                format!(
                    "`hidden_size` {hidden} is not a multiple of `num_attention_heads` {heads}"
                ),
            ))
        }
    };
    if head_dim == 0 {
        return Err(problem(path, "`attention_head_size` is 0".into()));
    }
    let earlier: BTreeMap<usize, usize> = obj
        .get("pruned_heads")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(l, v)| Some((l.parse().ok()?, v.as_array()?.len())))
                .collect()
        })
        .unwrap_or_default();
    if !queries.is_empty() {
        if earlier.values().any(|&n| n > 0) {
            return Err(problem(
                path,
                "`pruned_heads` already lists removed heads; shrink the original checkpoint".into(),
            ));
        }
        let mut pruned = Map::new();
        for (layer, op) in &queries {
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
    if let Some(new_hidden) = new_hidden {
        obj.insert("hidden_size".into(), Value::from(new_hidden));
        changed = true;
        // Heads left per layer: the plan's, else the config's less any pruned earlier.
        let layers = obj
            .get("num_hidden_layers")
            .and_then(Value::as_u64)
            .map_or(0, |n| n as usize)
            .max(queries.iter().map(|(l, _)| l + 1).max().unwrap_or(0));
        let left: Vec<usize> = (0..layers)
            .map(|l| match queries.iter().find(|(q, _)| *q == l) {
                Some((_, op)) => op.keep.len() / head_dim,
                None => heads - earlier.get(&l).copied().unwrap_or(0).min(heads),
            })
            .collect();
        let same = left
            .first()
            .copied()
            .filter(|k| left.iter().all(|n| n == k));
        match same {
            // Every layer keeps k heads that fill the new hidden size: the plain form every
            // BERT implementation builds (head width = hidden_size / num_attention_heads).
            Some(k) if k * head_dim == new_hidden => {
                obj.insert("num_attention_heads".into(), Value::from(k));
                obj.remove("pruned_heads");
                obj.remove("attention_head_size");
            }
            _ => {
                obj.insert("attention_head_size".into(), Value::from(head_dim));
            }
        }
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

    fn columns(weight: &str, keep: Vec<usize>) -> ShrinkOp {
        ShrinkOp {
            weight: weight.into(),
            axis: 1,
            keep,
        }
    }

    #[test]
    fn a_pruned_hidden_size_is_recorded_with_the_head_width_it_needs() {
        let config = serde_json::json!({"hidden_size": 8, "num_attention_heads": 4,
                                        "num_hidden_layers": 2, "intermediate_size": 16});
        let hidden = columns("embeddings.word_embeddings.weight", vec![0, 2, 3, 5, 7, 1]);
        // Hidden only: 4 heads of 2 no longer fill 6, so the width is written out.
        let out = updated(Path::new("c"), &config, std::slice::from_ref(&hidden))
            .unwrap()
            .unwrap();
        assert_eq!(out["hidden_size"], 6);
        assert_eq!(out["num_attention_heads"], 4);
        assert_eq!(out["attention_head_size"], 2);
        // Every layer keeping 3 heads of 2 fills 6: the plain form, no pruned_heads.
        let ops = [
            hidden,
            op(
                "encoder.layer.0.attention.self.query.weight",
                vec![0, 1, 2, 3, 6, 7],
            ),
            op(
                "encoder.layer.1.attention.self.query.weight",
                vec![2, 3, 4, 5, 6, 7],
            ),
        ];
        let out = updated(Path::new("c"), &config, &ops).unwrap().unwrap();
        assert_eq!(out["hidden_size"], 6);
        assert_eq!(out["num_attention_heads"], 3);
        assert!(out.get("pruned_heads").is_none() && out.get("attention_head_size").is_none());
        // Uneven heads keep pruned_heads and the width.
        let ops = [
            ops[0].clone(),
            ops[1].clone(),
            op("encoder.layer.1.attention.self.query.weight", vec![2, 3]),
        ];
        let out = updated(Path::new("c"), &config, &ops).unwrap().unwrap();
        assert_eq!(
            out["pruned_heads"],
            serde_json::json!({"0": [2], "1": [0, 2, 3]})
        );
        assert_eq!(out["attention_head_size"], 2);
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
