//! [`Model`] over a tch [`VarStore`]: weights by their VarStore names, written in place under
//! `no_grad` (the optimizer keeps training the same tensors), gradients through `.grad()`.

use crate::backend::{torch_error, zero_pruned_on_cpu, Torch, TorchMask, TorchTensor};
use prune_core::model::names::canonical_name;
use prune_core::suggest::closest;
use prune_core::{Layout, Model, PruneError, Result, WeightId, WeightInfo};
use std::borrow::Borrow;
use std::collections::HashMap;
use tch::nn::VarStore;
use tch::{Kind, Tensor};

/// A tch model seen through its [`VarStore`]; `V` is a `VarStore`, a `&VarStore`, or any type
/// that borrows as one (e.g. a struct holding the VarStore and the layers built from it).
pub struct TorchModel<V: Borrow<VarStore>> {
    vs: V,
    /// Canonical name -> the variable (a shallow handle sharing its storage), in name order:
    /// the floating-point variables only, so that position `i` is `WeightId(i)`.
    vars: Vec<(String, Tensor)>,
}

/// Orders names so that `layer.10` comes after `layer.9`.
fn natural_key(name: &str) -> Vec<(String, u64)> {
    name.split('.')
        .map(|seg| match seg.parse::<u64>() {
            Ok(n) => (String::new(), n),
            Err(_) => (seg.to_string(), 0),
        })
        .collect()
}

impl<V: Borrow<VarStore>> TorchModel<V> {
    /// Wraps a VarStore (owned or borrowed). Names lose wrapper prefixes such as `module.`.
    pub fn new(vs: V) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs
            .borrow()
            .variables()
            .into_iter()
            // Every floating-point variable is listed, so that naming an f64 or f16 weight gives
            // a dtype error rather than "no match"; integer buffers are not weights.
            .filter(|(_, t)| {
                matches!(
                    t.kind(),
                    Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
                )
            })
            .map(|(n, t)| (canonical_name(&n).to_string(), t))
            .collect();
        vars.sort_by_cached_key(|(n, _)| natural_key(n));
        TorchModel { vs, vars }
    }

    /// The VarStore.
    pub fn var_store(&self) -> &VarStore {
        self.vs.borrow()
    }

    /// What the model was built from (the VarStore, or a struct holding it).
    pub fn inner(&self) -> &V {
        &self.vs
    }

    /// Unwraps what the model was built from.
    pub fn into_inner(self) -> V {
        self.vs
    }

    fn var(&self, name: &str) -> Result<&Tensor> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| {
                let names: Vec<String> = self.vars.iter().map(|(n, _)| n.clone()).collect();
                PruneError::UnknownWeight {
                    weight: name.to_string(),
                    candidates: closest(name, &names, 3),
                }
            })
    }

    /// The variable of weight `id`, checked to be f32.
    fn float_at(&self, id: WeightId) -> Result<&Tensor> {
        let (name, t) = self
            .vars
            .get(id.0)
            .ok_or_else(|| PruneError::UnknownWeight {
                weight: format!("#{}", id.0),
                candidates: vec![format!("the model has {} weights", self.vars.len())],
            })?;
        Self::checked_f32(name, t)
    }

    fn checked_f32<'t>(name: &str, t: &'t Tensor) -> Result<&'t Tensor> {
        match t.kind() {
            Kind::Float => Ok(t),
            other => Err(PruneError::Unsupported {
                op: format!(
                    "weight `{name}` of dtype {other:?} (the torch backend prunes f32 weights)"
                ),
                backend: "torch".into(),
            }),
        }
    }

    fn name_of(&self, id: WeightId) -> &str {
        self.vars.get(id.0).map_or("?", |(n, _)| n.as_str())
    }

    fn check_writes(&self, updates: &[(WeightId, TorchTensor)]) -> Result<Vec<&Tensor>> {
        updates
            .iter()
            .map(|(id, t)| {
                let v = self.float_at(*id)?;
                let name = self.name_of(*id);
                if v.size() != t.0.size() {
                    return Err(PruneError::Shape {
                        weight: name.to_string(),
                        shape: t.0.size().iter().map(|&d| d as usize).collect(),
                        reason: format!("write does not match stored shape {:?}", v.size()),
                    });
                }
                if v.device() != t.0.device() {
                    return Err(torch_error(format!(
                        "`{name}`: value on {:?}, weight on {:?}",
                        t.0.device(),
                        v.device()
                    )));
                }
                Ok(v)
            })
            .collect()
    }
}

impl<V: Borrow<VarStore>> Model for TorchModel<V> {
    type Backend = Torch;

    fn backend(&self) -> &Torch {
        &Torch
    }

    fn weights(&self) -> Result<Vec<WeightInfo>> {
        Ok(self
            .vars
            .iter()
            .map(|(n, t)| WeightInfo {
                name: n.clone(),
                shape: t.size().iter().map(|&d| d as usize).collect(),
                layout: Layout::Canonical,
            })
            .collect())
    }

    fn weight_id(&self, name: &str) -> Result<WeightId> {
        self.var(name)?;
        Ok(WeightId(
            self.vars
                .iter()
                .position(|(n, _)| n == name)
                .expect("found above"),
        ))
    }

    fn weight_at(&self, id: WeightId) -> Result<TorchTensor> {
        let t = self.float_at(id)?.f_detach();
        t.map(TorchTensor)
            .map_err(|e| torch_error(format!("reading `{}`: {e}", self.name_of(id))))
    }

    fn set_weights(&mut self, updates: Vec<(WeightId, TorchTensor)>) -> Result<()> {
        let targets = self.check_writes(&updates)?;
        tch::no_grad(|| {
            for (mut target, (id, value)) in
                targets.into_iter().map(Tensor::shallow_clone).zip(updates)
            {
                target
                    .f_copy_(&value.0)
                    .map_err(|e| torch_error(format!("writing `{}`: {e}", self.name_of(id))))?;
            }
            Ok(())
        })
    }

    fn resize_weights(&mut self, updates: Vec<(WeightId, TorchTensor)>) -> Result<()> {
        let mut targets = Vec::with_capacity(updates.len());
        for (id, t) in &updates {
            let v = self.float_at(*id)?;
            if v.dim() != t.0.dim() || v.device() != t.0.device() || t.0.kind() != v.kind() {
                return Err(PruneError::Shape {
                    weight: self.name_of(*id).to_string(),
                    shape: t.0.size().iter().map(|&d| d as usize).collect(),
                    reason: format!(
                        "a resize keeps the rank, dtype and device of stored shape {:?}",
                        v.size()
                    ),
                });
            }
            targets.push(v.shallow_clone());
        }
        tch::no_grad(|| {
            for (mut target, (id, value)) in targets.into_iter().zip(updates) {
                let name = self.name_of(id);
                let failed = |e: tch::TchError| torch_error(format!("resizing `{name}`: {e}"));
                target
                    .f_set_data(&value.0.f_contiguous().map_err(failed)?)
                    .map_err(failed)?;
                // A gradient of the old shape would not accumulate with the new one.
                let mut grad = target.f_grad().map_err(failed)?;
                if grad.defined() {
                    grad.f_set_data(&target.f_zeros_like().map_err(failed)?)
                        .map_err(failed)?;
                }
            }
            Ok(())
        })
    }

    fn apply_masks(&mut self, masks: &[(WeightId, &TorchMask)]) -> Result<()> {
        let mut targets = Vec::with_capacity(masks.len());
        for (id, mask) in masks {
            let v = self.float_at(*id)?;
            if v.size() != mask.0.size() || v.device() != mask.0.device() {
                return Err(PruneError::Shape {
                    weight: self.name_of(*id).to_string(),
                    shape: v.size().iter().map(|&d| d as usize).collect(),
                    reason: format!(
                        "mask has shape {:?} on {:?}, the weight is on {:?}",
                        mask.0.size(),
                        mask.0.device(),
                        v.device()
                    ),
                });
            }
            targets.push(v.shallow_clone());
        }
        tch::no_grad(|| {
            for (mut t, (id, mask)) in targets.into_iter().zip(masks) {
                if zero_pruned_on_cpu(&t, mask) {
                    continue;
                }
                // In place; the tensor it hands back is `t` itself.
                let _ = t
                    .f_mul_(&mask.0)
                    .map_err(|e| torch_error(format!("masking `{}`: {e}", self.name_of(*id))))?;
            }
            Ok(())
        })
    }

    fn gradient_at(&self, id: WeightId) -> Result<Option<TorchTensor>> {
        let g = self
            .float_at(id)?
            .f_grad()
            .map_err(|e| torch_error(format!("the gradient of `{}`: {e}", self.name_of(id))))?;
        Ok(g.defined().then(|| TorchTensor(g)))
    }

    fn set_gradients(&mut self, updates: Vec<(WeightId, TorchTensor)>) -> Result<()> {
        let targets = self.check_writes(&updates)?;
        let mut grads = Vec::with_capacity(targets.len());
        for ((id, _), v) in updates.iter().zip(&targets) {
            let name = self.name_of(*id);
            let g = v
                .f_grad()
                .map_err(|e| torch_error(format!("the gradient of `{name}`: {e}")))?;
            if !g.defined() {
                return Err(PruneError::HookOrder {
                    hook: "on_before_optimizer_step",
                    reason: format!("before backward: `{name}` has no gradient"),
                });
            }
            grads.push(g);
        }
        tch::no_grad(|| {
            for (mut g, (id, value)) in grads.into_iter().zip(updates) {
                if g.data_ptr() == value.0.data_ptr() && g.size() == value.0.size() {
                    // Written in place already (the CPU group-lasso pass).
                    continue;
                }
                g.f_copy_(&value.0).map_err(|e| {
                    torch_error(format!(
                        "writing the gradient of `{}`: {e}",
                        self.name_of(id)
                    ))
                })?;
            }
            Ok(())
        })
    }
}

/// Names of every variable, canonical, for diagnostics.
pub fn variable_names(vs: &VarStore) -> Vec<String> {
    let map: HashMap<String, Tensor> = vs.variables();
    let mut names: Vec<String> = map.keys().map(|n| canonical_name(n).to_string()).collect();
    names.sort_by_cached_key(|n| natural_key(n));
    names
}
