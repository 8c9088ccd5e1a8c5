//! The session's structured-pruning side: binding structured pruners, input gradients, and the
//! shrink at a pruner's end epoch.

use super::Pruning;
use crate::algo::coupling::{coupling_of, expand};
use crate::algo::structured::{is_structured, LayerOutcome, StructuredPruner};
use crate::error::{PruneError, Result};
use crate::model::{Model, TensorBackend};

impl<B: TensorBackend> Pruning<B> {
    /// Binds the structured pruners; checks that no two of them name the same weight.
    pub(super) fn bind_structured<M: Model<Backend = B>>(
        &self,
        model: &M,
    ) -> Result<Vec<StructuredPruner>> {
        let weights = model.weights()?;
        let coupling = if self.pruners.iter().any(|p| p.parameters.coupled_importance) {
            coupling_of(model, &weights, &self.config.weight_compression.coupling)?
        } else {
            Default::default()
        };
        let mut out: Vec<StructuredPruner> = Vec::new();
        for p in self.pruners.iter().filter(|p| is_structured(p)) {
            let bound = StructuredPruner::bind(p.clone(), &weights, &coupling)?;
            for earlier in &out {
                if let Some(w) = bound
                    .weight_names()
                    .find(|w| earlier.weight_names().any(|e| e == *w))
                {
                    return Err(PruneError::DuplicateWeight {
                        weight: w.to_string(),
                        first: earlier.spec.index,
                        second: p.index,
                    });
                }
            }
            out.push(bound);
        }
        Ok(out)
    }

    /// Hands over the gradient of a model input that structured pruners read for importance,
    /// such as `head_mask` `[layers, heads]`: call it after each backward pass, before
    /// `on_before_optimizer_step`. `shape` and `grad` are row-major. Outside a pruner's epochs
    /// the gradient is ignored.
    pub fn record_input_gradient(
        &mut self,
        name: &str,
        shape: &[usize],
        grad: &[f32],
    ) -> Result<()> {
        let epoch = self.require_epoch("record_input_gradient")?;
        if !self.structured.iter().any(|p| p.reads_input(name)) {
            let known: Vec<&str> = self
                .pruners
                .iter()
                .filter(|p| is_structured(p))
                .flat_map(|p| p.parameters.importance_inputs.iter().map(String::as_str))
                .collect();
            return Err(PruneError::Structured {
                pruner: self.structured.first().map_or(0, |p| p.spec.index),
                reason: format!(
                    "no structured pruner reads input `{name}` (importance_inputs: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            });
        }
        for p in self.structured.iter_mut().filter(|p| p.reads_input(name)) {
            if epoch >= p.spec.start_epoch && epoch <= p.spec.end_epoch {
                p.record_input(name, shape, grad)?;
            }
        }
        Ok(())
    }

    /// Shrinks the model for every structured pruner `due` says, all or none.
    pub(super) fn shrink_structured<M: Model<Backend = B>>(
        &mut self,
        model: &mut M,
        due: impl Fn(&StructuredPruner) -> bool,
    ) -> Result<()> {
        for p in self.structured.iter_mut().filter(|p| !p.done() && due(p)) {
            p.weigh(model)?;
        }
        let mut ops = Vec::new();
        let mut decided = Vec::new();
        for (pi, p) in self.structured.iter().enumerate() {
            if p.done() || !due(p) {
                continue;
            }
            for (layer, kept, op) in p.plan()? {
                ops.push((p.spec.index, op));
                decided.push((pi, layer, kept));
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        let weights = model.weights()?;
        let declared = &self.config.weight_compression.coupling;
        let expanded = expand(&ops, &coupling_of(model, &weights, declared)?, &weights)?;
        for b in self.bound.iter().flatten() {
            for w in b.weights.iter().filter(|w| w.mask.is_some()) {
                if let Some(op) = expanded.iter().find(|op| op.weight == w.info.name) {
                    return Err(PruneError::Structured {
                        pruner: ops[0].0,
                        reason: format!(
                            "`{}` would be shrunk but pruner {} holds a mask on it",
                            op.weight, b.spec.index
                        ),
                    });
                }
            }
        }
        // Pruners still to decide take the new shapes; checked before the model changes.
        let mut after = weights;
        for op in &expanded {
            if let Some(w) = after.iter_mut().find(|w| w.name == op.weight) {
                w.shape[op.axis] = op.keep.len();
            }
        }
        let mut refreshed = self.structured.clone();
        for (pi, layer, kept) in decided {
            refreshed[pi].mark_kept(layer, kept);
        }
        for p in refreshed.iter_mut().filter(|p| !p.done()) {
            p.refresh(&after)?;
        }
        model.shrink(&expanded)?;
        self.shrinks += 1;
        self.shrunk.extend(expanded);
        self.structured = refreshed;
        Ok(())
    }

    /// Whether a structured pruner reads the gradient of input `name` (e.g. `head_mask`), so
    /// that [`record_input_gradient`](Self::record_input_gradient) wants it.
    pub fn reads_input(&self, name: &str) -> bool {
        self.pruners
            .iter()
            .filter(|p| is_structured(p))
            .any(|p| p.parameters.importance_inputs.iter().any(|i| i == name))
    }

    /// Per structured pruner and layer: importance and, once shrunk, the kept groups.
    pub fn structured_outcome(&self) -> Vec<LayerOutcome> {
        self.structured.iter().flat_map(|p| p.outcome()).collect()
    }
}
