//! Reading INC 1.x pruning YAML into [`PruningConfig`], collecting every problem with its path.

use super::types::*;
use super::walk::{get, join, untag, Walker};
use crate::error::{PruneError, Result};
use crate::suggest::unknown;
use serde_yaml::{Mapping, Value};

/// Top-level sections of an INC 1.x file. Only `pruning` is read; the others belong to other INC
/// components and are accepted so that whole INC files load as written.
const TOP_KEYS: &[&str] = &[
    "pruning",
    "version",
    "model",
    "device",
    "evaluation",
    "tuning",
    "quantization",
    "distillation",
    "graph_optimization",
    "mixed_precision",
    "benchmark",
];
const PRUNING_KEYS: &[&str] = &["train", "approach"];
const APPROACH_KEYS: &[&str] = &["weight_compression"];
/// The schedule keys that `weight_compression` and each pruner both take ([`read_schedule`]).
const SCHEDULE_KEYS: &[&str] = &[
    "initial_sparsity",
    "target_sparsity",
    "start_epoch",
    "end_epoch",
    "frequency",
    "update_frequency",
];
/// `weight_compression`'s keys besides the schedule.
const WC_KEYS: &[&str] = &["pruners", "coupling"];
const SLICE_KEYS: &[&str] = &["weight", "axis", "block"];
/// A pruner's keys before and after the schedule (in the order the hint lists them).
const PRUNER_KEYS: [&[&str]; 2] = [
    &["prune_type", "names"],
    &["method", "pattern", "parameters"],
];
const PARAM_KEYS: &[&str] = &[
    "target",
    "stride",
    "transpose",
    "normalize",
    "index",
    "importance_inputs",
    "importance_metric",
    "coupled_importance",
    "alpha",
    "pattern",
];
/// Default global sparsity target, as in INC's schema.
pub const DEFAULT_TARGET_SPARSITY: f64 = 0.97;
/// Default global end epoch, as in INC's schema.
pub const DEFAULT_END_EPOCH: usize = 4;

impl PruningConfig {
    /// Reads a YAML file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PruneError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml_named(&text, &path.display().to_string())
    }

    /// Reads YAML text.
    pub fn from_yaml(text: &str) -> Result<Self> {
        Self::from_yaml_named(text, "<string>")
    }

    /// Reads YAML text, naming its source in errors.
    pub fn from_yaml_named(text: &str, source_name: &str) -> Result<Self> {
        let root: Value = serde_yaml::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            PruneError::Yaml {
                source_name: source_name.to_string(),
                line,
                column,
                message: e.to_string(),
            }
        })?;
        let mut w = Walker::default();
        let config = read_root(&mut w, &root);
        w.finish(config, source_name)
    }

    /// Every pruner with the global values filled in where it left them out.
    pub fn resolved_pruners(&self) -> Vec<ResolvedPruner> {
        let g = &self.weight_compression;
        g.pruners
            .iter()
            .enumerate()
            .map(|(index, p)| ResolvedPruner {
                index,
                prune_type: p.prune_type,
                names: p.names.clone(),
                initial_sparsity: p.initial_sparsity.unwrap_or(g.initial_sparsity),
                target_sparsity: p.target_sparsity.unwrap_or(g.target_sparsity),
                start_epoch: p.start_epoch.unwrap_or(g.start_epoch),
                end_epoch: p.end_epoch.unwrap_or(g.end_epoch),
                frequency: p.frequency.unwrap_or(g.frequency),
                method: p.method,
                pattern: p.pattern,
                parameters: p.parameters.clone(),
            })
            .collect()
    }

    /// The last epoch any pruner's schedule acts in.
    pub fn last_schedule_epoch(&self) -> usize {
        self.resolved_pruners()
            .iter()
            .map(|p| p.end_epoch)
            .max()
            .unwrap_or(self.weight_compression.end_epoch)
    }
}

fn read_root(w: &mut Walker, root: &Value) -> Option<PruningConfig> {
    let top = w.mapping(root, "")?;
    w.check_keys(top, "", TOP_KEYS);
    let Some(pruning) = get(top, "pruning") else {
        w.problem("pruning", "missing: the file needs a `pruning:` section");
        return None;
    };
    let pm = w.mapping(pruning, "pruning")?;
    w.check_keys(pm, "pruning", PRUNING_KEYS);
    let train = get(pm, "train").cloned();
    let Some(approach) = get(pm, "approach") else {
        w.problem(
            "pruning.approach",
            "missing: expected `approach: {weight_compression: ...}`",
        );
        return None;
    };
    let am = w.mapping(approach, "pruning.approach")?;
    if get(am, "weight_compression_pytorch").is_some() {
        w.problem(
            "pruning.approach.weight_compression_pytorch",
            "INC 1.13's step-based pruners (snip_momentum and the others of INC's pytorch_pruner) \
             are not supported; prune runs the epoch-based `weight_compression` pruners: \
             basic_magnitude, pattern_lock, gradient_sensitivity, group_lasso",
        );
        return None;
    }
    w.check_keys(am, "pruning.approach", APPROACH_KEYS);
    let Some(wc) = get(am, "weight_compression") else {
        w.problem("pruning.approach.weight_compression", "missing");
        return None;
    };
    let weight_compression = read_weight_compression(w, wc, "pruning.approach.weight_compression")?;
    Some(PruningConfig {
        train,
        weight_compression,
    })
}

/// Reads `frequency` or its alias `update_frequency`; both at once is a problem.
fn read_frequency(w: &mut Walker, m: &Mapping, path: &str) -> Option<f64> {
    let a = w.f64(m, path, "frequency");
    let b = w.f64(m, path, "update_frequency");
    if a.is_some() && b.is_some() {
        w.problem(
            join(path, "update_frequency"),
            "both `frequency` and `update_frequency` given; keep one",
        );
    }
    let f = a.or(b)?;
    if !(f > 0.0 && f.is_finite()) {
        let key = if a.is_some() {
            "frequency"
        } else {
            "update_frequency"
        };
        w.problem(join(path, key), format!("{f} must be > 0"));
    }
    Some(f)
}

fn check_sparsity(w: &mut Walker, path: &str, key: &str, v: Option<f64>) {
    if let Some(s) = v {
        if !(0.0..1.0).contains(&s) {
            w.problem(join(path, key), format!("{s} is not in [0, 1)"));
        }
    }
}

/// The schedule keys that `weight_compression` and each pruner both take, as given.
struct GivenSchedule {
    initial: Option<f64>,
    target: Option<f64>,
    start: Option<usize>,
    end: Option<usize>,
    frequency: Option<f64>,
}

impl GivenSchedule {
    /// The schedule with every key not given taken from `base` (and no pruners).
    fn over(&self, base: &WeightCompression) -> WeightCompression {
        WeightCompression {
            initial_sparsity: self.initial.unwrap_or(base.initial_sparsity),
            target_sparsity: self.target.unwrap_or(base.target_sparsity),
            start_epoch: self.start.unwrap_or(base.start_epoch),
            end_epoch: self.end.unwrap_or(base.end_epoch),
            frequency: self.frequency.unwrap_or(base.frequency),
            pruners: Vec::new(),
            coupling: Vec::new(),
        }
    }
}

fn read_schedule(w: &mut Walker, m: &Mapping, path: &str) -> GivenSchedule {
    let initial = w.f64(m, path, "initial_sparsity");
    let target = w.f64(m, path, "target_sparsity");
    check_sparsity(w, path, "initial_sparsity", initial);
    check_sparsity(w, path, "target_sparsity", target);
    GivenSchedule {
        initial,
        target,
        start: w.usize(m, path, "start_epoch"),
        end: w.usize(m, path, "end_epoch"),
        frequency: read_frequency(w, m, path),
    }
}

/// The effective schedule at `path` rises, and over epochs that run forward.
fn check_order(w: &mut Walker, path: &str, s: &WeightCompression) {
    if s.initial_sparsity > s.target_sparsity {
        w.problem(
            join(path, "initial_sparsity"),
            format!(
                "{} is above target_sparsity {}",
                s.initial_sparsity, s.target_sparsity
            ),
        );
    }
    if s.start_epoch > s.end_epoch {
        w.problem(
            join(path, "start_epoch"),
            format!("{} is after end_epoch {}", s.start_epoch, s.end_epoch),
        );
    }
}

fn read_weight_compression(w: &mut Walker, v: &Value, path: &str) -> Option<WeightCompression> {
    let m = w.mapping(v, path)?;
    w.check_keys(m, path, &[SCHEDULE_KEYS, WC_KEYS].concat());
    let given = read_schedule(w, m, path);
    let g = given.over(&WeightCompression {
        initial_sparsity: 0.0,
        target_sparsity: DEFAULT_TARGET_SPARSITY,
        start_epoch: 0,
        end_epoch: DEFAULT_END_EPOCH,
        frequency: 1.0,
        pruners: Vec::new(),
        coupling: Vec::new(),
    });
    check_order(w, path, &g);
    let ppath = join(path, "pruners");
    let pruners = match get(m, "pruners").map(untag) {
        None | Some(Value::Null) => {
            w.problem(ppath, "missing: at least one `- !Pruner` item is needed");
            Vec::new()
        }
        Some(Value::Sequence(items)) => {
            if items.is_empty() {
                w.problem(&ppath, "empty: at least one `- !Pruner` item is needed");
            }
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| read_pruner(w, item, &format!("{ppath}[{i}]"), &g))
                .collect()
        }
        Some(_) => {
            w.problem(ppath, "expected a list of `- !Pruner` items");
            Vec::new()
        }
    };
    let coupling = read_coupling(w, m, &join(path, "coupling"));
    Some(WeightCompression {
        pruners,
        coupling,
        ..g
    })
}

/// `coupling:`: a list of groups, each a list of `{weight, axis, block}` slices.
fn read_coupling(w: &mut Walker, m: &Mapping, path: &str) -> Vec<Vec<DeclaredSlice>> {
    let groups = match get(m, "coupling").map(untag) {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Sequence(groups)) => groups,
        Some(_) => {
            w.problem(
                path,
                "expected a list of groups, each a list of {weight, axis, block}",
            );
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(groups.len());
    for (g, group) in groups.iter().enumerate() {
        let gpath = format!("{path}[{g}]");
        let Value::Sequence(members) = untag(group) else {
            w.problem(gpath, "expected a list of {weight, axis, block} slices");
            continue;
        };
        if members.len() < 2 {
            w.problem(&gpath, "a group needs at least two slices");
        }
        let mut slices = Vec::with_capacity(members.len());
        for (i, member) in members.iter().enumerate() {
            let mpath = format!("{gpath}[{i}]");
            let Some(sm) = w.mapping(member, &mpath) else {
                continue;
            };
            w.check_keys(sm, &mpath, SLICE_KEYS);
            let axis = w.usize(sm, &mpath, "axis").unwrap_or(0);
            let block = w.usize(sm, &mpath, "block").unwrap_or(1);
            if block == 0 {
                w.problem(join(&mpath, "block"), "must be at least 1");
            }
            let Some(weight) = w.string(sm, &mpath, "weight") else {
                if get(sm, "weight").is_none() {
                    w.problem(join(&mpath, "weight"), "missing: the weight's name");
                }
                continue;
            };
            slices.push(DeclaredSlice {
                weight,
                axis,
                block: block.max(1),
            });
        }
        out.push(slices);
    }
    out
}

fn read_prune_type(w: &mut Walker, m: &Mapping, path: &str) -> Option<PruneType> {
    let p = join(path, "prune_type");
    // INC's Pruner defaults to basic_magnitude when prune_type is left out.
    let Some(s) = w.string(m, path, "prune_type") else {
        return get(m, "prune_type")
            .is_none()
            .then_some(PruneType::BasicMagnitude);
    };
    if let Some((_, t)) = PruneType::ALL.iter().find(|(name, _)| *name == s) {
        return Some(*t);
    }
    let names: Vec<&str> = PruneType::ALL.iter().map(|(n, _)| *n).collect();
    w.problem(p, unknown("prune_type", &s, &names, "supported:"));
    None
}

/// Parses `tile_pattern_RxC`, `RxC` or `N:M`.
pub fn parse_pattern(s: &str) -> std::result::Result<Pattern, String> {
    let body = s.strip_prefix("tile_pattern_").unwrap_or(s);
    let bad = || {
        format!("`{s}` is not a pattern; expected tile_pattern_RxC, RxC (e.g. 1x1, 4x1, 1x16) or N:M (e.g. 2:4)")
    };
    if let Some((a, b)) = body.split_once(':') {
        let (n, m) = (
            a.trim().parse::<usize>().map_err(|_| bad())?,
            b.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if n == 0 || n >= m {
            return Err(format!("`{s}`: N:M needs 0 < N < M"));
        }
        return Ok(Pattern::NOfM { n, m });
    }
    if let Some((a, b)) = body.split_once(['x', 'X']) {
        let (rows, cols) = (
            a.trim().parse::<usize>().map_err(|_| bad())?,
            b.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if rows == 0 || cols == 0 {
            return Err(format!("`{s}`: tile sides must be >= 1"));
        }
        return Ok(Pattern::Tile { rows, cols });
    }
    Err(bad())
}

fn read_pattern(w: &mut Walker, m: &Mapping, path: &str) -> Option<Pattern> {
    let s = w.string(m, path, "pattern")?;
    match parse_pattern(&s) {
        Ok(p) => Some(p),
        Err(reason) => {
            w.problem(join(path, "pattern"), reason);
            None
        }
    }
}

fn read_pruner(
    w: &mut Walker,
    v: &Value,
    path: &str,
    g: &WeightCompression,
) -> Option<PrunerConfig> {
    if let Value::Tagged(t) = v {
        if t.tag != "!Pruner" {
            w.problem(
                path,
                format!(
                    "unexpected tag `{}`; pruner items are tagged `!Pruner`",
                    t.tag
                ),
            );
        }
    }
    let m = w.mapping(v, path)?;
    w.check_keys(
        m,
        path,
        &[PRUNER_KEYS[0], SCHEDULE_KEYS, PRUNER_KEYS[1]].concat(),
    );
    let prune_type = read_prune_type(w, m, path);
    let names = w.strings(m, path, "names");
    for (i, n) in names.iter().enumerate() {
        if n.trim().is_empty() {
            w.problem(format!("{}[{i}]", join(path, "names")), "empty weight name");
        }
    }
    let given = read_schedule(w, m, path);
    let method = match w.string(m, path, "method").as_deref() {
        None | Some("per_tensor") => Method::PerTensor,
        Some("per_channel") => Method::PerChannel,
        Some(other) => {
            w.problem(
                join(path, "method"),
                format!("unknown method `{other}`; supported: per_tensor, per_channel"),
            );
            Method::PerTensor
        }
    };
    let pattern_here = read_pattern(w, m, path);
    let (parameters, pattern_in_params) = match get(m, "parameters") {
        Some(pv) => read_parameters(w, pv, &join(path, "parameters")),
        None => (PrunerParameters::default(), None),
    };
    if pattern_here.is_some() && pattern_in_params.is_some() && pattern_here != pattern_in_params {
        w.problem(
            join(path, "parameters.pattern"),
            "differs from the pruner's `pattern`; give it once",
        );
    }
    let pattern = pattern_here.or(pattern_in_params).unwrap_or_default();

    check_order(w, path, &given.over(g));
    let prune_type = prune_type?;
    check_type_specifics(w, path, prune_type, &parameters, pattern);
    Some(PrunerConfig {
        prune_type,
        names,
        initial_sparsity: given.initial,
        target_sparsity: given.target,
        start_epoch: given.start,
        end_epoch: given.end,
        frequency: given.frequency,
        method,
        pattern,
        parameters,
    })
}

/// Checks that the parameters make sense for the algorithm.
fn check_type_specifics(
    w: &mut Walker,
    path: &str,
    t: PruneType,
    p: &PrunerParameters,
    pattern: Pattern,
) {
    if t == PruneType::GroupLasso && p.alpha.is_none() {
        w.problem(
            join(path, "parameters.alpha"),
            "missing: group_lasso needs `parameters: {alpha: ...}`",
        );
    }
    if t == PruneType::GradientSensitivity
        && (p.target.is_some() || !p.importance_inputs.is_empty())
    {
        if p.target.is_none() {
            w.problem(
                join(path, "parameters.target"),
                "missing: structured gradient_sensitivity needs `target`",
            );
        }
        if matches!(pattern, Pattern::NOfM { .. }) {
            w.problem(
                join(path, "pattern"),
                "structured gradient_sensitivity does not take an N:M pattern",
            );
        }
    }
    if p.stride == Some(0) {
        w.problem(join(path, "parameters.stride"), "0 must be >= 1");
    }
    if p.target == Some(0) {
        w.problem(
            join(path, "parameters.target"),
            "0 would remove every group; must be >= 1",
        );
    }
}

fn read_parameters(w: &mut Walker, v: &Value, path: &str) -> (PrunerParameters, Option<Pattern>) {
    let Some(m) = w.mapping(v, path) else {
        return (PrunerParameters::default(), None);
    };
    w.check_keys(m, path, PARAM_KEYS);
    let importance_metric = match w.string(m, path, "importance_metric").as_deref() {
        None | Some("abs_gradient") => ImportanceMetric::AbsGradient,
        Some("weighted_gradient") => ImportanceMetric::WeightedGradient,
        Some("l1_norm") => ImportanceMetric::L1Norm,
        Some("l2_norm") => ImportanceMetric::L2Norm,
        Some(other) => {
            w.problem(
                join(path, "importance_metric"),
                format!(
                    "unknown importance_metric `{other}`; supported: abs_gradient, \
                     weighted_gradient, l1_norm, l2_norm"
                ),
            );
            ImportanceMetric::AbsGradient
        }
    };
    let alpha = w.f64(m, path, "alpha");
    if let Some(a) = alpha {
        if !(a >= 0.0 && a.is_finite()) {
            w.problem(
                join(path, "alpha"),
                format!("{a} must be a finite number >= 0"),
            );
        }
    }
    let params = PrunerParameters {
        target: w.usize(m, path, "target"),
        stride: w.usize(m, path, "stride"),
        transpose: w.bool(m, path, "transpose").unwrap_or(false),
        normalize: w.bool(m, path, "normalize").unwrap_or(false),
        index: w.usize(m, path, "index"),
        importance_inputs: w.strings(m, path, "importance_inputs"),
        importance_metric,
        coupled_importance: w.bool(m, path, "coupled_importance").unwrap_or(false),
        alpha,
    };
    (params, read_pattern(w, m, path))
}
