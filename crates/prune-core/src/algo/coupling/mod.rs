//! Coupling: which weights must follow a shrink.
//!
//! A structured pruner decides, per layer, which groups (attention heads, FFN rows) to keep.
//! Removing a head from the query projection is only valid if the key, value, their biases and
//! the attention output's input columns lose the same head; a
//! [`CouplingGroup`](crate::model::CouplingGroup) states that. A model declares its own groups
//! ([`Model::coupling_groups`]), a configuration declares more ([`declared_groups`]); the [`RECOGNISERS`] find more by weight names (BERT encoders,
//! torchvision ResNets, sequential chains of convs, norms and linears), along with slices no
//! shrink may touch (a residual sum); [`expand`] turns the configured shrinks into a complete,
//! consistent set.

mod bert;
mod chain;
mod declared;
mod layers;
mod resnet;

pub use bert::bert_coupling;
pub use chain::chain_coupling;
pub use declared::declared_groups;
pub use resnet::resnet_coupling;

use crate::config::DeclaredSlice;
use crate::error::{PruneError, Result};
use crate::model::{Coupling, Model, ShrinkOp, Slice, WeightInfo};

/// Finds coupling groups (and fixed slices) in a model from its weight names and shapes.
#[derive(Debug, Clone, Copy)]
pub struct Recogniser {
    /// Short name for messages and docs, e.g. `bert`.
    pub name: &'static str,
    /// What it finds; nothing when the model is not of its kind.
    pub find: fn(&[WeightInfo]) -> Coupling,
}

/// The built-in recognisers, tried on every model.
pub const RECOGNISERS: &[Recogniser] = &[
    Recogniser {
        name: "bert",
        find: bert_coupling,
    },
    Recogniser {
        name: "resnet",
        find: resnet_coupling,
    },
    Recogniser {
        name: "chain",
        find: chain_coupling,
    },
];

/// What every built-in recogniser finds in `weights`.
pub fn recognised(weights: &[WeightInfo]) -> Coupling {
    let mut all = Coupling::default();
    for r in RECOGNISERS {
        let found = (r.find)(weights);
        all.groups.extend(found.groups);
        all.fixed.extend(found.fixed);
    }
    all
}

/// The coupling of `model`: the groups it declares first, then those `declared` in the
/// configuration, then what the recognisers find.
pub fn coupling_of<M: Model>(
    model: &M,
    weights: &[WeightInfo],
    declared: &[Vec<DeclaredSlice>],
) -> Result<Coupling> {
    let mut groups = model.coupling_groups()?;
    groups.extend(declared_groups(declared, weights)?);
    let found = recognised(weights);
    groups.extend(found.groups);
    Ok(Coupling {
        groups,
        fixed: found.fixed,
    })
}

/// The bias that goes with a weight's output rows: `x.weight` -> `x.bias`, if the model has it.
fn row_bias<'w>(weight: &str, weights: &'w [WeightInfo]) -> Option<&'w WeightInfo> {
    let stem = weight.strip_suffix(".weight")?;
    let bias = format!("{stem}.bias");
    weights
        .iter()
        .find(|w| w.name == bias && w.shape.len() == 1)
}

/// The channels behind indices kept in blocks of `block` (whole blocks only).
fn channels_of(keep: &[usize], block: usize) -> Option<Vec<usize>> {
    if block <= 1 {
        return Some(keep.to_vec());
    }
    if !keep.len().is_multiple_of(block) {
        return None;
    }
    let channels: Vec<usize> = keep.chunks(block).map(|c| c[0] / block).collect();
    (blocked(&channels, block) == keep).then_some(channels)
}

/// Completes `ops` with every coupled slice (coupling groups, and the bias of each shrunk
/// output dimension), checking that no weight is asked to keep two different index sets,
/// that every index is in range, that no fixed slice is touched and that the shapes still fit
/// (see `check_complete`). Each op carries the index of the pruner behind it, for errors.
pub fn expand(
    ops: &[(usize, ShrinkOp)],
    coupling: &Coupling,
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
        if let Some(fixed) = coupling
            .fixed
            .iter()
            .find(|f| f.weight == op.weight && f.axis == op.axis)
        {
            return Err(PruneError::Structured {
                pruner,
                reason: format!(
                    "`{}` axis {} cannot be shrunk: {}",
                    op.weight, op.axis, fixed.reason
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
                         coupled weights (query/key/value/output of one layer, FFN in/out, a \
                         conv and its consumer) must share one importance input and target",
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
        let member = coupling.groups.iter().find_map(|g| {
            g.members
                .iter()
                .find(|m| m.weight == op.weight && m.axis == op.axis)
                .map(|m| (g, m.block))
        });
        let (members, channels) = match member {
            Some((group, block)) => {
                let channels =
                    channels_of(&op.keep, block).ok_or_else(|| PruneError::Structured {
                        pruner: *pruner,
                        reason: format!(
                            "`{}` axis {} takes its channels in blocks of {block} (a flatten of \
                             feature maps); keep whole blocks (stride {block})",
                            op.weight, op.axis
                        ),
                    })?;
                (group.members.clone(), channels)
            }
            None => (
                vec![Slice::new(op.weight.clone(), op.axis)],
                op.keep.clone(),
            ),
        };
        for m in members {
            let bias = (m.axis == 0)
                .then(|| row_bias(&m.weight, weights))
                .flatten();
            let keep = blocked(&channels, m.block);
            if let Some(b) = bias {
                push(
                    *pruner,
                    ShrinkOp {
                        weight: b.name.clone(),
                        axis: 0,
                        keep: keep.clone(),
                    },
                    &mut out,
                )?;
            }
            push(
                *pruner,
                ShrinkOp {
                    weight: m.weight,
                    axis: m.axis,
                    keep,
                },
                &mut out,
            )?;
        }
    }
    check_complete(&out, weights)?;
    Ok(out.into_iter().map(|(_, op)| op).collect())
}

/// `keep` over an axis of `blocks` blocks, as indices over `blocks * block` slices.
fn blocked(keep: &[usize], block: usize) -> Vec<usize> {
    keep.iter()
        .flat_map(|k| k * block..(k + 1) * block)
        .collect()
}

/// Checks that the plan leaves a model whose shapes still fit: every weight (rank 2 or more)
/// that loses output rows is matched by one that loses the same input columns (in blocks,
/// for a Linear after a flatten), and the other way round. A half-planned shrink would pass
/// the weights' own checks and break the next forward pass.
fn check_complete(ops: &[(usize, ShrinkOp)], weights: &[WeightInfo]) -> Result<()> {
    let rank = |name: &str| {
        weights
            .iter()
            .find(|w| w.name == name)
            .map_or(0, |w| w.shape.len())
    };
    let extent = |op: &ShrinkOp| {
        weights
            .iter()
            .find(|w| w.name == op.weight)
            .map_or(0, |w| w.shape[op.axis])
    };
    let matches = |rows: &ShrinkOp, cols: &ShrinkOp| {
        let (n, m) = (extent(rows), extent(cols));
        n > 0 && m % n == 0 && blocked(&rows.keep, m / n) == cols.keep
    };
    let matrices: Vec<&(usize, ShrinkOp)> =
        ops.iter().filter(|(_, o)| rank(&o.weight) >= 2).collect();
    for (pruner, op) in &matrices {
        let (side, needs, other_axis) = match op.axis {
            0 => ("output rows", "input columns", 1),
            1 => ("input columns", "output rows", 0),
            _ => continue,
        };
        let found = matrices.iter().any(|(_, o)| {
            o.weight != op.weight
                && o.axis == other_axis
                && if op.axis == 0 {
                    matches(op, o)
                } else {
                    matches(o, op)
                }
        });
        if !found {
            return Err(PruneError::Structured {
                pruner: *pruner,
                reason: format!(
                    "`{}` would keep {} of its {} {side}, and no weight in the plan loses the \
                     matching {needs}: the layer on the other side would no longer fit. Shrink \
                     that layer too (a pruner naming it with transpose {}, the same target and \
                     importance), or declare the pair with Model::coupling_groups",
                    op.weight,
                    op.keep.len(),
                    extent(op),
                    if op.axis == 0 { "True" } else { "False" }
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Layout;

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
        let groups = bert_coupling(&weights);
        assert_eq!(groups.groups.len(), 2);
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
        let groups = bert_coupling(&weights);
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
        let groups = bert_coupling(&weights);
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
        let err = expand(&[(0, op)], &Coupling::default(), &weights).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}
