//! [`Model`] over a burn [`Module`]: weights found by parameter path, written back in place
//! (same [`ParamId`], so optimizer state stays attached), gradients through [`GradientsParams`].

use crate::backend::{Burn, BurnMask, BurnTensor};
use crate::params::{self, Found, LayoutRules};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use prune_core::model::{shrink_weights, ShrinkOp};
use prune_core::suggest::closest;
use prune_core::{Model, PruneError, Result, WeightId, WeightInfo};
use std::cell::RefCell;

/// A burn module seen as a prunable [`Model`], holding the gradients of the current step.
///
/// ```text
/// let mut model = BurnModel::new(mlp);
/// pruning.on_step_begin(&mut model)?;
/// let loss = loss_of(model.module());
/// model.set_grads(GradientsParams::from_grads(loss.backward(), model.module()));
/// pruning.on_before_optimizer_step(&mut model)?;
/// model.optimizer_step(&mut optim, lr)?;
/// pruning.on_step_end(&mut model)?;
/// ```
pub struct BurnModel<M: Module> {
    /// Always `Some` between calls; taken only while a step or a write consumes the module, so
    /// that its tensors are uniquely owned and burn can update them in place.
    module: Option<M>,
    grads: Option<GradientsParams>,
    /// Every float parameter found by one walk: name, layout, `ParamId` and stored shape, in
    /// [`WeightId`] order. Rebuilt after a resize and after the module was handed out mutably.
    params: RefCell<Option<Vec<Found>>>,
    layouts: LayoutRules,
}

const PRESENT: &str = "the module is present between calls";

impl<M: Module> BurnModel<M> {
    /// Wraps a module. Batch norms' running statistics are settled first (burn holds the
    /// last training step's update aside until an evaluation read), so that the weights read
    /// through the model, e.g. for saving, are the current ones.
    pub fn new(module: M) -> Self {
        let _ = module.valid();
        BurnModel {
            module: Some(module),
            grads: None,
            params: RefCell::new(None),
            layouts: LayoutRules::default(),
        }
    }

    /// Declares how weights of layers of the user's own are stored (see [`LayoutRules`]);
    /// burn's `Linear` (`[in, out]`) and convolutions need no declaration.
    ///
    /// ```text
    /// let model = BurnModel::new(net).with_layouts(LayoutRules::default().layer("Dense", Layout::Transposed));
    /// ```
    pub fn with_layouts(mut self, rules: LayoutRules) -> Self {
        self.layouts = rules;
        *self.params.get_mut() = None;
        self
    }

    /// The module.
    pub fn module(&self) -> &M {
        self.module.as_ref().expect(PRESENT)
    }

    /// The module, mutably. The parameter handles are found again on the next access, since
    /// the caller may replace parameters.
    pub fn module_mut(&mut self) -> &mut M {
        *self.params.get_mut() = None;
        self.module.as_mut().expect(PRESENT)
    }

    /// Unwraps the module.
    pub fn into_inner(self) -> M {
        self.module.expect(PRESENT)
    }

    /// Replaces the module by `f(module)` without cloning it.
    fn update(&mut self, f: impl FnOnce(M) -> M) {
        let m = self.module.take().expect(PRESENT);
        self.module = Some(f(m));
    }

    /// Gives the gradients of this step (before on_before_optimizer_step).
    pub fn set_grads(&mut self, grads: GradientsParams) {
        self.grads = Some(grads);
    }

    /// Takes the gradients back out.
    pub fn take_grads(&mut self) -> Option<GradientsParams> {
        self.grads.take()
    }

    /// Runs one optimizer step with the gradients given by [`set_grads`](Self::set_grads).
    pub fn optimizer_step(
        &mut self,
        optim: &mut burn::optim::ModuleOptimizer,
        lr: f64,
    ) -> Result<()> {
        let grads = self.grads.take().ok_or_else(|| PruneError::HookOrder {
            hook: "optimizer_step",
            reason: "without gradients; call set_grads after backward".into(),
        })?;
        self.update(|m| optim.step(lr, m, grads));
        Ok(())
    }
}

/// Reads one parameter's value by id (no path is built).
struct Read {
    id: ParamId,
    value: Option<BurnTensor>,
}

impl ModuleVisitor for Read {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.value.is_none() && param.id == self.id {
            let t = param.val().inner();
            let shape = t.dims().to_vec();
            let n = shape.iter().product::<usize>();
            self.value = Some(BurnTensor {
                flat: t.reshape([n]),
                shape,
            });
        }
    }
}

/// What a [`Write`] puts in place of a parameter's value.
#[allow(clippy::large_enum_variant)]
enum NewValue<'v> {
    /// Replace by this (flattened) value.
    Value(Tensor<1>),
    /// Zero what this flattened mask prunes.
    Mask(&'v BurnMask),
    /// Replace by this (flattened) value of a new stored shape, as a new parameter.
    Resized(Tensor<1>, Vec<usize>),
}

/// Writes new values into parameters by id, keeping ids and gradient settings. It builds no
/// path and allocates nothing per parameter.
struct Write<'v> {
    updates: Vec<(ParamId, NewValue<'v>)>,
}

impl ModuleMapper for Write<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(i) = self.updates.iter().position(|(id, _)| *id == param.id) else {
            return param;
        };
        let (_, update) = self.updates.swap_remove(i);
        if let NewValue::Resized(flat, shape) = update {
            let old = param.val();
            let dims: [usize; D] = shape.try_into().expect("rank checked before the write");
            let mut t: Tensor<D> = flat.reshape(dims);
            if old.is_autodiff() {
                t = t.autodiff();
            }
            if old.is_require_grad() {
                t = t.require_grad();
            }
            // A new id: optimizer state kept for the old shape does not apply to the new one.
            return Param::initialized(ParamId::new(), t);
        }
        param.map(|old| {
            let dims = old.dims();
            let autodiff = old.is_autodiff();
            let require_grad = old.is_require_grad();
            let inner = old.inner();
            let mut t: Tensor<D> = match update {
                NewValue::Value(flat) => flat.reshape(dims),
                NewValue::Mask(mask) => crate::backend::zero_pruned(inner, mask),
                NewValue::Resized(..) => unreachable!("handled above"),
            };
            if autodiff {
                t = t.autodiff();
            }
            if require_grad {
                t = t.require_grad();
            }
            t
        })
    }
}

impl<M: Module> BurnModel<M> {
    /// The parameter handles, found by one walk the first time they are needed.
    fn found(&self) -> Result<std::cell::Ref<'_, Vec<Found>>> {
        if self.params.borrow().is_none() {
            let found = params::find(self.module(), &self.layouts)?;
            *self.params.borrow_mut() = Some(found);
        }
        Ok(std::cell::Ref::map(self.params.borrow(), |p| {
            p.as_ref().expect("filled above")
        }))
    }

    /// The handle of weight `id`.
    fn at(&self, id: WeightId) -> Result<Found> {
        let found = self.found()?;
        found
            .get(id.0)
            .cloned()
            .ok_or_else(|| PruneError::UnknownWeight {
                weight: format!("#{}", id.0),
                candidates: vec![format!("the module has {} float parameters", found.len())],
            })
    }

    /// Checks that every update fits its parameter's stored size; returns their handles.
    fn check(&self, updates: &[(WeightId, usize)], what: &str) -> Result<Vec<Found>> {
        updates
            .iter()
            .map(|&(id, numel)| {
                let f = self.at(id)?;
                let want: usize = f.stored_shape.iter().product();
                if numel != want {
                    return Err(PruneError::Shape {
                        weight: f.info.name.clone(),
                        shape: f.stored_shape.clone(),
                        reason: format!("{what} of {numel} elements"),
                    });
                }
                Ok(f)
            })
            .collect()
    }

    /// [`check`](Self::check) for tensors given by weight: their flattened sizes.
    fn check_tensors(&self, updates: &[(WeightId, BurnTensor)], what: &str) -> Result<Vec<Found>> {
        let sizes: Vec<(WeightId, usize)> = updates
            .iter()
            .map(|(id, t)| (*id, t.flat.dims()[0]))
            .collect();
        self.check(&sizes, what)
    }

    fn map_params(&mut self, updates: Vec<(ParamId, NewValue<'_>)>) {
        if updates.is_empty() {
            return;
        }
        let mut w = Write { updates };
        self.update(|m| m.map(&mut w));
    }

    fn grads_mut(&mut self) -> Result<&mut GradientsParams> {
        self.grads.as_mut().ok_or_else(|| PruneError::HookOrder {
            hook: "on_before_optimizer_step",
            reason: "without gradients; call BurnModel::set_grads after backward".into(),
        })
    }
}

fn grad_of(grads: &GradientsParams, id: ParamId, rank: usize) -> Option<Tensor<1>> {
    fn flat<const D: usize>(t: Tensor<D>) -> Tensor<1> {
        let n = t.dims().iter().product::<usize>();
        t.reshape([n])
    }
    match rank {
        1 => grads.get::<1>(id).map(flat),
        2 => grads.get::<2>(id).map(flat),
        3 => grads.get::<3>(id).map(flat),
        4 => grads.get::<4>(id).map(flat),
        5 => grads.get::<5>(id).map(flat),
        _ => None,
    }
}

fn replace_grad(
    grads: &mut GradientsParams,
    id: ParamId,
    value: Tensor<1>,
    shape: &[usize],
) -> Result<()> {
    macro_rules! put {
        ($d:literal) => {{
            let dims: [usize; $d] = shape.try_into().expect("rank checked");
            grads.remove::<$d>(id);
            grads.register::<$d>(id, value.reshape(dims));
        }};
    }
    match shape.len() {
        1 => put!(1),
        2 => put!(2),
        3 => put!(3),
        4 => put!(4),
        5 => put!(5),
        r => {
            return Err(PruneError::Unsupported {
                op: format!("gradients of rank {r}"),
                backend: "burn".into(),
            })
        }
    }
    Ok(())
}

impl<M: Module> Model for BurnModel<M> {
    type Backend = Burn;

    fn backend(&self) -> &Burn {
        &Burn
    }

    fn weights(&self) -> Result<Vec<WeightInfo>> {
        Ok(self.found()?.iter().map(|f| f.info.clone()).collect())
    }

    fn weight_id(&self, name: &str) -> Result<WeightId> {
        let found = self.found()?;
        found
            .iter()
            .position(|f| f.info.name == name)
            .map(WeightId)
            .ok_or_else(|| {
                let names: Vec<String> = found.iter().map(|f| f.info.name.clone()).collect();
                PruneError::UnknownWeight {
                    weight: name.to_string(),
                    candidates: closest(name, &names, 3),
                }
            })
    }

    fn weight_at(&self, id: WeightId) -> Result<BurnTensor> {
        let f = self.at(id)?;
        let mut r = Read {
            id: f.id,
            value: None,
        };
        self.module().visit(&mut r);
        r.value.ok_or_else(|| PruneError::UnknownWeight {
            weight: f.info.name.clone(),
            candidates: Vec::new(),
        })
    }

    fn set_weights(&mut self, updates: Vec<(WeightId, BurnTensor)>) -> Result<()> {
        let found = self.check_tensors(&updates, "a write")?;
        for ((_, t), f) in updates.iter().zip(&found) {
            if t.shape != f.stored_shape {
                return Err(PruneError::Shape {
                    weight: f.info.name.clone(),
                    shape: t.shape.clone(),
                    reason: format!("write does not match stored shape {:?}", f.stored_shape),
                });
            }
        }
        self.map_params(
            updates
                .into_iter()
                .zip(&found)
                .map(|((_, t), f)| (f.id, NewValue::Value(t.flat)))
                .collect(),
        );
        Ok(())
    }

    fn shrink(&mut self, ops: &[ShrinkOp]) -> Result<()> {
        // A batch norm's running statistics hold the last training step's update aside until
        // they are read for evaluation; without settling it first, that old-sized update would
        // replace the shrunk statistics at the next forward pass. `valid` settles every running
        // state of the module in place (the evaluation copy itself is dropped).
        let _ = self.module().valid();
        shrink_weights(self, ops)
    }

    fn resize_weights(&mut self, updates: Vec<(WeightId, BurnTensor)>) -> Result<()> {
        let mut ids = Vec::with_capacity(updates.len());
        for (id, t) in &updates {
            let f = self.at(*id)?;
            let n: usize = t.shape.iter().product();
            if t.shape.len() != f.stored_shape.len() || t.flat.dims()[0] != n {
                return Err(PruneError::Shape {
                    weight: f.info.name.clone(),
                    shape: t.shape.clone(),
                    reason: format!(
                        "a resize keeps the rank of stored shape {:?} and gives {n} values",
                        f.stored_shape
                    ),
                });
            }
            ids.push(f.id);
        }
        self.grads = None;
        self.map_params(
            updates
                .into_iter()
                .zip(ids)
                .map(|((_, t), id)| (id, NewValue::Resized(t.flat, t.shape)))
                .collect(),
        );
        // Resized parameters have new ids and shapes.
        *self.params.get_mut() = None;
        Ok(())
    }

    fn apply_masks(&mut self, masks: &[(WeightId, &BurnMask)]) -> Result<()> {
        // Runs every step: masks are checked against the cached handles, then one map over the
        // module applies them all, matching parameters by id.
        let sizes: Vec<(WeightId, usize)> = masks.iter().map(|(id, m)| (*id, m.len())).collect();
        let found = self.check(&sizes, "a mask")?;
        self.map_params(
            masks
                .iter()
                .zip(&found)
                .map(|((_, m), f)| (f.id, NewValue::Mask(m)))
                .collect(),
        );
        Ok(())
    }

    fn gradient_at(&self, id: WeightId) -> Result<Option<BurnTensor>> {
        let f = self.at(id)?;
        let Some(grads) = self.grads.as_ref() else {
            return Ok(None);
        };
        Ok(
            grad_of(grads, f.id, f.stored_shape.len()).map(|g| BurnTensor {
                flat: g.inner(),
                shape: f.stored_shape.clone(),
            }),
        )
    }

    fn set_gradients(&mut self, updates: Vec<(WeightId, BurnTensor)>) -> Result<()> {
        let found = self.check_tensors(&updates, "a gradient")?;
        let grads = self.grads_mut()?;
        for ((_, t), f) in updates.into_iter().zip(found) {
            replace_grad(grads, f.id, t.flat, &f.stored_shape)?;
        }
        Ok(())
    }
}
