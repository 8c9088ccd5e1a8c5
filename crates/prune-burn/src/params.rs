//! Finding a burn module's float parameters once, and deciding how each is stored.
//!
//! burn's module visitor tells a parameter's path and the *name* of the struct that holds it,
//! not its type. A layout is therefore decided from evidence, in this order:
//! 1. a layout the user declared for that weight ([`LayoutRules::weight`]);
//! 2. a layout declared for every layer of that struct name ([`LayoutRules::layer`]);
//! 3. a struct named `Linear` with exactly burn's fields (`weight`, 2-D, and an optional 1-D
//!    `bias`) is burn's `Linear`, stored `[in, out]`, unless its bias has the length of the
//!    first stored axis and not the second: then it is a layer of the user's own, stored
//!    `[out, in]`, and left canonical;
//! 4. everything else is canonical (burn's convolutions are stored `[out, in, kh, kw]`).
//!
//! A declaration that names no weight or layer, needs another rank, or disagrees with the
//! layer's bias is an error naming the weight and both sizes.

use burn::module::{ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use prune_core::model::names::canonical_name;
use prune_core::suggest::closest;
use prune_core::{Layout, PruneError, Result, WeightInfo};

/// One float parameter found in a module.
#[derive(Clone)]
pub(crate) struct Found {
    pub info: WeightInfo,
    pub id: ParamId,
    pub stored_shape: Vec<usize>,
}

/// Layouts the user declared, by weight name or by the struct name of a layer.
#[derive(Clone, Debug, Default)]
pub struct LayoutRules {
    weights: Vec<(String, Layout)>,
    layers: Vec<(String, Layout)>,
}

impl LayoutRules {
    /// Declares how the weight `name` (its canonical path, e.g. `fc1.weight`) is stored.
    pub fn weight(mut self, name: &str, layout: Layout) -> Self {
        self.weights
            .push((canonical_name(name).to_string(), layout));
        self
    }

    /// Declares how every weight of the fitting rank in each layer of struct `type_name` (e.g.
    /// `Dense` for `struct Dense`) is stored; its other parameters (a bias) stay canonical.
    pub fn layer(mut self, type_name: &str, layout: Layout) -> Self {
        self.layers.push((type_name.to_string(), layout));
        self
    }
}

/// What one walk over the module records of a parameter.
struct Seen {
    path: String,
    /// The struct name of the layer holding the parameter (`Linear` for `Struct:Linear`).
    layer: Option<String>,
    id: ParamId,
    stored: Vec<usize>,
}

/// Builds parameter paths while a module is traversed.
#[derive(Default)]
struct Walk {
    joined: String,
    lengths: Vec<usize>,
    /// Per level entered: the container type of that level's parent.
    containers: Vec<String>,
    seen: Vec<Seen>,
}

impl ModuleVisitor for Walk {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.lengths.push(self.joined.len());
        self.containers.push(container_type.to_string());
        // An enum's variant is not part of the name: a `Vec` of enum layers is named like
        // PyTorch's Sequential (`downsample.0.weight`, `downsample.1.weight`).
        if container_type.starts_with("Enum:") {
            return;
        }
        if !self.joined.is_empty() {
            self.joined.push('.');
        }
        // A field named after a Rust keyword carries a trailing underscore (`self_`).
        self.joined
            .push_str(if name == "self_" { "self" } else { name });
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        if let Some(len) = self.lengths.pop() {
            self.joined.truncate(len);
        }
        self.containers.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let layer = self
            .containers
            .last()
            .and_then(|c| c.strip_prefix("Struct:"))
            .map(str::to_string);
        self.seen.push(Seen {
            path: batch_norm_name(canonical_name(&self.joined), layer.as_deref()),
            layer,
            id: param.id,
            stored: param.val().dims().to_vec(),
        });
    }
}

/// burn's `BatchNorm` calls its scale and shift `gamma` and `beta`; they go by PyTorch's
/// `weight` and `bias`, so that one config and one checkpoint name them on every framework.
fn batch_norm_name(path: &str, layer: Option<&str>) -> String {
    if layer == Some("BatchNorm") {
        for (from, to) in [(".gamma", ".weight"), (".beta", ".bias")] {
            if let Some(stem) = path.strip_suffix(from) {
                return format!("{stem}{to}");
            }
        }
    }
    path.to_string()
}

/// Every float parameter of `module` with its layout, in visiting order.
pub(crate) fn find<M: burn::module::Module>(module: &M, rules: &LayoutRules) -> Result<Vec<Found>> {
    let mut walk = Walk::default();
    module.visit(&mut walk);
    let seen = walk.seen;
    check_declared_names(&seen, rules)?;
    seen.iter()
        .map(|s| {
            let layout = layout_of(s, &seen, rules)?;
            Ok(Found {
                info: WeightInfo {
                    name: s.path.clone(),
                    shape: layout.canonical_shape(&s.stored),
                    layout,
                },
                id: s.id,
                stored_shape: s.stored.clone(),
            })
        })
        .collect()
}

/// Every declaration names a weight or a layer of the module.
fn check_declared_names(seen: &[Seen], rules: &LayoutRules) -> Result<()> {
    let names: Vec<String> = seen.iter().map(|s| s.path.clone()).collect();
    if let Some((name, _)) = rules.weights.iter().find(|(n, _)| !names.contains(n)) {
        return Err(PruneError::UnknownWeight {
            weight: name.clone(),
            candidates: closest(name, &names, 3),
        });
    }
    for (layer, layout) in &rules.layers {
        let fits = seen
            .iter()
            .any(|s| s.layer.as_deref() == Some(layer) && fits_rank(*layout, s.stored.len()));
        if !fits {
            let mut types: Vec<String> = seen.iter().filter_map(|s| s.layer.clone()).collect();
            types.sort();
            types.dedup();
            return Err(PruneError::UnknownWeight {
                weight: format!(
                    "a layer of type {layer} with a weight of rank {}",
                    rank_of(*layout)
                ),
                candidates: closest(layer, &types, 3),
            });
        }
    }
    Ok(())
}

fn rank_of(layout: Layout) -> usize {
    match layout {
        Layout::Transposed => 2,
        Layout::Hwio => 4,
        Layout::Canonical => 0,
    }
}

/// Whether `layout` applies to a parameter of rank `rank` (canonical applies to any).
fn fits_rank(layout: Layout, rank: usize) -> bool {
    layout == Layout::Canonical || rank_of(layout) == rank
}

/// The 1-D `bias` beside the weight at `path`, if its layer has one.
fn bias_of<'s>(path: &str, seen: &'s [Seen]) -> Option<&'s Seen> {
    let stem = path.rsplit_once('.').map(|(s, _)| s)?;
    seen.iter()
        .find(|s| s.stored.len() == 1 && s.path.rsplit_once('.') == Some((stem, "bias")))
}

/// The parameters of the layer holding the parameter at `path`.
fn siblings<'s>(path: &str, seen: &'s [Seen]) -> impl Iterator<Item = &'s Seen> {
    let stem = path.rsplit_once('.').map(|(s, _)| s.to_string());
    seen.iter()
        .filter(move |s| s.path.rsplit_once('.').map(|(p, _)| p.to_string()) == stem)
}

fn layout_of(s: &Seen, seen: &[Seen], rules: &LayoutRules) -> Result<Layout> {
    if let Some((_, layout)) = rules.weights.iter().rev().find(|(n, _)| *n == s.path) {
        return checked(s, *layout, seen);
    }
    if let Some(layer) = &s.layer {
        if let Some((_, layout)) = rules.layers.iter().rev().find(|(t, _)| t == layer) {
            if fits_rank(*layout, s.stored.len()) {
                return checked(s, *layout, seen);
            }
            return Ok(Layout::Canonical);
        }
        if layer == "Linear" && s.stored.len() == 2 && is_burn_linear(s, seen) {
            return Ok(Layout::Transposed);
        }
    }
    Ok(Layout::Canonical)
}

/// Whether the weight `s` of a struct named `Linear` is burn's `[in, out]` Linear weight.
fn is_burn_linear(s: &Seen, seen: &[Seen]) -> bool {
    let burn_fields = siblings(&s.path, seen).all(|p| {
        let field = p.path.rsplit('.').next().unwrap_or("");
        (field == "weight" && p.stored.len() == 2) || (field == "bias" && p.stored.len() == 1)
    });
    if !burn_fields || !s.path.ends_with("weight") {
        return false;
    }
    match bias_of(&s.path, seen) {
        // burn's bias has d_output, the second stored axis.
        Some(b) => b.stored[0] == s.stored[1] || b.stored[0] != s.stored[0],
        None => true,
    }
}

/// `layout` for `s`, refused when it needs another rank or disagrees with the layer's bias.
fn checked(s: &Seen, layout: Layout, seen: &[Seen]) -> Result<Layout> {
    if !fits_rank(layout, s.stored.len()) {
        return Err(PruneError::Shape {
            weight: s.path.clone(),
            shape: s.stored.clone(),
            reason: format!(
                "the declared layout {layout:?} needs a weight of rank {}, this one has rank {}",
                rank_of(layout),
                s.stored.len()
            ),
        });
    }
    if let Some(bias) = bias_of(&s.path, seen).filter(|b| b.path != s.path) {
        let outputs = layout.canonical_shape(&s.stored)[0];
        if outputs != bias.stored[0] {
            return Err(PruneError::Shape {
                weight: s.path.clone(),
                shape: s.stored.clone(),
                reason: format!(
                    "the declared layout {layout:?} gives {outputs} outputs, but {} has {}",
                    bias.path, bias.stored[0]
                ),
            });
        }
    }
    Ok(layout)
}
