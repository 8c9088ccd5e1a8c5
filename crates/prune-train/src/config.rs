//! The `train` section of an INC 1.x config: the built-in loop's settings. Core keeps the
//! section as written; it is read and validated here, every problem with its YAML path, when
//! `fit()` runs or `prune check` looks at it.

use prune_core::config::walk::{get, join, Walker};
use prune_core::error::{ConfigProblem, ConfigProblems};
use prune_core::suggest::unknown;
use prune_core::{PruneError, PruningConfig, Result};
use serde::Serialize;
use serde_yaml::Value;
use std::ops::Range;

/// `pruning.train`: settings of the built-in training loop.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainConfig {
    /// First epoch. Default 0.
    pub start_epoch: usize,
    /// Epochs run are start_epoch..end_epoch (exclusive). Default: start_epoch + `epoch` when
    /// INC's `epoch` is given, else the schedule's last end_epoch + 1.
    pub end_epoch: Option<usize>,
    /// Most steps per epoch; absent: the whole dataset.
    pub iteration: Option<usize>,
    /// Log every `frequency` steps; absent: no step log.
    pub frequency: Option<usize>,
    /// Batch size from `dataloader.batch_size`: rows per rank and step. Default 32.
    pub batch_size: usize,
    /// `dataloader.shuffle`: a new row order every epoch (from `seed`). Default true.
    pub shuffle: bool,
    /// `dataloader.last_batch: discard`: an epoch's last, short batch is skipped. Default
    /// false (INC's `rollover`): the short batch runs.
    pub drop_last: bool,
    /// `dataloader.distributed`: data-parallel over the ranks the loop is given (INC's
    /// horovod mode); each step's global batch is `batch_size` rows per rank. Default false.
    pub distributed: bool,
    /// Shuffle seed for the built-in loop. Default 42.
    pub seed: u64,
    /// The loss. Default CrossEntropyLoss.
    pub criterion: Criterion,
    /// The optimizer. Default SGD with learning_rate 0.01.
    pub optimizer: OptimizerConfig,
    /// Settings INC accepts that the built-in loop does not act on, in file order.
    pub unused: Vec<Unused>,
}

/// A setting of the `train` section that INC accepts and the built-in loop does not act on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unused {
    /// Its YAML path, e.g. `pruning.train.dataloader.dataset`.
    pub path: String,
    /// What the built-in loop does instead.
    pub reason: String,
    /// True when `fit()` cannot run as the file asks and refuses; false when it runs and the
    /// setting has no effect.
    pub blocks_fit: bool,
}

/// The loss of the built-in loop.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// Softmax cross-entropy over class labels (INC's `CrossEntropyLoss` and
    /// `SparseCategoricalCrossentropy`), reduced over the batch as `reduction` says.
    CrossEntropyLoss {
        /// How the per-row losses of a batch become the loss that is differentiated.
        reduction: Reduction,
        /// True (the default): the model's outputs are logits. False (Keras' `from_logits:
        /// False`): they are probabilities, and the loss takes their logarithm (clamped at
        /// 1e-7) in place of a log-softmax.
        from_logits: bool,
    },
}

impl Criterion {
    /// How the batch's per-row losses are reduced.
    pub fn reduction(&self) -> Reduction {
        match self {
            Criterion::CrossEntropyLoss { reduction, .. } => *reduction,
        }
    }

    /// Whether the model's outputs are logits (true) or probabilities (false).
    pub fn from_logits(&self) -> bool {
        match self {
            Criterion::CrossEntropyLoss { from_logits, .. } => *from_logits,
        }
    }
}

impl Default for Criterion {
    fn default() -> Self {
        Criterion::CrossEntropyLoss {
            reduction: Reduction::Mean,
            from_logits: true,
        }
    }
}

/// The smallest probability whose logarithm a `from_logits: False` loss takes.
pub const PROBABILITY_FLOOR: f32 = 1e-7;

/// How a criterion's per-row losses become one loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    /// The mean over the batch (INC's `mean`, Keras' `sum_over_batch_size` and `auto`, and
    /// `none` / `None`, whose per-row losses a training step averages).
    Mean,
    /// The sum over the batch: gradients scale with the batch size.
    Sum,
}

impl Reduction {
    /// The factor that turns a batch-mean loss of `rows` rows into this reduction.
    pub fn scale(self, rows: usize) -> f32 {
        match self {
            Reduction::Mean => 1.0,
            Reduction::Sum => rows as f32,
        }
    }
}

/// The optimizer of the built-in loop.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum OptimizerConfig {
    /// Stochastic gradient descent.
    #[serde(rename = "SGD")]
    Sgd {
        /// Step size.
        learning_rate: f64,
        /// Momentum factor, 0 for none.
        momentum: f64,
        /// L2 weight decay.
        weight_decay: f64,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// Adam, with L2 weight decay added to the gradient.
    Adam(AdamParams),
    /// AdamW: Adam with weight decay applied to the weights, decoupled from the gradient.
    AdamW(AdamParams),
}

/// The settings of Adam and AdamW (INC's keys; the defaults are Keras'). Serialized inside
/// [`OptimizerConfig`] next to its `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AdamParams {
    /// Step size. Default 0.001.
    pub learning_rate: f64,
    /// First-moment decay. Default 0.9.
    pub beta_1: f64,
    /// Second-moment decay. Default 0.999.
    pub beta_2: f64,
    /// Denominator epsilon. Default 1e-7.
    pub epsilon: f64,
    /// Weight decay: L2 added to the gradient (Adam) or decoupled from it (AdamW). Default 0;
    /// INC requires it for AdamW.
    pub weight_decay: f64,
    /// The AMSGrad variant (the running maximum of the second moment). Default false.
    pub amsgrad: bool,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Sgd {
            learning_rate: 0.01,
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

const TRAIN_KEYS: &[&str] = &[
    "epoch",
    "start_epoch",
    "end_epoch",
    "iteration",
    "frequency",
    "dataloader",
    "criterion",
    "optimizer",
    "seed",
    "execution_mode",
    "postprocess",
    "hostfile",
];
const DATALOADER_KEYS: &[&str] = &[
    "batch_size",
    "dataset",
    "transform",
    "filter",
    "shuffle",
    "last_batch",
    "distributed",
];
const SGD_KEYS: &[&str] = &["learning_rate", "momentum", "weight_decay", "nesterov"];
const ADAM_KEYS: &[&str] = &[
    "learning_rate",
    "beta_1",
    "beta_2",
    "epsilon",
    "weight_decay",
    "amsgrad",
];
const OPTIMIZERS: &[&str] = &["SGD", "Adam", "AdamW"];
const CROSS_ENTROPY: &[&str] = &["CrossEntropyLoss", "SparseCategoricalCrossentropy"];
const DISTILLATION: &[&str] = &[
    "KnowledgeDistillationLoss",
    "IntermediateLayersKnowledgeDistillationLoss",
];

impl TrainConfig {
    /// The config's `train` section for `fit()`: read and validated, and refused when it asks
    /// for something the built-in loop cannot run (a distillation loss); a config error naming
    /// `source_name` and every problem's YAML path.
    pub fn from_config(config: &PruningConfig, source_name: &str) -> Result<TrainConfig> {
        let train = Self::read(config, source_name)?;
        let blocking: Vec<ConfigProblem> = train
            .unused
            .iter()
            .filter(|u| u.blocks_fit)
            .map(|u| ConfigProblem {
                path: u.path.clone(),
                reason: format!(
                    "{}; fit() cannot run it (a loop of your own that calls the hooks can)",
                    u.reason
                ),
            })
            .collect();
        if blocking.is_empty() {
            Ok(train)
        } else {
            Err(PruneError::Config {
                source_name: source_name.into(),
                problems: ConfigProblems(blocking),
            })
        }
    }

    /// The config's `train` section, read against INC 1.x's schema: every setting INC accepts
    /// is accepted, and those the built-in loop does not act on are listed in
    /// [`unused`](TrainConfig::unused). A config error when the section is missing or a value
    /// is one INC itself refuses.
    pub fn read(config: &PruningConfig, source_name: &str) -> Result<TrainConfig> {
        let Some(section) = &config.train else {
            return Err(PruneError::Config {
                source_name: source_name.into(),
                problems: ConfigProblems(vec![ConfigProblem {
                    path: "pruning.train".into(),
                    reason: "missing: the built-in training loop needs a train section (or call the hooks from your own loop)"
                        .into(),
                }]),
            });
        };
        let mut w = Walker::default();
        let mut unused = Vec::new();
        let train = read_train(&mut w, &mut unused, section, "pruning.train");
        w.finish(train, source_name).map(|mut t| {
            t.unused = unused;
            t
        })
    }

    /// The epochs the built-in loop runs: `start_epoch..end_epoch`, the end defaulting to one
    /// past the last epoch any pruner's schedule acts in.
    pub fn epochs(&self, config: &PruningConfig) -> Range<usize> {
        self.start_epoch..self.end_epoch.unwrap_or(config.last_schedule_epoch() + 1)
    }
}

fn ignored(unused: &mut Vec<Unused>, path: String, reason: &str) {
    unused.push(Unused {
        path,
        reason: reason.into(),
        blocks_fit: false,
    });
}

fn read_train(
    w: &mut Walker,
    unused: &mut Vec<Unused>,
    v: &Value,
    path: &str,
) -> Option<TrainConfig> {
    let m = w.mapping(v, path)?;
    w.check_keys(m, path, TRAIN_KEYS);
    let start_epoch = w.usize(m, path, "start_epoch").unwrap_or(0);
    let mut end_epoch = w.usize(m, path, "end_epoch");
    if let Some(e) = end_epoch {
        if e <= start_epoch {
            w.problem(
                join(path, "end_epoch"),
                format!("{e} must be after start_epoch {start_epoch}"),
            );
        }
    }
    // INC's `epoch` counts the epochs to run when end_epoch is not given.
    match (w.usize(m, path, "epoch"), end_epoch) {
        (Some(0), _) => w.problem(join(path, "epoch"), "0 would run no epoch; must be >= 1"),
        (Some(_), Some(_)) => ignored(
            unused,
            join(path, "epoch"),
            "end_epoch is given and decides the epochs run, as in INC",
        ),
        (Some(n), None) => end_epoch = Some(start_epoch + n),
        (None, _) => {}
    }
    let iteration = w.usize(m, path, "iteration");
    if iteration == Some(0) {
        w.problem(join(path, "iteration"), "0 would run no step; must be >= 1");
    }
    let frequency = w.usize(m, path, "frequency");
    let seed = w.usize(m, path, "seed").map(|s| s as u64).unwrap_or(42);
    if let Some(mode) = w.string(m, path, "execution_mode") {
        if mode == "eager" || mode == "graph" {
            ignored(
                unused,
                join(path, "execution_mode"),
                "each backend runs its own way (burn and libtorch eagerly, TensorFlow as a graph)",
            );
        } else {
            w.problem(
                join(path, "execution_mode"),
                format!("unknown execution_mode `{mode}`; INC accepts eager, graph"),
            );
        }
    }
    if get(m, "postprocess").is_some() {
        ignored(
            unused,
            join(path, "postprocess"),
            "fit() takes its batches from code, already as (features, labels)",
        );
    }
    if w.string(m, path, "hostfile").is_some() {
        ignored(
            unused,
            join(path, "hostfile"),
            "hosts are mpirun's to choose (mpirun --hostfile), see docs/distributed.md",
        );
    }
    let mut batch_size = 32;
    let (mut distributed, mut shuffle, mut drop_last) = (false, true, false);
    if let Some(dl) = get(m, "dataloader") {
        let dpath = join(path, "dataloader");
        if let Some(dm) = w.mapping(dl, &dpath) {
            w.check_keys(dm, &dpath, DATALOADER_KEYS);
            for key in ["dataset", "transform", "filter"] {
                if get(dm, key).is_some() {
                    ignored(
                        unused,
                        join(&dpath, key),
                        "fit() takes its dataset from code (a prune::train::Dataset)",
                    );
                }
            }
            distributed = w.bool(dm, &dpath, "distributed").unwrap_or(false);
            shuffle = w.bool(dm, &dpath, "shuffle").unwrap_or(true);
            match w.string(dm, &dpath, "last_batch").as_deref() {
                None | Some("rollover") => {}
                Some("discard") => drop_last = true,
                Some(other) => w.problem(
                    join(&dpath, "last_batch"),
                    format!("unknown last_batch `{other}`; INC accepts rollover, discard"),
                ),
            }
            match w.usize(dm, &dpath, "batch_size") {
                Some(0) => w.problem(join(&dpath, "batch_size"), "0 must be >= 1"),
                Some(b) => batch_size = b,
                None => {}
            }
        }
    }
    let criterion =
        get(m, "criterion").and_then(|c| read_criterion(w, unused, c, &join(path, "criterion")));
    let optimizer =
        get(m, "optimizer").and_then(|o| read_optimizer(w, o, &join(path, "optimizer")));
    Some(TrainConfig {
        start_epoch,
        end_epoch,
        iteration,
        frequency,
        batch_size,
        shuffle,
        drop_last,
        distributed,
        seed,
        criterion: criterion.unwrap_or_default(),
        optimizer: optimizer.unwrap_or_default(),
        unused: Vec::new(),
    })
}

/// The single `{Name: {...}}` entry of a mapping such as `optimizer:` or `criterion:`.
fn single_entry<'v>(w: &mut Walker, v: &'v Value, path: &str) -> Option<(String, &'v Value)> {
    let m = w.mapping(v, path)?;
    if m.len() != 1 {
        w.problem(
            path,
            format!(
                "expected exactly one entry such as `SGD: {{...}}`, found {}",
                m.len()
            ),
        );
        return None;
    }
    let (k, v) = m.iter().next()?;
    match k.as_str() {
        Some(name) => Some((name.to_string(), v)),
        None => {
            w.problem(path, "the entry's key must be a name");
            None
        }
    }
}

fn read_criterion(
    w: &mut Walker,
    unused: &mut Vec<Unused>,
    v: &Value,
    path: &str,
) -> Option<Criterion> {
    let (name, body) = single_entry(w, v, path)?;
    let p = join(path, &name);
    let m = w.mapping(body, &p)?;
    if CROSS_ENTROPY.contains(&name.as_str()) {
        w.check_keys(m, &p, &["reduction", "from_logits"]);
        let reduction = match w.string(m, &p, "reduction").as_deref() {
            Some("sum") => Reduction::Sum,
            // `None` is how INC's own template writes it.
            None | Some("none" | "None" | "mean" | "sum_over_batch_size" | "auto") => {
                Reduction::Mean
            }
            Some(r) => {
                w.problem(
                    join(&p, "reduction"),
                    format!(
                        "unknown reduction `{r}`; INC accepts none, sum, mean, auto, sum_over_batch_size"
                    ),
                );
                Reduction::Mean
            }
        };
        let from_logits = w.bool(m, &p, "from_logits").unwrap_or(true);
        return Some(Criterion::CrossEntropyLoss {
            reduction,
            from_logits,
        });
    }
    if DISTILLATION.contains(&name.as_str()) {
        read_distillation(w, m, &p, &name);
        unused.push(Unused {
            path: p,
            reason: format!("{name} needs a teacher model, which fit() is not given"),
            blocks_fit: true,
        });
        return None;
    }
    let known = [CROSS_ENTROPY, DISTILLATION].concat();
    w.problem(p, unknown("criterion", &name, &known, "INC defines"));
    None
}

/// Checks a distillation loss's parameters as INC's schema does.
fn read_distillation(w: &mut Walker, m: &serde_yaml::Mapping, p: &str, name: &str) {
    let list = |w: &mut Walker, key: &str| -> Option<Vec<Value>> {
        match get(m, key).map(prune_core::config::walk::untag) {
            None => None,
            Some(Value::Sequence(items)) => Some(items.clone()),
            Some(_) => {
                w.problem(join(p, key), "expected a list");
                None
            }
        }
    };
    let allowed: &[&str] = if name == "KnowledgeDistillationLoss" {
        w.check_keys(m, p, &["temperature", "loss_types", "loss_weights"]);
        if let Some(t) = w.f64(m, p, "temperature") {
            if t.is_nan() || t <= 0.0 {
                w.problem(join(p, "temperature"), format!("{t} must be > 0"));
            }
        }
        &["CE", "KL", "MSE"]
    } else {
        w.check_keys(
            m,
            p,
            &[
                "layer_mappings",
                "loss_types",
                "loss_weights",
                "add_origin_loss",
            ],
        );
        match list(w, "layer_mappings") {
            None => w.problem(join(p, "layer_mappings"), "missing: INC requires it"),
            Some(maps) => {
                for (i, entry) in maps.iter().enumerate() {
                    let len = match entry {
                        Value::Sequence(s) => s.len(),
                        _ => 0,
                    };
                    if len != 2 && len != 4 {
                        w.problem(
                            format!("{}[{i}]", join(p, "layer_mappings")),
                            "expected a list of 2 or 4 layer names",
                        );
                    }
                }
            }
        }
        w.bool(m, p, "add_origin_loss");
        &["MSE", "KL", "L1"]
    };
    if let Some(types) = list(w, "loss_types") {
        for (i, t) in types.iter().enumerate() {
            if !t.as_str().is_some_and(|t| allowed.contains(&t)) {
                w.problem(
                    format!("{}[{i}]", join(p, "loss_types")),
                    format!("expected one of {}", allowed.join(", ")),
                );
            }
        }
    }
    if let Some(weights) = list(w, "loss_weights") {
        let values: Vec<Option<f64>> = weights.iter().map(Value::as_f64).collect();
        if values.iter().any(|x| !x.is_some_and(|x| x >= 0.0)) {
            w.problem(
                join(p, "loss_weights"),
                "every weight must be a number >= 0",
            );
        } else if name == "KnowledgeDistillationLoss" {
            let sum: f64 = values.iter().flatten().sum();
            if (sum - 1.0).abs() > 1e-9 {
                w.problem(
                    join(p, "loss_weights"),
                    format!("they sum to {sum}; INC requires 1"),
                );
            }
        }
    }
}

fn read_optimizer(w: &mut Walker, v: &Value, path: &str) -> Option<OptimizerConfig> {
    let (name, body) = single_entry(w, v, path)?;
    let p = join(path, &name);
    let m = w.mapping(body, &p)?;
    let non_negative = |w: &mut Walker, key: &str, x: Option<f64>, default: f64| {
        let x = x.unwrap_or(default);
        if !(x >= 0.0 && x.is_finite()) {
            w.problem(join(&p, key), format!("{x} must be a finite number >= 0"));
        }
        x
    };
    match name.as_str() {
        "SGD" => {
            w.check_keys(m, &p, SGD_KEYS);
            let lr = w.f64(m, &p, "learning_rate");
            let mo = w.f64(m, &p, "momentum");
            let wd = w.f64(m, &p, "weight_decay");
            let nesterov = w.bool(m, &p, "nesterov").unwrap_or(false);
            Some(OptimizerConfig::Sgd {
                learning_rate: non_negative(w, "learning_rate", lr, 0.01),
                momentum: non_negative(w, "momentum", mo, 0.0),
                weight_decay: non_negative(w, "weight_decay", wd, 0.0),
                nesterov,
            })
        }
        "Adam" | "AdamW" => {
            w.check_keys(m, &p, ADAM_KEYS);
            let amsgrad = w.bool(m, &p, "amsgrad").unwrap_or(false);
            let lr = w.f64(m, &p, "learning_rate");
            let b1 = w.f64(m, &p, "beta_1");
            let b2 = w.f64(m, &p, "beta_2");
            let eps = w.f64(m, &p, "epsilon");
            let wd = w.f64(m, &p, "weight_decay");
            if name == "AdamW" && wd.is_none() {
                w.problem(
                    join(&p, "weight_decay"),
                    "missing: INC requires it for AdamW",
                );
            }
            let beta_1 = non_negative(w, "beta_1", b1, 0.9);
            let beta_2 = non_negative(w, "beta_2", b2, 0.999);
            for (key, b) in [("beta_1", beta_1), ("beta_2", beta_2)] {
                if b >= 1.0 {
                    w.problem(join(&p, key), format!("{b} must be < 1"));
                }
            }
            let params = AdamParams {
                learning_rate: non_negative(w, "learning_rate", lr, 0.001),
                beta_1,
                beta_2,
                epsilon: non_negative(w, "epsilon", eps, 1e-7),
                weight_decay: non_negative(w, "weight_decay", wd, 0.0),
                amsgrad,
            };
            Some(if name == "Adam" {
                OptimizerConfig::Adam(params)
            } else {
                OptimizerConfig::AdamW(params)
            })
        }
        other => {
            w.problem(p, unknown("optimizer", other, OPTIMIZERS, "INC defines"));
            None
        }
    }
}
