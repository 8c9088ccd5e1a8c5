//! [`Model`] over a TensorFlow graph and session: each prunable variable gets a read output and
//! small assign ops (value, and an in-graph mask multiply) added once, so a write or a mask
//! re-application is one session run, in place on the same variable.

use crate::backend::{dims, tensor, tf_error, Tf};
use crate::graph_ops::{assign, mul, placeholder, read_variable, VarHandle};
use prune_core::suggest::closest;
use prune_core::{Layout, Model, PruneError, Result, WeightId, WeightInfo};
use tensorflow::{Graph, Operation, Output, Scope, Session, SessionRunArgs, Tensor};

/// The canonical name of a TensorFlow variable: `dense1/kernel` -> `dense1.weight`, other `/`
/// become `.`; a trailing `:0` is dropped.
pub fn canonical_tf_name(name: &str) -> String {
    let name = name.strip_suffix(":0").unwrap_or(name);
    let dotted = name.replace('/', ".");
    match dotted.strip_suffix(".kernel") {
        Some(stem) => format!("{stem}.weight"),
        None => dotted,
    }
}

/// The layout of a TensorFlow weight of the given rank: Dense kernels are [in, out], conv kernels
/// [kh, kw, in, out].
pub fn tf_layout(rank: usize) -> Layout {
    match rank {
        2 => Layout::Transposed,
        4 => Layout::Hwio,
        _ => Layout::Canonical,
    }
}

/// Where the graph lives: a scope it was built in from Rust, or a graph loaded from disk.
pub enum GraphHolder {
    /// Built with the tensorflow crate's `Scope`.
    Scope(Scope),
    /// Loaded (e.g. from a SavedModel).
    Graph(Graph),
}

impl GraphHolder {
    fn with_mut<R>(&mut self, f: impl FnOnce(&mut Graph) -> R) -> R {
        match self {
            GraphHolder::Scope(s) => f(&mut s.graph_mut()),
            GraphHolder::Graph(g) => f(g),
        }
    }
}

/// One prunable variable and the ops that read and write it.
pub(crate) struct TfWeight {
    pub info: WeightInfo,
    pub graph_name: String,
    pub stored_shape: Vec<u64>,
    pub read: Output,
    pub value_feed: Operation,
    pub assign_value: Operation,
    pub mask_feed: Operation,
    pub assign_masked: Operation,
}

/// A TensorFlow model: its graph, a session on it, and its f32 variables.
pub struct TfModel {
    pub(crate) graph: GraphHolder,
    pub(crate) session: Session,
    pub(crate) weights: Vec<TfWeight>,
}

impl TfModel {
    /// Wraps a graph and a session on it; `variables` are (graph name, handle, stored shape) of
    /// every variable to expose. Adds read and assign ops for each, named under `prune/`.
    pub fn new(
        mut graph: GraphHolder,
        session: Session,
        variables: Vec<(String, VarHandle, Vec<u64>)>,
    ) -> Result<Self> {
        let mut weights = Vec::with_capacity(variables.len());
        for (i, (graph_name, handle, stored_shape)) in variables.into_iter().enumerate() {
            let w = graph.with_mut(|g| add_weight_ops(g, i, graph_name, handle, stored_shape))?;
            weights.push(w);
        }
        Ok(TfModel {
            graph,
            session,
            weights,
        })
    }

    /// Runs `f` with the graph.
    pub fn with_graph<R>(&self, f: impl FnOnce(&Graph) -> R) -> R {
        match &self.graph {
            GraphHolder::Scope(s) => f(&s.graph()),
            GraphHolder::Graph(g) => f(g),
        }
    }

    /// Runs `f` with the graph, mutably (to add ops).
    pub fn graph_mut<R>(&mut self, f: impl FnOnce(&mut Graph) -> R) -> R {
        self.graph.with_mut(f)
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The graph's name of a canonical weight name.
    pub fn graph_name(&self, name: &str) -> Result<&str> {
        Ok(&self.find(name)?.graph_name)
    }

    /// Runs the session with f32 feeds; returns the fetches in order.
    pub fn run(
        &self,
        feeds: &[(&Operation, &Tensor<f32>)],
        fetches: &[Output],
        targets: &[&Operation],
    ) -> Result<Vec<Tensor<f32>>> {
        let mut args = SessionRunArgs::new();
        for (op, t) in feeds {
            args.add_feed(op, 0, *t);
        }
        let tokens: Vec<_> = fetches
            .iter()
            .map(|o| args.request_fetch(&o.operation, o.index))
            .collect();
        for t in targets {
            args.add_target(t);
        }
        self.session.run(&mut args).map_err(tf_error)?;
        tokens
            .into_iter()
            .map(|t| args.fetch::<f32>(t).map_err(tf_error))
            .collect()
    }

    fn find(&self, name: &str) -> Result<&TfWeight> {
        self.weights
            .iter()
            .find(|w| w.info.name == name)
            .ok_or_else(|| {
                let names: Vec<String> = self.weights.iter().map(|w| w.info.name.clone()).collect();
                PruneError::UnknownWeight {
                    weight: name.to_string(),
                    candidates: closest(name, &names, 3),
                }
            })
    }

    fn at(&self, id: WeightId) -> Result<&TfWeight> {
        self.weights
            .get(id.0)
            .ok_or_else(|| PruneError::UnknownWeight {
                weight: format!("#{}", id.0),
                candidates: vec![format!("the model has {} weights", self.weights.len())],
            })
    }

    fn check_shape(w: &TfWeight, t: &Tensor<f32>, what: &str) -> Result<()> {
        if t.dims() != w.stored_shape.as_slice() {
            return Err(PruneError::Shape {
                weight: w.info.name.clone(),
                shape: dims(t),
                reason: format!("{what} does not match stored shape {:?}", w.stored_shape),
            });
        }
        Ok(())
    }
}

fn add_weight_ops(
    g: &mut Graph,
    i: usize,
    graph_name: String,
    handle: VarHandle,
    stored_shape: Vec<u64>,
) -> Result<TfWeight> {
    let p = format!("prune/{i}");
    let read: Output = match &handle {
        VarHandle::Ref(o) => o.clone(),
        VarHandle::Resource(h) => read_variable(g, &format!("{p}/read"), h.clone())?.into(),
    };
    let value_feed = placeholder(g, &format!("{p}/value"), &stored_shape)?;
    let assign_value = assign(
        g,
        &format!("{p}/assign"),
        &handle,
        value_feed.clone().into(),
    )?;
    let mask_feed = placeholder(g, &format!("{p}/mask"), &stored_shape)?;
    let masked = mul(
        g,
        &format!("{p}/masked"),
        read.clone(),
        mask_feed.clone().into(),
    )?;
    let assign_masked = assign(g, &format!("{p}/assign_masked"), &handle, masked.into())?;
    let stored: Vec<usize> = stored_shape.iter().map(|&d| d as usize).collect();
    let layout = tf_layout(stored.len());
    let info = WeightInfo {
        name: canonical_tf_name(&graph_name),
        shape: layout.canonical_shape(&stored),
        layout,
    };
    Ok(TfWeight {
        info,
        graph_name,
        stored_shape,
        read,
        value_feed,
        assign_value,
        mask_feed,
        assign_masked,
    })
}

impl Model for TfModel {
    type Backend = Tf;

    fn backend(&self) -> &Tf {
        &Tf
    }

    fn weights(&self) -> Result<Vec<WeightInfo>> {
        Ok(self.weights.iter().map(|w| w.info.clone()).collect())
    }

    fn weight_at(&self, id: WeightId) -> Result<Tensor<f32>> {
        let w = self.at(id)?;
        Ok(self.run(&[], std::slice::from_ref(&w.read), &[])?.remove(0))
    }

    fn set_weights(&mut self, updates: Vec<(WeightId, Tensor<f32>)>) -> Result<()> {
        let mut feeds = Vec::with_capacity(updates.len());
        let mut targets = Vec::with_capacity(updates.len());
        for (id, t) in &updates {
            let w = self.at(*id)?;
            Self::check_shape(w, t, "write")?;
            feeds.push((&w.value_feed, t));
            targets.push(&w.assign_value);
        }
        self.run(&feeds, &[], &targets).map(|_| ())
    }

    fn apply_masks(&mut self, masks: &[(WeightId, &Tensor<f32>)]) -> Result<()> {
        let mut feeds = Vec::with_capacity(masks.len());
        let mut targets = Vec::with_capacity(masks.len());
        for (id, mask) in masks {
            let w = self.at(*id)?;
            Self::check_shape(w, mask, "mask")?;
            feeds.push((&w.mask_feed, *mask));
            targets.push(&w.assign_masked);
        }
        self.run(&feeds, &[], &targets).map(|_| ())
    }
}

/// A host tensor holding canonical values in the TensorFlow layout of their rank.
pub fn stored_tensor(canonical_shape: &[usize], canonical: &[f32]) -> Result<Tensor<f32>> {
    let layout = tf_layout(canonical_shape.len());
    let stored =
        prune_core::model::layout::try_to_stored(canonical.to_vec(), layout, canonical_shape)
            .map_err(|reason| PruneError::Shape {
                weight: "stored_tensor".into(),
                shape: canonical_shape.to_vec(),
                reason,
            })?;
    tensor(&layout.stored_shape(canonical_shape), &stored)
}
