//! Keras 3 SavedModels (`model.export()`): load, expose the variables the serving signature
//! reads under canonical names, prune them, and save a new SavedModel that TensorFlow loads with
//! the pruned weights.
//!
//! A Keras 3 export holds each weight twice (checkpoint keys `variables/N` and
//! `_all_variables/N`, as two resource variables). Both are inputs of the save function; the
//! copy the serving signature does not read is kept equal to the one it does (matched by shape
//! and value at load time), so a reloaded model never sees unpruned values.

use crate::backend::tf_error;
use crate::graph_ops::{assign_after, read_variable_after, VarHandle};
use crate::model::{GraphHolder, TfModel};
use crate::proto::saver_def;
use prune_core::{PruneError, Result};
use std::path::{Path, PathBuf};
use tensorflow::{
    DataType, Graph, Operation, Output, SavedModelBundle, SessionOptions, SessionRunArgs, Tensor,
};

/// A loaded SavedModel: the prunable model and what saving it needs.
pub struct SavedModel {
    model: TfModel,
    source: PathBuf,
    filename_feed: Operation,
    save_fetch: Output,
    /// Per weight index: its duplicate copies (resource handle, op copying the weight into it).
    mirrors: Vec<Vec<(Output, Operation)>>,
    signature_inputs: Vec<(String, String)>,
    signature_outputs: Vec<(String, String)>,
    reads_added: usize,
}

fn io_error(path: &Path, source: std::io::Error) -> PruneError {
    PruneError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn saved_model_error(dir: &Path, reason: impl std::fmt::Display) -> PruneError {
    PruneError::Backend {
        backend: "tf".into(),
        message: format!("SavedModel {}: {reason}", dir.display()),
    }
}

fn op_of(graph: &Graph, tensor_name: &str) -> Result<(Operation, usize)> {
    let (op, index) = tensor_name.split_once(':').unwrap_or((tensor_name, "0"));
    let op = graph.operation_by_name_required(op).map_err(tf_error)?;
    Ok((op, index.parse().unwrap_or(0)))
}

/// Resource variables among an op's inputs: (op, stored shape, dtype).
fn variable_inputs(op: &Operation) -> Vec<(Operation, Vec<u64>, DataType)> {
    (0..op.num_inputs())
        .map(|i| op.input(i).0)
        .filter(|o| o.op_type().map(|t| t == "VarHandleOp").unwrap_or(false))
        .map(|o| {
            let shape = o
                .get_attr_shape("shape")
                .ok()
                .and_then(|s| {
                    s.dims()
                        .map(|n| (0..n).map(|i| s[i].unwrap_or(0).max(0) as u64).collect())
                })
                .unwrap_or_default();
            let dtype = o.get_attr_type("dtype").unwrap_or(DataType::Float);
            (o, shape, dtype)
        })
        .collect()
}

/// Canonical-friendly graph names: the Keras model's own top scope (`sequential/`) and the
/// `_1` that Keras appends to the serving copies are dropped when that leaves names unique.
fn display_names(names: &[String]) -> Vec<String> {
    let strip_suffix = |n: &str| -> String {
        match n.rsplit_once('_') {
            Some((stem, digits))
                if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) =>
            {
                stem.to_string()
            }
            _ => n.to_string(),
        }
    };
    let mut out: Vec<String> = names.iter().map(|n| strip_suffix(n)).collect();
    let unique = |v: &[String]| {
        let mut s = v.to_vec();
        s.sort();
        s.dedup();
        s.len() == v.len()
    };
    if !unique(&out) {
        out = names.to_vec();
    }
    let first: Vec<&str> = out
        .iter()
        .map(|n| n.split('/').next().unwrap_or(""))
        .collect();
    let all_deep = out.iter().all(|n| n.matches('/').count() >= 2);
    if all_deep && first.windows(2).all(|w| w[0] == w[1]) {
        let stripped: Vec<String> = out
            .iter()
            .map(|n| {
                n.split_once('/')
                    .map(|(_, r)| r.to_string())
                    .unwrap_or_default()
            })
            .collect();
        if unique(&stripped) {
            out = stripped;
        }
    }
    out
}

impl SavedModel {
    /// Loads `dir` (tag `serve`) and exposes the f32 variables read by `signature`
    /// (`serving_default` for a Keras export).
    pub fn load(dir: impl AsRef<Path>, signature: &str) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.join("saved_model.pb").exists() {
            return Err(saved_model_error(dir, "no saved_model.pb in this folder"));
        }
        let mut graph = Graph::new();
        let bundle = SavedModelBundle::load(&SessionOptions::new(), ["serve"], &mut graph, dir)
            .map_err(|e| saved_model_error(dir, format!("loading with tag `serve`: {e}")))?;
        let meta = bundle.meta_graph_def();
        let sig = meta.get_signature(signature).map_err(|_| {
            let mut names: Vec<&String> = meta.signatures().keys().collect();
            names.sort();
            saved_model_error(
                dir,
                format!("no signature `{signature}`; it has: {names:?}"),
            )
        })?;
        let signature_inputs: Vec<(String, String)> = sig
            .inputs()
            .iter()
            .map(|(k, v)| (k.clone(), format!("{}:{}", v.name().name, v.name().index)))
            .collect();
        let signature_outputs: Vec<(String, String)> = sig
            .outputs()
            .iter()
            .map(|(k, v)| (k.clone(), format!("{}:{}", v.name().name, v.name().index)))
            .collect();
        let (serving_op, _) = op_of(
            &graph,
            &signature_outputs
                .first()
                .ok_or_else(|| saved_model_error(dir, "signature has no outputs"))?
                .1,
        )?;
        #[allow(deprecated)]
        let raw = bundle.meta_graph_def.clone();
        let (filename_name, save_name) = saver_def(&raw)
            .ok_or_else(|| saved_model_error(dir, "no saver_def: it cannot be saved back"))?;
        let (filename_feed, _) = op_of(&graph, &filename_name)?;
        let (save_op, save_index) = op_of(&graph, &save_name)?;
        let session = bundle.session;

        let serving: Vec<_> = variable_inputs(&serving_op)
            .into_iter()
            .filter(|(_, _, d)| *d == DataType::Float)
            .collect();
        if serving.is_empty() {
            return Err(saved_model_error(
                dir,
                format!("the `{signature}` signature reads no f32 variable"),
            ));
        }
        let names: Vec<String> = serving
            .iter()
            .map(|(o, _, _)| o.name().unwrap_or_default())
            .collect();
        let shown = display_names(&names);
        let handles = serving
            .iter()
            .zip(&shown)
            .map(|((op, shape, _), name)| {
                (
                    name.clone(),
                    VarHandle::Resource(op.clone().into()),
                    shape.clone(),
                )
            })
            .collect();
        let mut model = TfModel::new(GraphHolder::Graph(graph), session, handles)?;
        let serving_names: Vec<String> = names.clone();
        let others: Vec<_> = variable_inputs(&save_op)
            .into_iter()
            .filter(|(o, _, d)| {
                *d == DataType::Float && !serving_names.contains(&o.name().unwrap_or_default())
            })
            .collect();
        let mirrors = mirror_ops(&mut model, &others)?;
        Ok(SavedModel {
            model,
            source: dir.to_path_buf(),
            filename_feed,
            save_fetch: Output {
                operation: save_op,
                index: save_index as i32,
            },
            mirrors,
            signature_inputs,
            signature_outputs,
            reads_added: 0,
        })
    }

    /// The prunable model. Prune it through a session's hooks, then [`save`](Self::save).
    pub fn model(&mut self) -> &mut TfModel {
        &mut self.model
    }

    /// Runs the signature on one f32 input, returning its first output.
    pub fn predict(&self, input: &Tensor<f32>) -> Result<Tensor<f32>> {
        let (in_op, in_index) = self
            .model
            .with_graph(|g| op_of(g, &self.signature_inputs[0].1))?;
        let (out_op, out_index) = self
            .model
            .with_graph(|g| op_of(g, &self.signature_outputs[0].1))?;
        let mut args = SessionRunArgs::new();
        args.add_feed(&in_op, in_index as i32, input);
        let t = args.request_fetch(&out_op, out_index as i32);
        self.model.session().run(&mut args).map_err(tf_error)?;
        args.fetch(t).map_err(tf_error)
    }

    /// Every stored copy of a weight (the one serving reads first, then its duplicates), read
    /// from the session. After [`save`](Self::save) they are all equal.
    pub fn copies(&mut self, name: &str) -> Result<Vec<Tensor<f32>>> {
        let i = self
            .model
            .weights
            .iter()
            .position(|w| w.info.name == name)
            .ok_or_else(|| PruneError::UnknownWeight {
                weight: name.to_string(),
                candidates: self
                    .model
                    .weights
                    .iter()
                    .map(|w| w.info.name.clone())
                    .collect(),
            })?;
        let mut outs = vec![self.model.weights[i].read.clone()];
        for (k, (handle, _)) in self.mirrors[i].clone().into_iter().enumerate() {
            let n = format!(
                "prune/copies/{i}/{k}/{}",
                self.model.weights.len() + outs.len()
            );
            let unique = format!("{n}-{}", self.reads_added);
            self.reads_added += 1;
            outs.push(
                self.model
                    .graph_mut(|g| read_variable_after(g, &unique, handle, &[]))?
                    .into(),
            );
        }
        self.model.run(&[], &outs, &[])
    }

    /// Copies every weight's value into its duplicate copies (see the module doc).
    fn sync_mirrors(&self) -> Result<()> {
        let targets: Vec<&Operation> = self.mirrors.iter().flatten().map(|(_, op)| op).collect();
        if targets.is_empty() {
            return Ok(());
        }
        self.model.run(&[], &[], &targets).map(|_| ())
    }

    /// Writes the model as a new SavedModel at `dest`, which must not exist. Everything is
    /// written to a sibling folder first and moved into place at the end, so `dest` is either
    /// absent or complete.
    pub fn save(&self, dest: impl AsRef<Path>) -> Result<()> {
        let dest = dest.as_ref();
        if dest.exists() {
            return Err(saved_model_error(
                dest,
                "already exists; choose a new folder",
            ));
        }
        self.sync_mirrors()?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "saved_model".into());
        let tmp = dest.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        let result = self
            .write_into(&tmp)
            .and_then(|()| std::fs::rename(&tmp, dest).map_err(|e| io_error(dest, e)));
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    fn write_into(&self, dir: &Path) -> Result<()> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("variables")).map_err(|e| io_error(dir, e))?;
        for entry in std::fs::read_dir(&self.source).map_err(|e| io_error(&self.source, e))? {
            let entry = entry.map_err(|e| io_error(&self.source, e))?;
            let from = entry.path();
            if entry.file_name() == "variables" {
                continue;
            }
            copy_tree(&from, &dir.join(entry.file_name()))?;
        }
        let prefix = dir.join("variables").join("variables");
        let prefix_t = Tensor::<String>::from(prefix.to_string_lossy().to_string());
        let mut args = SessionRunArgs::new();
        args.add_feed(&self.filename_feed, 0, &prefix_t);
        let token = args.request_fetch(&self.save_fetch.operation, self.save_fetch.index);
        self.model
            .session()
            .run(&mut args)
            .map_err(|e| saved_model_error(dir, format!("running the save function: {e}")))?;
        let _: Tensor<String> = args.fetch(token).map_err(tf_error)?;
        Ok(())
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to).map_err(|e| io_error(to, e))?;
        for entry in std::fs::read_dir(from).map_err(|e| io_error(from, e))? {
            let entry = entry.map_err(|e| io_error(from, e))?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(from, to)
            .map(|_| ())
            .map_err(|e| io_error(to, e))
    }
}

/// For each duplicate variable, the op that copies its serving twin into it. Twins are matched
/// by shape and identical values at load time.
fn mirror_ops(
    model: &mut TfModel,
    others: &[(Operation, Vec<u64>, DataType)],
) -> Result<Vec<Vec<(Output, Operation)>>> {
    let mut mirrors = vec![Vec::new(); model.weights.len()];
    let mut used = vec![false; model.weights.len()];
    for (k, (op, shape, _)) in others.iter().enumerate() {
        let handle: Output = op.clone().into();
        let probe = model.graph_mut(|g| {
            read_variable_after(g, &format!("prune/mirror/{k}/probe"), handle.clone(), &[])
        })?;
        let value = model.run(&[], &[probe.into()], &[])?.remove(0);
        let twin = (0..model.weights.len()).find(|&i| {
            !used[i] && model.weights[i].stored_shape == *shape && {
                let w = model.run(&[], &[model.weights[i].read.clone()], &[]).ok();
                w.is_some_and(|w| w[0].iter().eq(value.iter()))
            }
        });
        let Some(i) = twin else { continue };
        used[i] = true;
        let source = model.weights[i].read.clone();
        let op = model.graph_mut(|g| {
            let read = read_variable_after(
                g,
                &format!("prune/mirror/{k}/read"),
                resource_of(&source),
                &[],
            )?;
            assign_after(
                g,
                &format!("prune/mirror/{k}/assign"),
                &VarHandle::Resource(handle.clone()),
                read.into(),
                &[],
            )
        })?;
        mirrors[i].push((handle, op));
    }
    Ok(mirrors)
}

/// The resource handle behind a `ReadVariableOp` output.
fn resource_of(read: &Output) -> Output {
    let (op, index) = read.operation.input(0);
    Output {
        operation: op,
        index: index as i32,
    }
}
