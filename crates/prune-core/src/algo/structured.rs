//! Structured gradient sensitivity (FastFormers-style): per layer, rank groups of rows (attention
//! heads, FFN units) by accumulated gradient importance and keep the `target` best, in their
//! original order.
//!
//! A pruner's `names` may contain one `*` standing for the layer number (`encoder.layer.*.x`);
//! each layer gets its own importance and its own kept set. Importance comes from
//! `importance_inputs`: a model weight (its gradient, per group of `stride` rows), or an input
//! such as `head_mask [layers, heads]` whose gradient the training loop hands over with
//! [`crate::Pruning::record_input_gradient`] (row = the layer number, or `index`).

use crate::config::{ImportanceMetric, ResolvedPruner};
use crate::error::{PruneError, Result};
use crate::model::layout::try_to_canonical;
use crate::model::names::{canonical_name, glob_match, select_weights};
use crate::model::{Coupling, ShrinkOp};
use crate::model::{Model, TensorBackend, WeightId, WeightInfo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a layer's importance comes from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    /// The gradient of a model weight (name, shape and layout bound once), grouped along
    /// `axis` by `stride`.
    Weight {
        info: WeightInfo,
        id: WeightId,
        axis: usize,
        /// Slices along `axis` per group: the pruner's stride, or 1 for a weight with one
        /// row per group (a conv whose filters feed a Linear in blocks).
        per_group: usize,
    },
    /// Row `row` of an input's gradient, handed over by the training loop.
    Input { name: String, row: usize },
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Weight { info, .. } => format!("the gradient of `{}`", info.name),
            Source::Input { name, row } => format!("row {row} of the gradient of input `{name}`"),
        }
    }
}

/// One layer of a structured pruner.
#[derive(Debug, Clone)]
struct Layer {
    /// The layer number (`*` in the names, or `index`).
    number: usize,
    /// Pruned weights and the canonical axis along which their groups run.
    weights: Vec<(WeightInfo, usize)>,
    /// Groups along the pruned axis (heads, or rows when stride is 1).
    groups: usize,
    sources: Vec<Source>,
    importance: Vec<f64>,
    /// Importance contributions received.
    observed: u64,
    /// Groups kept, once shrunk.
    kept: Option<Vec<usize>>,
}

/// A structured gradient_sensitivity pruner bound to a model's weights: the session's, or a
/// checkpoint's for one-shot shrinking.
#[derive(Debug, Clone)]
pub struct StructuredPruner {
    /// The pruner as configured.
    pub spec: ResolvedPruner,
    layers: Vec<Layer>,
}

/// What one structured pruner decided for one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerOutcome {
    /// Pruner index in `pruners:`.
    pub pruner: usize,
    /// Layer number.
    pub layer: usize,
    /// Groups before shrinking.
    pub groups: usize,
    /// Accumulated importance per group (L2-normalised when `normalize` is set).
    pub importance: Vec<f64>,
    /// Kept groups in original order, once the pruner has shrunk the model.
    pub kept: Option<Vec<usize>>,
}

/// Saved importance of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerState {
    /// Layer number.
    pub layer: usize,
    /// Raw accumulated importance per group.
    pub importance: Vec<f64>,
    /// Contributions received.
    pub observed: u64,
    /// Kept groups, once shrunk.
    pub kept: Option<Vec<usize>>,
}

/// The layer number a one-`*` pattern captures from a name: `a.*.b` on `a.3.b` gives 3.
pub fn layer_number(pattern: &str, name: &str) -> Option<usize> {
    let pattern = canonical_name(pattern);
    let (prefix, suffix) = pattern.split_once('*')?;
    if suffix.contains('*') {
        return None;
    }
    let middle = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if middle.is_empty() || !middle.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    middle.parse().ok()
}

/// Whether a pruner is the structured kind: gradient_sensitivity with a `target`.
pub fn is_structured(p: &ResolvedPruner) -> bool {
    p.prune_type == crate::config::PruneType::GradientSensitivity
        && (p.parameters.target.is_some() || !p.parameters.importance_inputs.is_empty())
}

impl StructuredPruner {
    /// Binds a structured pruner to the model's weights, checking every size on the way.
    /// `coupling` is the model's ([`crate::algo::coupling::coupling_of`]); a pruner with
    /// `coupled_importance` reads importance from every slice of the groups its weights are in.
    pub fn bind(spec: ResolvedPruner, weights: &[WeightInfo], coupling: &Coupling) -> Result<Self> {
        let pruner = spec.index;
        let err = |reason: String| PruneError::Structured { pruner, reason };
        let params = &spec.parameters;
        let target = params.target.ok_or_else(|| {
            err("parameters.target (groups to keep per layer) is required".into())
        })?;
        let stride = params.stride.unwrap_or(1);
        if target == 0 || stride == 0 {
            return Err(err(format!(
                "parameters.target ({target}) and stride ({stride}) must be at least 1"
            )));
        }
        if spec.names.is_empty() {
            return Err(err("names must list the weights to shrink".into()));
        }
        let chosen = select_weights(pruner, &spec.names, weights)?;
        let mut by_layer: BTreeMap<usize, Vec<(WeightInfo, usize)>> = BTreeMap::new();
        for w in chosen {
            let number = spec
                .names
                .iter()
                .filter(|p| glob_match(canonical_name(p), &w.name))
                .find_map(|p| layer_number(p, &w.name))
                .or(params.index)
                .unwrap_or(0);
            // Canonical [out, in, ...]: transpose groups a Linear's columns or a conv's input
            // channels.
            let axis = if params.transpose && w.shape.len() >= 2 {
                1
            } else {
                0
            };
            by_layer.entry(number).or_default().push((w.clone(), axis));
        }
        let mut layers = Vec::with_capacity(by_layer.len());
        for (number, members) in by_layer {
            let mut groups = None;
            for (w, axis) in &members {
                let Some(&extent) = w.shape.get(*axis) else {
                    return Err(err(format!(
                        "`{}` has shape {:?}: a structured pruner keeps rows or columns, and a \
                         weight of rank {} has no axis {axis}",
                        w.name,
                        w.shape,
                        w.shape.len()
                    )));
                };
                if extent % stride != 0 {
                    return Err(err(format!(
                        "`{}` has {extent} along axis {axis}, not a multiple of stride {stride}",
                        w.name
                    )));
                }
                let g = extent / stride;
                match groups {
                    None => groups = Some(g),
                    Some(first) if first != g => {
                        return Err(err(format!(
                            "layer {number}: `{}` has {g} groups of {stride} along axis {axis}, \
                             `{}` has {first}",
                            w.name, members[0].0.name
                        )))
                    }
                    _ => {}
                }
            }
            let groups = groups.expect("a layer has at least one weight");
            if target > groups {
                return Err(err(format!(
                    "layer {number}: target {target} is more than the {groups} groups of {stride} \
                     in `{}`",
                    members[0].0.name
                )));
            }
            if params.coupled_importance && target >= groups {
                return Err(err(format!(
                    "layer {number}: target {target} keeps all {groups} groups of {stride} in \
                     `{}`; a coupled shrink needs a target below the current size",
                    members[0].0.name
                )));
            }
            let sources = if params.coupled_importance {
                coupled_sources(&spec, &members, coupling, weights)?
            } else {
                sources_of(&spec, number, &members, groups, weights)?
            };
            layers.push(Layer {
                number,
                weights: members,
                groups,
                sources,
                importance: vec![0.0; groups],
                observed: 0,
                kept: None,
            });
        }
        Ok(StructuredPruner { spec, layers })
    }

    /// Whether this pruner has shrunk the model already.
    pub fn done(&self) -> bool {
        self.layers.iter().all(|l| l.kept.is_some())
    }

    /// Names of the weights it shrinks.
    pub fn weight_names(&self) -> impl Iterator<Item = &str> {
        self.layers
            .iter()
            .flat_map(|l| l.weights.iter().map(|(w, _)| w.name.as_str()))
    }

    /// Whether it reads the gradient of input `name`.
    pub fn reads_input(&self, name: &str) -> bool {
        self.layers.iter().any(|l| {
            l.sources
                .iter()
                .any(|s| matches!(s, Source::Input { name: n, .. } if n == name))
        })
    }

    /// Adds the gradient of an input (e.g. `head_mask [layers, groups]`) to every layer that
    /// reads it. Checks the shape first, so a wrong call changes nothing.
    pub fn record_input(&mut self, name: &str, shape: &[usize], grad: &[f32]) -> Result<()> {
        let pruner = self.spec.index;
        let numel: usize = shape.iter().product();
        if numel != grad.len() {
            return Err(PruneError::Structured {
                pruner,
                reason: format!(
                    "input `{name}`: shape {shape:?} has {numel} elements, gradient has {}",
                    grad.len()
                ),
            });
        }
        let (rows, cols) = match shape {
            [r, c] => (*r, *c),
            [c] => (1, *c),
            _ => {
                return Err(PruneError::Structured {
                    pruner,
                    reason: format!(
                        "input `{name}`: expected [layers, groups], got shape {shape:?}"
                    ),
                })
            }
        };
        for l in &self.layers {
            for s in &l.sources {
                if let Source::Input { name: n, row } = s {
                    if n == name && (*row >= rows || cols != l.groups) {
                        return Err(PruneError::Structured {
                            pruner,
                            reason: format!(
                                "input `{name}` of shape {shape:?}: layer {} needs row {row} of \
                                 {} groups",
                                l.number, l.groups
                            ),
                        });
                    }
                }
            }
        }
        for l in &mut self.layers {
            if l.kept.is_some() {
                continue;
            }
            for s in &l.sources {
                if let Source::Input { name: n, row } = s {
                    if n == name {
                        let g = &grad[row * cols..(row + 1) * cols];
                        for (acc, v) in l.importance.iter_mut().zip(g) {
                            *acc += f64::from(v.abs());
                        }
                        l.observed += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds this step's importance from weight gradients; all values are computed before any
    /// is added.
    pub fn accumulate_weights<M: Model>(&mut self, model: &M) -> Result<()> {
        let metric = self.spec.parameters.importance_metric;
        if metric.weight_only() {
            return Ok(());
        }
        let coupled = self.spec.parameters.coupled_importance;
        let mut adds: Vec<(usize, Vec<f64>)> = Vec::new();
        for (li, l) in self.layers.iter().enumerate() {
            if l.kept.is_some() {
                continue;
            }
            for s in &l.sources {
                let Source::Weight {
                    info,
                    id,
                    axis,
                    per_group,
                } = s
                else {
                    continue;
                };
                match weight_importance(model, info, *id, *axis, *per_group, metric)? {
                    Some(add) => adds.push((li, add)),
                    // A coupled weight the loss does not reach (e.g. a pooler that sentence
                    // embeddings skip) adds nothing.
                    None if coupled => {}
                    None => {
                        return Err(PruneError::Unsupported {
                            op: format!(
                                "gradient_sensitivity importance from `{}`: it needs the \
                                 weight's gradient, and none is available",
                                info.name
                            ),
                            backend: model.backend().name().into(),
                        })
                    }
                }
            }
        }
        for (li, add) in adds {
            let l = &mut self.layers[li];
            for (acc, v) in l.importance.iter_mut().zip(add) {
                *acc += v;
            }
            l.observed += 1;
        }
        Ok(())
    }

    /// For a weight-only metric (`l1_norm`, `l2_norm`): each layer's importance from the
    /// weights as they are now, replacing any earlier value. Nothing for gradient metrics.
    pub fn weigh<M: Model>(&mut self, model: &M) -> Result<()> {
        let metric = self.spec.parameters.importance_metric;
        if !metric.weight_only() {
            return Ok(());
        }
        let be = model.backend();
        for l in self.layers.iter_mut().filter(|l| l.kept.is_none()) {
            let mut total = vec![0.0f64; l.groups];
            for s in &l.sources {
                let Source::Weight {
                    info,
                    id,
                    axis,
                    per_group,
                } = s
                else {
                    continue;
                };
                let w = canonical_values(info, be.to_vec(&model.weight_at(*id)?)?, "weight")?;
                let per_slice = slice_sums(&w, &info.shape, *axis, |v| match metric {
                    ImportanceMetric::L1Norm => f64::from(v.abs()),
                    _ => f64::from(v) * f64::from(v),
                });
                for (acc, group) in total.iter_mut().zip(per_slice.chunks(*per_group)) {
                    *acc += group.iter().sum::<f64>();
                }
            }
            if metric == ImportanceMetric::L2Norm {
                total.iter_mut().for_each(|t| *t = t.sqrt());
            }
            l.importance = total;
            l.observed = 1;
        }
        Ok(())
    }

    /// The shrinks this pruner asks for, one per weight; fails if a layer never got importance.
    pub fn plan(&self) -> Result<Vec<(usize, Vec<usize>, ShrinkOp)>> {
        let pruner = self.spec.index;
        let target = self.spec.parameters.target.unwrap_or(0);
        let stride = self.spec.parameters.stride.unwrap_or(1);
        let mut out = Vec::new();
        for (li, l) in self.layers.iter().enumerate() {
            if l.observed == 0 {
                return Err(PruneError::Structured {
                    pruner,
                    reason: format!(
                        "layer {}: no importance was recorded from {} during epochs {}..={}{}",
                        l.number,
                        l.sources
                            .iter()
                            .map(Source::describe)
                            .collect::<Vec<_>>()
                            .join(" and "),
                        self.spec.start_epoch,
                        self.spec.end_epoch,
                        if l.sources.iter().any(|s| matches!(s, Source::Input { .. })) {
                            "; call Pruning::record_input_gradient after each backward pass"
                        } else {
                            ""
                        }
                    ),
                });
            }
            let kept_groups = top_groups(&l.importance, target);
            for (w, axis) in &l.weights {
                let keep: Vec<usize> = kept_groups
                    .iter()
                    .flat_map(|g| g * stride..(g + 1) * stride)
                    .collect();
                out.push((
                    li,
                    kept_groups.clone(),
                    ShrinkOp {
                        weight: w.name.clone(),
                        axis: *axis,
                        keep,
                    },
                ));
            }
        }
        Ok(out)
    }

    /// Takes the shapes of `weights` (the model's list after a shrink) for the layers still to
    /// decide; fails, changing nothing, if a shrink changed the extent this pruner groups.
    pub fn refresh(&mut self, weights: &[WeightInfo]) -> Result<()> {
        let pruner = self.spec.index;
        // `info` at its new shape, refused if the extent along `axis` changed.
        let renew = |info: &mut WeightInfo, axis: usize, number: usize, role: &str| -> Result<()> {
            let new = weights
                .iter()
                .find(|w| w.name == info.name)
                .ok_or_else(|| PruneError::UnknownWeight {
                    weight: info.name.clone(),
                    candidates: Vec::new(),
                })?;
            if new.shape[axis] != info.shape[axis] {
                return Err(PruneError::Structured {
                    pruner,
                    reason: format!(
                        "layer {number}: another pruner shrank axis {axis} of `{}` ({} -> {}), \
                         the axis this pruner {role}",
                        info.name, info.shape[axis], new.shape[axis]
                    ),
                });
            }
            *info = new.clone();
            Ok(())
        };
        let mut updated = self.layers.clone();
        for l in updated.iter_mut().filter(|l| l.kept.is_none()) {
            for (w, axis) in &mut l.weights {
                renew(w, *axis, l.number, "keeps groups of")?;
            }
            for s in &mut l.sources {
                if let Source::Weight { info, axis, .. } = s {
                    renew(info, *axis, l.number, "reads importance along")?;
                }
            }
        }
        self.layers = updated;
        Ok(())
    }

    /// Records the kept groups of a layer after the model was shrunk.
    pub fn mark_kept(&mut self, layer: usize, kept: Vec<usize>) {
        self.layers[layer].kept = Some(kept);
    }

    /// Per-layer importance and decisions.
    pub fn outcome(&self) -> Vec<LayerOutcome> {
        self.layers
            .iter()
            .map(|l| LayerOutcome {
                pruner: self.spec.index,
                layer: l.number,
                groups: l.groups,
                importance: if self.spec.parameters.normalize {
                    l2_normalised(&l.importance)
                } else {
                    l.importance.clone()
                },
                kept: l.kept.clone(),
            })
            .collect()
    }

    /// State to save.
    pub fn state(&self) -> Vec<LayerState> {
        self.layers
            .iter()
            .map(|l| LayerState {
                layer: l.number,
                importance: l.importance.clone(),
                observed: l.observed,
                kept: l.kept.clone(),
            })
            .collect()
    }

    /// Restores saved importance; fails, changing nothing, if layers or sizes differ.
    pub fn restore(&mut self, saved: &[LayerState]) -> std::result::Result<(), String> {
        if saved.len() != self.layers.len() {
            return Err(format!(
                "pruner {}: {} layers saved, {} bound",
                self.spec.index,
                saved.len(),
                self.layers.len()
            ));
        }
        for (l, s) in self.layers.iter().zip(saved) {
            // After the shrink the model holds only the kept groups.
            let now = s.kept.as_ref().map_or(s.importance.len(), Vec::len);
            if l.number != s.layer || l.groups != now {
                return Err(format!(
                    "pruner {}: saved layer {} with {now} groups, model has layer {} with {}",
                    self.spec.index, s.layer, l.number, l.groups
                ));
            }
        }
        for (l, s) in self.layers.iter_mut().zip(saved) {
            l.groups = s.importance.len();
            l.importance = s.importance.clone();
            l.observed = s.observed;
            l.kept = s.kept.clone();
        }
        Ok(())
    }
}

/// The handle of a weight found in `weights` (the model's list, in order).
fn id_of(weights: &[WeightInfo], name: &str) -> Result<WeightId> {
    weights
        .iter()
        .position(|w| w.name == name)
        .map(WeightId)
        .ok_or_else(|| PruneError::UnknownWeight {
            weight: name.to_string(),
            candidates: Vec::new(),
        })
}

/// The importance sources of one layer under `coupled_importance`: every slice of the coupling
/// groups its weights are in, each weight and axis once.
fn coupled_sources(
    spec: &ResolvedPruner,
    members: &[(WeightInfo, usize)],
    coupling: &Coupling,
    weights: &[WeightInfo],
) -> Result<Vec<Source>> {
    let pruner = spec.index;
    let err = |reason: String| PruneError::Structured { pruner, reason };
    if !spec.parameters.importance_inputs.is_empty() {
        return Err(err(
            "coupled_importance reads importance from the coupled weights, importance_inputs \
             from the named ones; set one of them"
                .into(),
        ));
    }
    let stride = spec.parameters.stride.unwrap_or(1);
    let mut sources: Vec<Source> = Vec::new();
    for (w, axis) in members {
        if let Some(f) = coupling
            .fixed
            .iter()
            .find(|f| f.weight == w.name && f.axis == *axis)
        {
            return Err(err(format!(
                "`{}` axis {axis} cannot be shrunk: {}",
                w.name, f.reason
            )));
        }
        let group = coupling
            .groups
            .iter()
            .find(|g| {
                g.members
                    .iter()
                    .any(|m| m.weight == w.name && m.axis == *axis)
            })
            .ok_or_else(|| {
                err(format!(
                    "coupled_importance: `{}` axis {axis} is in no coupling group; no recogniser \
                     knows the model ({}) and weight_compression.coupling declares none",
                    w.name,
                    crate::algo::coupling::RECOGNISERS
                        .iter()
                        .map(|r| r.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        for m in &group.members {
            let seen = sources.iter().any(|s| {
                matches!(s, Source::Weight { info, axis, .. } if info.name == m.weight && *axis == m.axis)
            });
            if seen {
                continue;
            }
            let info = weights.iter().find(|x| x.name == m.weight).ok_or_else(|| {
                PruneError::UnknownWeight {
                    weight: m.weight.clone(),
                    candidates: Vec::new(),
                }
            })?;
            if m.axis >= info.shape.len() || m.block == 0 {
                return Err(err(format!(
                    "coupled_importance: the coupling group of `{}` names axis {} in blocks of \
                     {} of `{}`, whose shape is {:?}",
                    w.name, m.axis, m.block, m.weight, info.shape
                )));
            }
            sources.push(Source::Weight {
                info: info.clone(),
                id: id_of(weights, &m.weight)?,
                axis: m.axis,
                per_group: stride * m.block,
            });
        }
    }
    Ok(sources)
}

/// The importance sources of one layer.
fn sources_of(
    spec: &ResolvedPruner,
    number: usize,
    members: &[(WeightInfo, usize)],
    groups: usize,
    weights: &[WeightInfo],
) -> Result<Vec<Source>> {
    let pruner = spec.index;
    let params = &spec.parameters;
    let stride = params.stride.unwrap_or(1);
    if params.importance_inputs.is_empty() {
        return members
            .iter()
            .filter(|(w, _)| w.shape.len() >= 2)
            .map(|(w, axis)| {
                Ok(Source::Weight {
                    info: w.clone(),
                    id: id_of(weights, &w.name)?,
                    axis: *axis,
                    per_group: stride,
                })
            })
            .collect();
    }
    let mut sources = Vec::new();
    for input in &params.importance_inputs {
        let name = canonical_name(input).replace('*', &number.to_string());
        if let Some(w) = weights.iter().find(|w| w.name == name) {
            // A weight or its bias: rows (axis 0) in groups of `stride`, as the pruned weights.
            let rows = w.shape.first().copied().unwrap_or(0);
            // Rows in groups of `stride` as the pruned weights, or one row per group.
            let per_group = if rows == groups * stride { stride } else { 1 };
            if rows != groups * per_group {
                return Err(PruneError::Structured {
                    pruner,
                    reason: format!(
                        "layer {number}: importance input `{name}` of shape {:?} has {rows} rows \
                         ({} groups of {stride}); the pruned weights have {groups} groups of \
                         {stride} ({} rows)",
                        w.shape,
                        rows / stride,
                        groups * stride
                    ),
                });
            }
            sources.push(Source::Weight {
                info: w.clone(),
                id: id_of(weights, &w.name)?,
                axis: 0,
                per_group,
            });
        } else {
            if params.importance_metric == ImportanceMetric::WeightedGradient {
                return Err(PruneError::Structured {
                    pruner,
                    reason: format!(
                        "importance_metric weighted_gradient multiplies a gradient by its weight, \
                         and `{name}` is not a weight of the model; use abs_gradient for inputs"
                    ),
                });
            }
            if params.importance_metric.weight_only() {
                return Err(PruneError::Structured {
                    pruner,
                    reason: format!(
                        "importance_metric {} measures weights, and `{name}` is not a weight of \
                         the model",
                        params.importance_metric.name()
                    ),
                });
            }
            // `number` is the `*` capture, or `index` when the names have no `*`.
            sources.push(Source::Input { name, row: number });
        }
    }
    Ok(sources)
}

/// Per group of `stride` slices along `axis` of a weight's canonical view: abs_gradient sums
/// |grad|; weighted_gradient sums, over the group's slices, |sum of grad * w| of each slice.
/// `None` when the weight has no gradient.
fn weight_importance<M: Model>(
    model: &M,
    info: &WeightInfo,
    id: WeightId,
    axis: usize,
    stride: usize,
    metric: ImportanceMetric,
) -> Result<Option<Vec<f64>>> {
    let be = model.backend();
    let Some(grad) = model.gradient_at(id)? else {
        return Ok(None);
    };
    let g = canonical_values(info, be.to_vec(&grad)?, "gradient")?;
    let w = match metric {
        ImportanceMetric::WeightedGradient => Some(canonical_values(
            info,
            be.to_vec(&model.weight_at(id)?)?,
            "weight",
        )?),
        ImportanceMetric::AbsGradient | ImportanceMetric::L1Norm | ImportanceMetric::L2Norm => None,
    };
    let extent = info.shape[axis];
    let outer: usize = info.shape[..axis].iter().product();
    let inner: usize = info.shape[axis + 1..].iter().product();
    let mut per_slice = vec![0.0f64; extent];
    match &w {
        None => {
            for o in 0..outer {
                for (i, acc) in per_slice.iter_mut().enumerate() {
                    let base = (o * extent + i) * inner;
                    *acc += g[base..base + inner]
                        .iter()
                        .map(|v| f64::from(v.abs()))
                        .sum::<f64>();
                }
            }
        }
        Some(w) => {
            let mut signed = vec![0.0f64; extent];
            for o in 0..outer {
                for (i, acc) in signed.iter_mut().enumerate() {
                    let base = (o * extent + i) * inner;
                    *acc += g[base..base + inner]
                        .iter()
                        .zip(&w[base..base + inner])
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum::<f64>();
                }
            }
            for (acc, s) in per_slice.iter_mut().zip(signed) {
                *acc = s.abs();
            }
        }
    }
    Ok(Some(
        per_slice
            .chunks(stride)
            .map(|c| c.iter().sum::<f64>())
            .collect(),
    ))
}

/// A weight's (or its gradient's) values read back from the backend, in the canonical view;
/// refused, naming the weight, when the backend gave another number of values than its shape
/// holds.
fn canonical_values(info: &WeightInfo, stored: Vec<f32>, what: &str) -> Result<Vec<f32>> {
    try_to_canonical(stored, info.layout, &info.shape).map_err(|reason| PruneError::Shape {
        weight: info.name.clone(),
        shape: info.shape.clone(),
        reason: format!("its {what}: {reason}"),
    })
}

/// For each slice along `axis` of a canonical tensor of `shape`, the sum of `f` over its values.
fn slice_sums(values: &[f32], shape: &[usize], axis: usize, f: impl Fn(f32) -> f64) -> Vec<f64> {
    let extent = shape[axis];
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut per_slice = vec![0.0f64; extent];
    for o in 0..outer {
        for (i, acc) in per_slice.iter_mut().enumerate() {
            let base = (o * extent + i) * inner;
            *acc += values[base..base + inner]
                .iter()
                .map(|&v| f(v))
                .sum::<f64>();
        }
    }
    per_slice
}

/// Each value divided by the vector's L2 norm (unchanged when the norm is 0).
fn l2_normalised(v: &[f64]) -> Vec<f64> {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter().map(|x| x / norm).collect()
    } else {
        v.to_vec()
    }
}

/// The `target` most important groups, ascending; ties keep the lower index.
pub fn top_groups(importance: &[f64], target: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..importance.len()).collect();
    order.sort_by(|&a, &b| importance[b].total_cmp(&importance[a]).then(a.cmp(&b)));
    let mut kept: Vec<usize> = order.into_iter().take(target).collect();
    kept.sort_unstable();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_numbers_come_from_the_star() {
        assert_eq!(
            layer_number("enc.layer.*.q.weight", "enc.layer.11.q.weight"),
            Some(11)
        );
        assert_eq!(
            layer_number("enc.layer.*.q.weight", "enc.layer.x.q.weight"),
            None
        );
        assert_eq!(
            layer_number("enc.layer.0.q.weight", "enc.layer.0.q.weight"),
            None
        );
        assert_eq!(layer_number("module.l.*.w", "l.2.w"), Some(2));
    }

    #[test]
    fn top_groups_keeps_original_order_and_breaks_ties_low() {
        assert_eq!(top_groups(&[0.1, 0.9, 0.5, 0.9], 2), vec![1, 3]);
        assert_eq!(top_groups(&[0.2, 0.2, 0.2], 2), vec![0, 1]);
        assert_eq!(top_groups(&[3.0, 1.0, 2.0], 3), vec![0, 1, 2]);
    }

    #[test]
    fn normalising_divides_by_the_l2_norm() {
        assert_eq!(l2_normalised(&[3.0, 4.0]), vec![0.6, 0.8]);
        assert_eq!(l2_normalised(&[0.0, 0.0]), vec![0.0, 0.0]);
    }
}
