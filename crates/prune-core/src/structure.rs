//! Physical shrinking: which slices of which weights go, and which weights must follow.
//!
//! A structured pruner decides, per layer, which groups (attention heads, FFN rows) to keep.
//! Removing a head from the query projection is only valid if the key, value, their biases and
//! the attention output's input columns lose the same head; [`CouplingGroup`]s state that, and
//! [`expand`] turns the configured shrinks into a complete, consistent set.

use crate::backend::WeightInfo;
use crate::error::{PruneError, Result};

/// Keep only `keep` (ascending indices) along `axis` of a weight's canonical view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShrinkOp {
    /// Canonical weight name.
    pub weight: String,
    /// Canonical axis: 0 = output rows, 1 = input columns of an `[out, in]` weight.
    pub axis: usize,
    /// Indices kept along `axis`, ascending (original order preserved).
    pub keep: Vec<usize>,
}

/// Weight slices that must keep the same indices: shrinking one member shrinks all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouplingGroup {
    /// `(weight, canonical axis)` pairs.
    pub members: Vec<(String, usize)>,
}

/// Coupling groups of a BERT-style encoder (Hugging Face names, any prefix): per layer, the
/// heads of query / key / value (weights and biases) with the input columns of
/// `attention.output.dense.weight`, and the rows of `intermediate.dense` with the input columns
/// of `output.dense.weight`. Only weights present in the model are listed.
pub fn bert_coupling_groups(weights: &[WeightInfo]) -> Vec<CouplingGroup> {
    const QUERY: &str = "attention.self.query.weight";
    const INTERMEDIATE: &str = "intermediate.dense.weight";
    let present = |n: &str| weights.iter().any(|w| w.name == n);
    let mut groups = Vec::new();
    for w in weights {
        let (layer, members): (&str, &[(&str, usize)]) =
            if let Some(layer) = w.name.strip_suffix(QUERY) {
                (
                    layer,
                    &[
                        ("attention.self.query.weight", 0),
                        ("attention.self.query.bias", 0),
                        ("attention.self.key.weight", 0),
                        ("attention.self.key.bias", 0),
                        ("attention.self.value.weight", 0),
                        ("attention.self.value.bias", 0),
                        ("attention.output.dense.weight", 1),
                    ],
                )
            } else if let Some(layer) = w.name.strip_suffix(INTERMEDIATE) {
                (
                    layer,
                    &[
                        ("intermediate.dense.weight", 0),
                        ("intermediate.dense.bias", 0),
                        ("output.dense.weight", 1),
                    ],
                )
            } else {
                continue;
            };
        let members: Vec<(String, usize)> = members
            .iter()
            .map(|(suffix, axis)| (format!("{layer}{suffix}"), *axis))
            .filter(|(name, _)| present(name))
            .collect();
        groups.push(CouplingGroup { members });
    }
    groups
}

/// The bias that goes with a weight's output rows: `x.weight` -> `x.bias`, if the model has it.
fn row_bias<'w>(weight: &str, weights: &'w [WeightInfo]) -> Option<&'w WeightInfo> {
    let stem = weight.strip_suffix(".weight")?;
    let bias = format!("{stem}.bias");
    weights
        .iter()
        .find(|w| w.name == bias && w.shape.len() == 1)
}

/// Completes `ops` with every coupled slice (coupling groups, and the bias of each shrunk
/// output dimension), checking that no weight is asked to keep two different index sets and
/// that every index is in range. `pruner_of` names the pruner behind each op, for errors.
pub fn expand(
    ops: &[(usize, ShrinkOp)],
    groups: &[CouplingGroup],
    weights: &[WeightInfo],
) -> Result<Vec<ShrinkOp>> {
    let mut out: Vec<(usize, ShrinkOp)> = Vec::new();
    let push = |pruner: usize, op: ShrinkOp, out: &mut Vec<(usize, ShrinkOp)>| -> Result<()> {
        let info = weights
            .iter()
            .find(|w| w.name == op.weight)
            .ok_or_else(|| PruneError::Structured {
                pruner,
                reason: format!("weight `{}` is not in the model", op.weight),
            })?;
        let extent = info
            .shape
            .get(op.axis)
            .copied()
            .ok_or_else(|| PruneError::Structured {
                pruner,
                reason: format!(
                    "weight `{}` of shape {:?} has no axis {}",
                    op.weight, info.shape, op.axis
                ),
            })?;
        if let Some(bad) = op.keep.iter().find(|&&i| i >= extent) {
            return Err(PruneError::Structured {
                pruner,
                reason: format!(
                    "weight `{}`: kept index {bad} is out of range for axis {} of size {extent}",
                    op.weight, op.axis
                ),
            });
        }
        if let Some((first, prev)) = out
            .iter()
            .find(|(_, p)| p.weight == op.weight && p.axis == op.axis)
        {
            if prev.keep != op.keep {
                return Err(PruneError::Structured {
                    pruner,
                    reason: format!(
                        "weight `{}` axis {} would keep {:?} here but {:?} for pruner {first}; \
                         coupled weights (query/key/value/output of one layer, FFN in/out) must \
                         share one importance input and target",
                        op.weight, op.axis, op.keep, prev.keep
                    ),
                });
            }
            return Ok(());
        }
        out.push((pruner, op));
        Ok(())
    };
    for (pruner, op) in ops {
        let coupled: Vec<(String, usize)> = groups
            .iter()
            .find(|g| {
                g.members
                    .iter()
                    .any(|(n, a)| *n == op.weight && *a == op.axis)
            })
            .map(|g| g.members.clone())
            .unwrap_or_else(|| vec![(op.weight.clone(), op.axis)]);
        for (weight, axis) in coupled {
            let bias = (axis == 0).then(|| row_bias(&weight, weights)).flatten();
            push(
                *pruner,
                ShrinkOp {
                    weight,
                    axis,
                    keep: op.keep.clone(),
                },
                &mut out,
            )?;
            if let Some(b) = bias {
                push(
                    *pruner,
                    ShrinkOp {
                        weight: b.name.clone(),
                        axis: 0,
                        keep: op.keep.clone(),
                    },
                    &mut out,
                )?;
            }
        }
    }
    Ok(out.into_iter().map(|(_, op)| op).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Layout;

    fn w(name: &str, shape: &[usize]) -> WeightInfo {
        WeightInfo {
            name: name.into(),
            shape: shape.to_vec(),
            layout: Layout::Canonical,
        }
    }

    fn bert_layer() -> Vec<WeightInfo> {
        let p = "encoder.layer.0.";
        vec![
            w(&format!("{p}attention.self.query.weight"), &[4, 4]),
            w(&format!("{p}attention.self.query.bias"), &[4]),
            w(&format!("{p}attention.self.key.weight"), &[4, 4]),
            w(&format!("{p}attention.self.key.bias"), &[4]),
            w(&format!("{p}attention.self.value.weight"), &[4, 4]),
            w(&format!("{p}attention.self.value.bias"), &[4]),
            w(&format!("{p}attention.output.dense.weight"), &[4, 4]),
            w(&format!("{p}attention.output.dense.bias"), &[4]),
            w(&format!("{p}intermediate.dense.weight"), &[6, 4]),
            w(&format!("{p}intermediate.dense.bias"), &[6]),
            w(&format!("{p}output.dense.weight"), &[4, 6]),
            w(&format!("{p}output.dense.bias"), &[4]),
        ]
    }

    #[test]
    fn one_head_shrink_expands_to_every_coupled_slice() {
        let weights = bert_layer();
        let groups = bert_coupling_groups(&weights);
        assert_eq!(groups.len(), 2);
        let op = ShrinkOp {
            weight: "encoder.layer.0.attention.output.dense.weight".into(),
            axis: 1,
            keep: vec![0, 1],
        };
        let all = expand(&[(0, op)], &groups, &weights).unwrap();
        let names: Vec<(&str, usize)> = all.iter().map(|o| (o.weight.as_str(), o.axis)).collect();
        assert_eq!(names.len(), 7, "{names:?}");
        assert!(names.contains(&("encoder.layer.0.attention.self.value.bias", 0)));
        assert!(!names.iter().any(|(n, _)| n.ends_with("output.dense.bias")));
        assert!(all.iter().all(|o| o.keep == vec![0, 1]));
    }

    #[test]
    fn ffn_rows_take_the_output_columns_and_bias() {
        let weights = bert_layer();
        let groups = bert_coupling_groups(&weights);
        let op = ShrinkOp {
            weight: "encoder.layer.0.intermediate.dense.weight".into(),
            axis: 0,
            keep: vec![1, 3, 5],
        };
        let all = expand(&[(2, op)], &groups, &weights).unwrap();
        assert_eq!(all.len(), 3);
        assert!(all
            .iter()
            .any(|o| o.weight == "encoder.layer.0.output.dense.weight" && o.axis == 1));
    }

    #[test]
    fn conflicting_keeps_are_refused_naming_both_pruners() {
        let weights = bert_layer();
        let groups = bert_coupling_groups(&weights);
        let q = ShrinkOp {
            weight: "encoder.layer.0.attention.self.query.weight".into(),
            axis: 0,
            keep: vec![0, 1],
        };
        let o = ShrinkOp {
            weight: "encoder.layer.0.attention.output.dense.weight".into(),
            axis: 1,
            keep: vec![2, 3],
        };
        let err = expand(&[(0, q), (1, o)], &groups, &weights).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("pruner 1") && text.contains("pruner 0"),
            "{text}"
        );
    }

    #[test]
    fn out_of_range_index_is_refused() {
        let weights = bert_layer();
        let op = ShrinkOp {
            weight: "encoder.layer.0.attention.self.key.weight".into(),
            axis: 0,
            keep: vec![7],
        };
        let err = expand(&[(0, op)], &[], &weights).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}
