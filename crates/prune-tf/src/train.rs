//! An MLP classifier built in a TensorFlow graph from Rust, its optimizers (SGD with momentum /
//! Nesterov / weight decay, Adam) as graph ops, and the built-in training loop of `fit()`.

use crate::backend::tf_error;
use crate::graph_ops::VarHandle;
use crate::model::GraphHolder;
use crate::{TfModel, TfPruning};
use prune_core::{PruneError, Result};
use prune_train::config::PROBABILITY_FLOOR;
use prune_train::{
    AdamParams, Dataset, EpochLog, OptimizerConfig, Reduction, TrainConfig, Trainer,
};
use tensorflow::{
    ops, DataType, Operation, Output, Scope, Session, SessionOptions, SessionRunArgs, Shape,
    Tensor, Variable,
};

/// Graph endpoints of a classifier: features in, labels in, logits, loss and one training step.
pub struct TfClassifier {
    /// Placeholder `[batch, features]` f32.
    pub x: Operation,
    /// Placeholder `[batch, classes]` f32 one-hot labels.
    pub y: Operation,
    /// Logits `[batch, classes]`.
    pub logits: Output,
    /// Mean cross-entropy.
    pub loss: Output,
    /// One optimizer step.
    pub train_op: Operation,
}

fn err(e: tensorflow::Status) -> PruneError {
    tf_error(e)
}

/// Session options with one intra-op and one inter-op thread (ConfigProto fields 2 and 5), so
/// that reductions run in a fixed order and training is repeatable run to run.
fn deterministic_options() -> Result<SessionOptions> {
    let mut opts = SessionOptions::new();
    opts.set_config(&[0x10, 0x01, 0x28, 0x01]).map_err(err)?;
    Ok(opts)
}

/// Seeded Glorot-uniform values, so runs are reproducible.
fn glorot(fan_in: usize, fan_out: usize, seed: u64) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
    prune_core::rng::uniform_values(seed, fan_in * fan_out)
        .into_iter()
        .map(|v| v * limit)
        .collect()
}

/// A graph under construction and the initializers of the variables created in it.
pub struct Builder {
    /// The scope ops are added in.
    pub scope: Scope,
    inits: Vec<Operation>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            scope: Scope::new_root_scope(),
            inits: Vec::new(),
        }
    }
}

impl Builder {
    /// An f32 variable named `name` (e.g. `fc1/kernel`) with initial `values`.
    pub fn variable(&mut self, name: &str, shape: &[u64], values: &[f32]) -> Result<Variable> {
        let init = Tensor::<f32>::new(shape).with_values(values).map_err(err)?;
        let v = Variable::builder()
            .const_initial_value(init)
            .data_type(DataType::Float)
            .shape(shape)
            .build(&mut self.scope.with_op_name(name))
            .map_err(err)?;
        self.inits.push(v.initializer().clone());
        Ok(v)
    }
}

fn scalar(scope: &mut Scope, v: f32) -> Result<Output> {
    Ok(ops::constant(v, scope).map_err(err)?.into())
}

/// Adds update ops for `vars` minimising `loss`, as the `train` section's optimizer says.
pub fn optimizer_step(
    b: &mut Builder,
    loss: Output,
    vars: &[Variable],
    config: &OptimizerConfig,
) -> Result<Operation> {
    let wd = match *config {
        OptimizerConfig::Sgd { weight_decay, .. } => weight_decay,
        OptimizerConfig::Adam(p) if !p.amsgrad => p.weight_decay,
        OptimizerConfig::Adam(_) | OptimizerConfig::AdamW(_) => {
            return Err(PruneError::Backend {
                backend: "tf".into(),
                message: "pruning.train.optimizer: the TensorFlow built-in loop runs SGD and Adam \
                          without amsgrad; AdamW and amsgrad run on burn and torch"
                    .into(),
            })
        }
    };
    let outputs: Vec<Output> = vars.iter().map(|v| v.output().clone()).collect();
    let raw = b
        .scope
        .graph_mut()
        .add_gradients(None, &[loss], &outputs, None)
        .map_err(err)?;
    let mut grads = Vec::with_capacity(vars.len());
    for (var, g) in vars.iter().zip(raw) {
        if let Some(g) = g {
            grads.push((var, decay(&mut b.scope, g, var, wd)?));
        }
    }
    // Every update waits for every gradient: an update must not change a variable that another
    // gradient still has to read (ref variables are read in place), or steps are not repeatable.
    let all_grads: Vec<Operation> = grads.iter().map(|(_, g)| g.operation.clone()).collect();
    let mut updates = Vec::new();
    match *config {
        OptimizerConfig::Sgd {
            learning_rate,
            momentum,
            nesterov,
            ..
        } => {
            let lr = scalar(&mut b.scope, learning_rate as f32)?;
            let mo = scalar(&mut b.scope, momentum as f32)?;
            for (var, g) in grads {
                let accum = if momentum > 0.0 {
                    let shape: Vec<u64> = dims_of(var);
                    let zeros = vec![0.0; shape.iter().product::<u64>() as usize];
                    Some(b.variable(&format!("{}/momentum", var.name()), &shape, &zeros)?)
                } else {
                    None
                };
                let mut s = b.scope.with_control_dependencies(&all_grads);
                let op = match accum {
                    Some(accum) => ops::ApplyMomentum::new()
                        .use_nesterov(nesterov)
                        .build(
                            var.output().clone(),
                            accum.output().clone(),
                            lr.clone(),
                            g,
                            mo.clone(),
                            &mut s,
                        )
                        .map_err(err)?,
                    None => {
                        ops::apply_gradient_descent(var.output().clone(), lr.clone(), g, &mut s)
                            .map_err(err)?
                    }
                };
                updates.push(op);
            }
        }
        OptimizerConfig::Adam(AdamParams {
            learning_rate,
            beta_1,
            beta_2,
            epsilon,
            ..
        })
        | OptimizerConfig::AdamW(AdamParams {
            learning_rate,
            beta_1,
            beta_2,
            epsilon,
            ..
        }) => {
            let b1p = b.variable("adam/beta1_power", &[], &[beta_1 as f32])?;
            let b2p = b.variable("adam/beta2_power", &[], &[beta_2 as f32])?;
            let (lr, b1, b2, eps) = (
                scalar(&mut b.scope, learning_rate as f32)?,
                scalar(&mut b.scope, beta_1 as f32)?,
                scalar(&mut b.scope, beta_2 as f32)?,
                scalar(&mut b.scope, epsilon as f32)?,
            );
            for (var, g) in grads {
                let shape = dims_of(var);
                let zeros = vec![0.0; shape.iter().product::<u64>() as usize];
                let m = b.variable(&format!("{}/adam_m", var.name()), &shape, &zeros)?;
                let v = b.variable(&format!("{}/adam_v", var.name()), &shape, &zeros)?;
                let mut s = b.scope.with_control_dependencies(&all_grads);
                updates.push(
                    ops::apply_adam(
                        var.output().clone(),
                        m.output().clone(),
                        v.output().clone(),
                        b1p.output().clone(),
                        b2p.output().clone(),
                        lr.clone(),
                        b1.clone(),
                        b2.clone(),
                        eps.clone(),
                        g,
                        &mut s,
                    )
                    .map_err(err)?,
                );
            }
            let mut after = b.scope.with_control_dependencies(&updates);
            let n1 = ops::mul(b1p.output().clone(), b1.clone(), &mut after).map_err(err)?;
            let n2 = ops::mul(b2p.output().clone(), b2.clone(), &mut after).map_err(err)?;
            updates.push(ops::assign(b1p.output().clone(), n1, &mut after).map_err(err)?);
            updates.push(ops::assign(b2p.output().clone(), n2, &mut after).map_err(err)?);
        }
    }
    let mut nop = ops::NoOp::new();
    for u in updates {
        nop = nop.add_control_input(u);
    }
    nop.build(&mut b.scope).map_err(err)
}

/// `g + wd * var` (L2 weight decay folded into the gradient), or `g` when `wd` is 0.
fn decay(scope: &mut Scope, g: Output, var: &Variable, wd: f64) -> Result<Output> {
    if wd == 0.0 {
        return Ok(g);
    }
    let c = scalar(scope, wd as f32)?;
    let d = ops::mul(var.output().clone(), c, scope).map_err(err)?;
    Ok(ops::add(g, d, scope).map_err(err)?.into())
}

fn dims_of(v: &Variable) -> Vec<u64> {
    let s: &Shape = v.shape();
    (0..s.dims().unwrap_or(0))
        .map(|i| s[i].unwrap_or(1) as u64)
        .collect()
}

/// Builds an MLP `sizes[0] -> sizes[1] -> ... -> classes` with ReLU between layers, named
/// `fc1`, `fc2`, ... (Keras-style `fc1/kernel` [in, out] and `fc1/bias`), the `train`
/// section's loss (its reduction) and optimizer; initialises the variables. Returns the model
/// and its endpoints.
pub fn mlp(sizes: &[usize], train: &TrainConfig, seed: u64) -> Result<(TfModel, TfClassifier)> {
    let (Some(&inputs), Some(&classes)) = (sizes.first(), sizes.last()) else {
        return Err(mlp_sizes_error(sizes));
    };
    if sizes.len() < 2 {
        return Err(mlp_sizes_error(sizes));
    }
    let mut b = Builder::default();
    let x = ops::Placeholder::new()
        .dtype(DataType::Float)
        .shape(Shape::from(Some(vec![None, Some(inputs as i64)])))
        .build(&mut b.scope.with_op_name("x"))
        .map_err(err)?;
    let y = ops::Placeholder::new()
        .dtype(DataType::Float)
        .shape(Shape::from(Some(vec![None, Some(classes as i64)])))
        .build(&mut b.scope.with_op_name("y"))
        .map_err(err)?;
    let mut h: Output = x.clone().into();
    let mut vars = Vec::new();
    for (i, pair) in sizes.windows(2).enumerate() {
        let (fan_in, fan_out) = (pair[0], pair[1]);
        let name = format!("fc{}", i + 1);
        let init = glorot(fan_in, fan_out, seed.wrapping_add(i as u64));
        let w = b.variable(
            &format!("{name}/kernel"),
            &[fan_in as u64, fan_out as u64],
            &init,
        )?;
        let bias = b.variable(
            &format!("{name}/bias"),
            &[fan_out as u64],
            &vec![0.0; fan_out],
        )?;
        let z = ops::mat_mul(h, w.output().clone(), &mut b.scope).map_err(err)?;
        let z = ops::bias_add(z, bias.output().clone(), &mut b.scope).map_err(err)?;
        h = if i + 2 < sizes.len() {
            ops::relu(z, &mut b.scope).map_err(err)?.into()
        } else {
            z.into()
        };
        vars.push(w);
        vars.push(bias);
    }
    let logits = h;
    // Cross-entropy from differentiable pieces (the C API registers no gradient for the fused op):
    // -mean_over_batch(sum_over_classes(one_hot * log_softmax(logits))), or the sum over the batch.
    let s = &mut b.scope;
    let log_p: Output = if train.criterion.from_logits() {
        ops::log_softmax(logits.clone(), s).map_err(err)?.into()
    } else {
        let floor = scalar(s, PROBABILITY_FLOOR)?;
        let p = ops::maximum(logits.clone(), floor, s).map_err(err)?;
        ops::log(p, s).map_err(err)?.into()
    };
    let picked = ops::mul(y.clone(), log_p, s).map_err(err)?;
    let class_axis = ops::constant(&[1i32][..], s).map_err(err)?;
    let per_row = ops::sum(picked, class_axis, s).map_err(err)?;
    let batch_axis = ops::constant(&[0i32][..], s).map_err(err)?;
    let reduced: Output = match train.criterion.reduction() {
        Reduction::Mean => ops::mean(per_row, batch_axis, s).map_err(err)?.into(),
        Reduction::Sum => ops::sum(per_row, batch_axis, s).map_err(err)?.into(),
    };
    let loss: Output = ops::neg(reduced, s).map_err(err)?.into();
    let train_op = optimizer_step(&mut b, loss.clone(), &vars, &train.optimizer)?;

    let model = b.finish(&vars)?;
    Ok((
        model,
        TfClassifier {
            x,
            y,
            logits,
            loss,
            train_op,
        },
    ))
}

/// The error of an MLP without both an input and an output size.
fn mlp_sizes_error(sizes: &[usize]) -> PruneError {
    PruneError::Shape {
        weight: "mlp".into(),
        shape: sizes.to_vec(),
        reason: "the layer sizes need at least the input and the output size".into(),
    }
}

impl Builder {
    /// Starts a session on the graph, initialises every variable, and exposes `vars` as the
    /// model's weights.
    pub fn finish(self, vars: &[Variable]) -> Result<TfModel> {
        let session = Session::new(&deterministic_options()?, &self.scope.graph()).map_err(err)?;
        // TensorFlow refuses a run with nothing to run: a graph without variables skips it.
        if !self.inits.is_empty() {
            let mut init = SessionRunArgs::new();
            for op in &self.inits {
                init.add_target(op);
            }
            session.run(&mut init).map_err(err)?;
        }
        let handles: Vec<(String, VarHandle, Vec<u64>)> = vars
            .iter()
            .map(|v| {
                (
                    v.name().to_string(),
                    VarHandle::Ref(v.output().clone()),
                    dims_of(v),
                )
            })
            .collect();
        TfModel::new(GraphHolder::Scope(self.scope), session, handles)
    }
}

/// A batch of rows as feeds: features and one-hot labels; refused when a row is past the end
/// of `data` ([`Dataset::try_subset`]) or its label is not below `data.n_classes`.
fn batch(data: &Dataset, rows: &[usize]) -> Result<(Tensor<f32>, Tensor<f32>)> {
    let sub = data.try_subset(rows)?;
    let x = Tensor::new(&[rows.len() as u64, data.n_features as u64])
        .with_values(&sub.features)
        .map_err(err)?;
    let mut one_hot = vec![0f32; rows.len() * data.n_classes];
    for ((r, &l), &row) in sub.labels.iter().enumerate().zip(rows) {
        if l >= data.n_classes {
            return Err(PruneError::Shape {
                weight: "labels".into(),
                shape: vec![data.len()],
                reason: format!(
                    "row {row} has label {l}, and the dataset has {} classes (n_classes)",
                    data.n_classes
                ),
            });
        }
        one_hot[r * data.n_classes + l] = 1.0;
    }
    let y = Tensor::new(&[rows.len() as u64, data.n_classes as u64])
        .with_values(&one_hot)
        .map_err(err)?;
    Ok((x, y))
}

/// One training step: returns the loss.
fn step(model: &TfModel, net: &TfClassifier, x: &Tensor<f32>, y: &Tensor<f32>) -> Result<f32> {
    let mut args = SessionRunArgs::new();
    args.add_feed(&net.x, 0, x);
    args.add_feed(&net.y, 0, y);
    args.add_target(&net.train_op);
    let loss = args.request_fetch(&net.loss.operation, net.loss.index);
    model.session().run(&mut args).map_err(err)?;
    Ok(args.fetch::<f32>(loss).map_err(err)?[0])
}

/// The TensorFlow side of the built-in loop: the whole step is one session run, so the loss is
/// known only after the update.
struct TfTrainer<'a> {
    net: &'a TfClassifier,
    batch: Option<(Tensor<f32>, Tensor<f32>)>,
}

impl Trainer<TfModel> for TfTrainer<'_> {
    fn backward(
        &mut self,
        _model: &mut TfModel,
        data: &Dataset,
        rows: &[usize],
    ) -> Result<Option<f32>> {
        self.batch = Some(batch(data, rows)?);
        Ok(None)
    }

    fn update(&mut self, model: &mut TfModel) -> Result<Option<f32>> {
        let (x, y) = self.batch.take().ok_or_else(|| PruneError::Backend {
            backend: "tf".into(),
            message: "an update without a batch".into(),
        })?;
        step(model, self.net, &x, &y).map(Some)
    }

    fn predict(&mut self, model: &TfModel, data: &Dataset, rows: &[usize]) -> Result<Vec<usize>> {
        predict(model, self.net, data, rows)
    }
}

/// Trains `net` on `data` as the `train` section says, with the pruning hooks around every epoch
/// and step. The optimizer is the one `net.train_op` was built with.
pub fn fit(
    pruning: &mut TfPruning,
    model: &mut TfModel,
    net: &TfClassifier,
    data: &Dataset,
) -> Result<Vec<EpochLog>> {
    let cfg = TrainConfig::from_config(pruning.config(), "<config>")?;
    prune_train::fit(
        pruning,
        model,
        data,
        &cfg,
        &mut TfTrainer { net, batch: None },
    )
}

/// Trains for `epochs` with no pruning (e.g. the dense baseline).
pub fn train_dense(
    model: &mut TfModel,
    net: &TfClassifier,
    data: &Dataset,
    cfg: &TrainConfig,
    epochs: usize,
) -> Result<Vec<EpochLog>> {
    prune_train::train_dense(
        model,
        data,
        cfg,
        epochs,
        &mut TfTrainer { net, batch: None },
    )
}

/// Fraction of rows whose arg-max logit is the label.
pub fn accuracy(model: &TfModel, net: &TfClassifier, data: &Dataset) -> Result<f64> {
    prune_train::accuracy(data, |rows| predict(model, net, data, rows))
}

/// The arg-max class of each of `rows`.
fn predict(
    model: &TfModel,
    net: &TfClassifier,
    data: &Dataset,
    rows: &[usize],
) -> Result<Vec<usize>> {
    let (x, _) = batch(data, rows)?;
    let mut args = SessionRunArgs::new();
    args.add_feed(&net.x, 0, &x);
    let t = args.request_fetch(&net.logits.operation, net.logits.index);
    model.session().run(&mut args).map_err(err)?;
    let logits: Tensor<f32> = args.fetch(t).map_err(err)?;
    let &[n, classes] = logits.dims() else {
        return Err(PruneError::Shape {
            weight: "logits".into(),
            shape: logits.dims().iter().map(|&d| d as usize).collect(),
            reason: format!(
                "the graph gave rank-{} logits for {} rows; predictions need [rows, classes]",
                logits.dims().len(),
                rows.len()
            ),
        });
    };
    if n as usize != rows.len() {
        return Err(PruneError::Shape {
            weight: "logits".into(),
            shape: vec![n as usize, classes as usize],
            reason: format!("{n} rows of logits for a batch of {} rows", rows.len()),
        });
    }
    let classes = (classes as usize).max(1);
    Ok(logits
        .chunks(classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i)
        })
        .collect())
}
