//! The `train` section of an INC 1.x config: the built-in loop's settings. Core keeps the
//! section as written; it is read and validated here, every problem with its YAML path, when
//! `fit()` runs or `prune check` looks at it.

use prune_core::config::walk::{get, join, Walker};
use prune_core::error::ConfigProblem;
use prune_core::suggest::nearest;
use prune_core::{PruneError, PruningConfig, Result};
use serde::Serialize;
use serde_yaml::Value;
use std::ops::Range;

/// `pruning.train`: settings of the built-in training loop.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainConfig {
    /// First epoch. Default 0.
    pub start_epoch: usize,
    /// Epochs run are start_epoch..end_epoch (exclusive). Default: the schedule's last end_epoch + 1.
    pub end_epoch: Option<usize>,
    /// Most steps per epoch; absent: the whole dataset.
    pub iteration: Option<usize>,
    /// Log every `frequency` steps; absent: no step log.
    pub frequency: Option<usize>,
    /// Batch size from `dataloader.batch_size`: rows per rank and step. Default 32.
    pub batch_size: usize,
    /// `dataloader.distributed`: data-parallel over the ranks the loop is given (INC's
    /// horovod mode); each step's global batch is `batch_size` rows per rank. Default false.
    pub distributed: bool,
    /// Shuffle seed for the built-in loop. Default 42.
    pub seed: u64,
    /// The loss. Default CrossEntropyLoss.
    pub criterion: Criterion,
    /// The optimizer. Default SGD with learning_rate 0.01.
    pub optimizer: OptimizerConfig,
}

/// The loss of the built-in loop.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// Softmax cross-entropy over class logits, reduced over the batch as `reduction` says.
    CrossEntropyLoss {
        /// How the per-row losses of a batch become the loss that is differentiated.
        reduction: Reduction,
    },
}

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
    /// Adam.
    Adam {
        /// Step size.
        learning_rate: f64,
        /// First-moment decay.
        beta_1: f64,
        /// Second-moment decay.
        beta_2: f64,
        /// Denominator epsilon.
        epsilon: f64,
        /// L2 weight decay.
        weight_decay: f64,
    },
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
const SGD_KEYS: &[&str] = &["learning_rate", "momentum", "weight_decay", "nesterov"];
const ADAM_KEYS: &[&str] = &[
    "learning_rate",
    "beta_1",
    "beta_2",
    "epsilon",
    "weight_decay",
    "amsgrad",
];

impl TrainConfig {
    /// The config's `train` section, read and validated; a config error naming `source_name`
    /// when it is missing or any value in it is wrong.
    pub fn from_config(config: &PruningConfig, source_name: &str) -> Result<TrainConfig> {
        let Some(section) = &config.train else {
            return Err(PruneError::Config {
                source_name: source_name.into(),
                problems: prune_core::error::ConfigProblems(vec![ConfigProblem {
                    path: "pruning.train".into(),
                    reason: "missing: the built-in training loop needs a train section (or call the hooks from your own loop)"
                        .into(),
                }]),
            });
        };
        let mut w = Walker::default();
        let train = read_train(&mut w, section, "pruning.train");
        w.finish(train, source_name)
    }

    /// The epochs the built-in loop runs: `start_epoch..end_epoch`, the end defaulting to one
    /// past the last epoch any pruner's schedule acts in.
    pub fn epochs(&self, config: &PruningConfig) -> Range<usize> {
        self.start_epoch..self.end_epoch.unwrap_or(config.last_schedule_epoch() + 1)
    }
}

fn read_train(w: &mut Walker, v: &Value, path: &str) -> Option<TrainConfig> {
    let m = w.mapping(v, path)?;
    w.check_keys(m, path, TRAIN_KEYS);
    let start_epoch = w.usize(m, path, "start_epoch").unwrap_or(0);
    let end_epoch = w.usize(m, path, "end_epoch");
    if let Some(e) = end_epoch {
        if e <= start_epoch {
            w.problem(
                join(path, "end_epoch"),
                format!("{e} must be after start_epoch {start_epoch}"),
            );
        }
    }
    let iteration = w.usize(m, path, "iteration");
    if iteration == Some(0) {
        w.problem(join(path, "iteration"), "0 would run no step; must be >= 1");
    }
    let frequency = w.usize(m, path, "frequency");
    let seed = w.usize(m, path, "seed").map(|s| s as u64).unwrap_or(42);
    let mut batch_size = 32;
    let mut distributed = false;
    if let Some(dl) = get(m, "dataloader") {
        let dpath = join(path, "dataloader");
        if let Some(dm) = w.mapping(dl, &dpath) {
            // dataset / transform / filter describe INC's own data pipeline; the built-in loop takes
            // datasets from code and reads only batch_size.
            w.check_keys(
                dm,
                &dpath,
                &[
                    "batch_size",
                    "dataset",
                    "transform",
                    "filter",
                    "shuffle",
                    "last_batch",
                    "distributed",
                ],
            );
            distributed = w.bool(dm, &dpath, "distributed").unwrap_or(false);
            match w.usize(dm, &dpath, "batch_size") {
                Some(0) => w.problem(join(&dpath, "batch_size"), "0 must be >= 1"),
                Some(b) => batch_size = b,
                None => {}
            }
        }
    }
    let criterion = get(m, "criterion").map(|c| read_criterion(w, c, &join(path, "criterion")));
    let optimizer =
        get(m, "optimizer").and_then(|o| read_optimizer(w, o, &join(path, "optimizer")));
    Some(TrainConfig {
        start_epoch,
        end_epoch,
        iteration,
        frequency,
        batch_size,
        distributed,
        seed,
        criterion: criterion.unwrap_or(Criterion::CrossEntropyLoss {
            reduction: Reduction::Mean,
        }),
        optimizer: optimizer.unwrap_or_default(),
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

fn read_criterion(w: &mut Walker, v: &Value, path: &str) -> Criterion {
    if let Some((name, body)) = single_entry(w, v, path) {
        let p = join(path, &name);
        if name == "CrossEntropyLoss" {
            let mut reduction = Reduction::Mean;
            if let Some(m) = w.mapping(body, &p) {
                w.check_keys(m, &p, &["reduction", "from_logits"]);
                if let Some(r) = w.string(m, &p, "reduction") {
                    match r.as_str() {
                        "sum" => reduction = Reduction::Sum,
                        "None" | "none" | "mean" | "sum_over_batch_size" | "auto" => {}
                        _ => w.problem(
                            join(&p, "reduction"),
                            format!(
                                "unknown reduction `{r}`; INC accepts mean, sum, none \
                                 (and Keras' sum_over_batch_size, auto)"
                            ),
                        ),
                    }
                }
            }
            return Criterion::CrossEntropyLoss { reduction };
        } else {
            w.problem(
                p,
                format!("unsupported criterion `{name}`; supported: CrossEntropyLoss"),
            );
        }
    }
    Criterion::CrossEntropyLoss {
        reduction: Reduction::Mean,
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
        "Adam" => {
            w.check_keys(m, &p, ADAM_KEYS);
            if w.bool(m, &p, "amsgrad") == Some(true) {
                w.problem(
                    join(&p, "amsgrad"),
                    "amsgrad is not supported by the built-in loop",
                );
            }
            let lr = w.f64(m, &p, "learning_rate");
            let b1 = w.f64(m, &p, "beta_1");
            let b2 = w.f64(m, &p, "beta_2");
            let eps = w.f64(m, &p, "epsilon");
            let wd = w.f64(m, &p, "weight_decay");
            let beta_1 = non_negative(w, "beta_1", b1, 0.9);
            let beta_2 = non_negative(w, "beta_2", b2, 0.999);
            for (key, b) in [("beta_1", beta_1), ("beta_2", beta_2)] {
                if b >= 1.0 {
                    w.problem(join(&p, key), format!("{b} must be < 1"));
                }
            }
            Some(OptimizerConfig::Adam {
                learning_rate: non_negative(w, "learning_rate", lr, 0.001),
                beta_1,
                beta_2,
                epsilon: non_negative(w, "epsilon", eps, 1e-7),
                weight_decay: non_negative(w, "weight_decay", wd, 0.0),
            })
        }
        other => {
            let hint = nearest(other, &["SGD", "Adam"])
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            w.problem(
                p,
                format!("unsupported optimizer `{other}`{hint}; supported: SGD, Adam"),
            );
            None
        }
    }
}
