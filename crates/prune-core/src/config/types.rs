//! Typed configuration: what a pruning YAML file means once parsed.

use serde::Serialize;
use std::fmt;

/// The whole pruning configuration (`pruning:` of an INC 1.x file).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PruningConfig {
    /// `pruning.train` as written, read and validated by the built-in training loop
    /// (prune-train) that uses it; absent when the user trains in their own loop.
    pub train: Option<serde_yaml::Value>,
    /// `pruning.approach.weight_compression`.
    pub weight_compression: WeightCompression,
}

/// `pruning.approach.weight_compression`: global schedule values and the pruners.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightCompression {
    /// Sparsity at the start epoch. Default 0.0.
    pub initial_sparsity: f64,
    /// Sparsity reached at the end epoch. Default 0.97.
    pub target_sparsity: f64,
    /// First epoch at which masks are computed. Default 0.
    pub start_epoch: usize,
    /// Epoch at which target_sparsity is reached (inclusive). Default 4.
    pub end_epoch: usize,
    /// Epochs between mask updates (`frequency` or `update_frequency`). Default 1.0.
    pub frequency: f64,
    /// The pruners, in file order.
    pub pruners: Vec<PrunerConfig>,
    /// Weight slices declared to shrink together (`coupling:`, an extension of INC's schema),
    /// beside those the built-in recognisers find by name.
    pub coupling: Vec<Vec<DeclaredSlice>>,
}

/// One member of a declared coupling group, as written:
/// `{weight: head.proj.weight, axis: 1, block: 49}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeclaredSlice {
    /// Canonical weight name (exact, no glob).
    pub weight: String,
    /// Canonical axis: 0 = output rows / filters, 1 = input columns / channels. Default 0.
    pub axis: usize,
    /// Consecutive indices per channel (`h * w` for a Linear after a flatten). Default 1.
    pub block: usize,
}

/// One `!Pruner` item as written: `None` means "take the global value".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrunerConfig {
    /// The algorithm.
    pub prune_type: PruneType,
    /// Weight names or `*` globs; empty means every prunable weight.
    pub names: Vec<String>,
    /// Overrides the global initial_sparsity.
    pub initial_sparsity: Option<f64>,
    /// Overrides the global target_sparsity.
    pub target_sparsity: Option<f64>,
    /// Overrides the global start_epoch.
    pub start_epoch: Option<usize>,
    /// Overrides the global end_epoch.
    pub end_epoch: Option<usize>,
    /// Overrides the global frequency.
    pub frequency: Option<f64>,
    /// `per_tensor` (default) or `per_channel`.
    pub method: Method,
    /// Block or N:M pattern; default 1x1 (element-wise).
    pub pattern: Pattern,
    /// Algorithm parameters.
    pub parameters: PrunerParameters,
}

/// A pruner with every global value filled in: what the session runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedPruner {
    /// Position in `pruners`.
    pub index: usize,
    /// The algorithm.
    pub prune_type: PruneType,
    /// Weight names or globs; empty means every prunable weight.
    pub names: Vec<String>,
    /// Sparsity at start_epoch.
    pub initial_sparsity: f64,
    /// Sparsity at end_epoch.
    pub target_sparsity: f64,
    /// First epoch of the schedule.
    pub start_epoch: usize,
    /// Last epoch of the schedule (target reached here).
    pub end_epoch: usize,
    /// Epochs between mask updates.
    pub frequency: f64,
    /// `per_tensor` or `per_channel`.
    pub method: Method,
    /// Block or N:M pattern.
    pub pattern: Pattern,
    /// Algorithm parameters.
    pub parameters: PrunerParameters,
}

impl ResolvedPruner {
    /// Names of the `parameters` that this pruner's algorithm does not read (INC ignored them silently).
    pub fn ignored_parameters(&self) -> Vec<&'static str> {
        let p = &self.parameters;
        let structured = [
            ("target", p.target.is_some()),
            ("stride", p.stride.is_some()),
            ("transpose", p.transpose),
            ("normalize", p.normalize),
            ("index", p.index.is_some()),
            ("importance_inputs", !p.importance_inputs.is_empty()),
            (
                "importance_metric",
                p.importance_metric != ImportanceMetric::AbsGradient,
            ),
            ("coupled_importance", p.coupled_importance),
        ];
        let alpha = [("alpha", p.alpha.is_some())];
        let ignored: Vec<(&'static str, bool)> = match self.prune_type {
            PruneType::BasicMagnitude | PruneType::PatternLock => {
                structured.into_iter().chain(alpha).collect()
            }
            PruneType::GroupLasso => structured.into_iter().collect(),
            PruneType::GradientSensitivity => alpha.into_iter().collect(),
        };
        ignored
            .into_iter()
            .filter(|(_, set)| *set)
            .map(|(name, _)| name)
            .collect()
    }
}

/// The pruning algorithms of INC 1.x.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneType {
    /// Element or tile magnitude, on the epoch schedule.
    BasicMagnitude,
    /// Keep the zeros a model already has.
    PatternLock,
    /// Importance from gradients, element-wise or structured.
    GradientSensitivity,
    /// Block-wise group-lasso regularisation, then block magnitude.
    GroupLasso,
}

impl PruneType {
    /// Every accepted spelling, as written in YAML.
    pub const ALL: [(&'static str, PruneType); 4] = [
        ("basic_magnitude", PruneType::BasicMagnitude),
        ("pattern_lock", PruneType::PatternLock),
        ("gradient_sensitivity", PruneType::GradientSensitivity),
        ("group_lasso", PruneType::GroupLasso),
    ];

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map(|(s, _)| *s)
            .unwrap_or("?")
    }
}

impl fmt::Display for PruneType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How scores are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// One ranking over the whole weight (INC's only behaviour).
    #[default]
    PerTensor,
    /// One ranking per output row: every row reaches the same sparsity.
    PerChannel,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::PerTensor => "per_tensor",
            Method::PerChannel => "per_channel",
        })
    }
}

/// The unit of pruning over the canonical 2-D view [out, in * kh * kw].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pattern {
    /// Blocks of `rows` x `cols`, scored by the sum of |w| (1x1: element-wise).
    Tile {
        /// Block height along the output dimension.
        rows: usize,
        /// Block width along the input dimension.
        cols: usize,
    },
    /// In every group of `m` consecutive inputs, keep exactly `n` (the largest by |w|).
    NOfM {
        /// Weights kept per group.
        n: usize,
        /// Group length along the input dimension.
        m: usize,
    },
}

impl Default for Pattern {
    fn default() -> Self {
        Pattern::Tile { rows: 1, cols: 1 }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Tile { rows, cols } => write!(f, "{rows}x{cols}"),
            Pattern::NOfM { n, m } => write!(f, "{n}:{m}"),
        }
    }
}

/// How head / row importance is measured for structured gradient sensitivity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceMetric {
    /// |d loss / d importance_input|, e.g. of a head mask.
    #[default]
    AbsGradient,
    /// |sum over a row of grad * W|.
    WeightedGradient,
    /// The L1 norm of each group's weights (sum of |W|), from the weights alone: no data and
    /// no gradient; measured once, when the layer shrinks. An extension of INC's metrics.
    L1Norm,
    /// The L2 norm of each group's weights (sqrt of the sum of W squared), as `l1_norm`.
    L2Norm,
}

impl ImportanceMetric {
    /// Whether importance comes from the weights alone (`l1_norm`, `l2_norm`).
    pub fn weight_only(self) -> bool {
        matches!(self, ImportanceMetric::L1Norm | ImportanceMetric::L2Norm)
    }

    /// The YAML spelling.
    pub fn name(self) -> &'static str {
        match self {
            ImportanceMetric::AbsGradient => "abs_gradient",
            ImportanceMetric::WeightedGradient => "weighted_gradient",
            ImportanceMetric::L1Norm => "l1_norm",
            ImportanceMetric::L2Norm => "l2_norm",
        }
    }
}

/// `parameters:` of a pruner. Every field is optional in YAML.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PrunerParameters {
    /// Structured: number of groups (heads, rows) to keep.
    pub target: Option<usize>,
    /// Structured: rows per group (e.g. 64 for a head of size 64).
    pub stride: Option<usize>,
    /// Structured: groups run along the input dimension instead of the output one.
    pub transpose: bool,
    /// Structured: L2-normalise importance per layer before ranking.
    pub normalize: bool,
    /// Structured: layer index into an importance input such as head_mask [layers, heads].
    pub index: Option<usize>,
    /// Structured: names of the inputs or weights whose gradients give importance.
    pub importance_inputs: Vec<String>,
    /// Structured: how importance is measured.
    pub importance_metric: ImportanceMetric,
    /// Structured: importance summed over every slice coupled to the pruned one (the whole
    /// group a shrink of it removes, e.g. every member of a transformer's hidden dimension),
    /// not only over the named weights.
    pub coupled_importance: bool,
    /// group_lasso: regularisation strength.
    pub alpha: Option<f64>,
}
