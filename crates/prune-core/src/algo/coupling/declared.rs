//! Coupling groups declared in the configuration (`weight_compression.coupling`), for models
//! no recogniser knows: checked against the model's weights, then used like found groups.

use crate::config::DeclaredSlice;
use crate::error::{ConfigProblem, ConfigProblems, PruneError, Result};
use crate::model::{CouplingGroup, Slice, WeightInfo};
use crate::suggest::closest;

const PATH: &str = "pruning.approach.weight_compression.coupling";

/// The declared groups as coupling groups, or an error listing every slice that names no
/// weight, an axis the weight lacks, blocks that do not divide it, or a channel count that
/// differs from the group's first slice, each with its YAML path.
pub fn declared_groups(
    declared: &[Vec<DeclaredSlice>],
    weights: &[WeightInfo],
) -> Result<Vec<CouplingGroup>> {
    let names: Vec<String> = weights.iter().map(|w| w.name.clone()).collect();
    let mut problems = Vec::new();
    let mut groups = Vec::with_capacity(declared.len());
    for (g, group) in declared.iter().enumerate() {
        let mut first: Option<(usize, &DeclaredSlice)> = None;
        for (i, slice) in group.iter().enumerate() {
            let mut problem = |key: &str, reason: String| {
                problems.push(ConfigProblem {
                    path: format!("{PATH}[{g}][{i}].{key}"),
                    reason,
                })
            };
            let Some(info) = weights.iter().find(|w| w.name == slice.weight) else {
                let near = closest(&slice.weight, &names, 3);
                let hint = if near.is_empty() {
                    String::new()
                } else {
                    format!("; close: {}", near.join(", "))
                };
                problem(
                    "weight",
                    format!("no weight `{}` in the model{hint}", slice.weight),
                );
                continue;
            };
            let Some(&size) = info.shape.get(slice.axis) else {
                problem(
                    "axis",
                    format!(
                        "`{}` has shape {:?}: no axis {}",
                        slice.weight, info.shape, slice.axis
                    ),
                );
                continue;
            };
            if !size.is_multiple_of(slice.block) {
                problem(
                    "block",
                    format!(
                        "axis {} of `{}` has {size} indices, not whole blocks of {}",
                        slice.axis, slice.weight, slice.block
                    ),
                );
                continue;
            }
            let channels = size / slice.block;
            match first {
                None => first = Some((channels, slice)),
                Some((want, head)) if want != channels => problem(
                    "weight",
                    format!(
                        "`{}` axis {} has {channels} channels, but `{}` axis {} (the group's \
                         first slice) has {want}",
                        slice.weight, slice.axis, head.weight, head.axis
                    ),
                ),
                Some(_) => {}
            }
        }
        groups.push(CouplingGroup {
            members: group
                .iter()
                .map(|s| Slice::new(s.weight.clone(), s.axis).blocks(s.block))
                .collect(),
        });
    }
    if problems.is_empty() {
        Ok(groups)
    } else {
        Err(PruneError::Config {
            source_name: "the configuration".into(),
            problems: ConfigProblems(problems),
        })
    }
}
