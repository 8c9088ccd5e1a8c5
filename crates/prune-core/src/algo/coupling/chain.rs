//! The sequential-chain recogniser: the layers of one module, in order, each feeding the next.
//!
//! A module is a chain when every parameter under it belongs to one of its own layers
//! (no nested modules), and its layers are ordered either by index (`features.0`,
//! `features.1`, ... as a Sequential names them) or by number in their names (`conv1`, `bn1`,
//! `conv2`, `bn2`, `fc1`, `fc2`: convolutions first, then linears; `bnK` follows `convK`).
//! A producer's output channels go with its bias, the batch norm after it and the next
//! producer's input channels: in blocks of `h * w` columns for a Linear after a flatten.
//! A module that does not read as a chain gets no groups, so its shrinks stay refused unless
//! another recogniser or the model declares them.

use super::layers::{layer, norm_slices, parent_of, stem_of, Kind, Layer};
use crate::model::{Coupling, CouplingGroup, FixedSlice, Slice, WeightInfo};
use std::collections::BTreeSet;

/// Coupling of every module of `weights` that reads as a chain.
pub fn chain_coupling(weights: &[WeightInfo]) -> Coupling {
    let parents: BTreeSet<&str> = weights
        .iter()
        .map(|w| parent_of(stem_of(&w.name)))
        .collect();
    let mut out = Coupling::default();
    for parent in parents {
        if let Some(chain) = chain_of(parent, weights) {
            couple(&chain, weights, &mut out);
        }
    }
    out
}

/// A producer (conv or linear) and the norms that follow it.
struct Link<'w> {
    producer: Layer<'w>,
    norms: Vec<Layer<'w>>,
}

/// The direct child name of `stem` under `parent`, if `stem` is one.
fn child<'s>(parent: &str, stem: &'s str) -> Option<&'s str> {
    let rest = if parent.is_empty() {
        stem
    } else {
        stem.strip_prefix(parent)?.strip_prefix('.')?
    };
    (!rest.is_empty() && !rest.contains('.')).then_some(rest)
}

/// `conv12` -> (`conv`, Some(12)); `fc` -> (`fc`, None); anything else -> None.
fn numbered(name: &str) -> Option<(&str, Option<u64>)> {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (letters, number) = name.split_at(name.len() - digits);
    if letters.is_empty() || !letters.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    Some((letters, number.parse().ok()))
}

fn chain_of<'w>(parent: &'w str, weights: &'w [WeightInfo]) -> Option<Vec<Link<'w>>> {
    let under = |w: &&WeightInfo| parent.is_empty() || w.name.starts_with(&format!("{parent}."));
    let mut children: Vec<(&str, &str)> = Vec::new();
    for w in weights.iter().filter(under) {
        let stem = stem_of(&w.name);
        let name = child(parent, stem)?;
        if !children.iter().any(|(s, _)| *s == stem) {
            children.push((stem, name));
        }
    }
    let layers: Vec<(Layer, &str)> = children
        .iter()
        .map(|(stem, name)| layer(stem, weights).map(|l| (l, *name)))
        .collect::<Option<_>>()?;
    if layers.len() < 2 {
        return None;
    }
    if layers.iter().all(|(_, n)| n.parse::<u64>().is_ok()) {
        let mut ordered = layers;
        ordered.sort_by_key(|(_, n)| n.parse::<u64>().unwrap_or(0));
        return in_order(ordered.into_iter().map(|(l, _)| l));
    }
    by_number(layers)
}

/// Links from layers in model order: each norm follows the producer before it.
fn in_order<'w>(layers: impl Iterator<Item = Layer<'w>>) -> Option<Vec<Link<'w>>> {
    let mut links: Vec<Link> = Vec::new();
    for l in layers {
        if l.kind == Kind::Norm {
            let last = links.last_mut()?;
            if last.producer.outputs() != l.outputs() {
                return None;
            }
            last.norms.push(l);
        } else {
            links.push(Link {
                producer: l,
                norms: Vec::new(),
            });
        }
    }
    Some(links)
}

/// Links from numbered names: convolutions by number, then linears by number (an unnumbered
/// linear last); `bnK` follows the producer numbered K with as many channels.
fn by_number<'w>(layers: Vec<(Layer<'w>, &'w str)>) -> Option<Vec<Link<'w>>> {
    let mut producers: Vec<(u8, u64, Layer)> = Vec::new();
    let mut norms: Vec<(u64, Layer)> = Vec::new();
    for (l, name) in layers {
        let (_, number) = numbered(name)?;
        match (l.kind, number) {
            (Kind::Norm, Some(k)) => norms.push((k, l)),
            (Kind::Norm, None) => return None,
            (Kind::Conv, Some(k)) => producers.push((0, k, l)),
            (Kind::Linear, k) => producers.push((1, k.unwrap_or(u64::MAX), l)),
            (Kind::Conv, None) => return None,
        }
    }
    producers.sort_by_key(|(kind, k, _)| (*kind, *k));
    if producers
        .windows(2)
        .any(|p| (p[0].0, p[0].1) == (p[1].0, p[1].1))
    {
        return None;
    }
    let mut links: Vec<Link> = producers
        .into_iter()
        .map(|(_, _, producer)| Link {
            producer,
            norms: Vec::new(),
        })
        .collect();
    for (k, norm) in norms {
        let to = links.iter_mut().find(|link| {
            numbered(link.producer.stem.rsplit('.').next().unwrap_or(""))
                .is_some_and(|(_, n)| n == Some(k))
                && link.producer.outputs() == norm.outputs()
        })?;
        to.norms.push(norm);
    }
    Some(links)
}

fn couple(chain: &[Link<'_>], weights: &[WeightInfo], out: &mut Coupling) {
    for pair in chain.windows(2) {
        let (a, b) = (&pair[0], &pair[1].producer);
        let p = &a.producer;
        let block = match (p.kind, b.kind) {
            (Kind::Conv, Kind::Conv) | (Kind::Linear, Kind::Linear)
                if b.inputs() == p.outputs() =>
            {
                1
            }
            (Kind::Conv, Kind::Linear) if b.inputs() % p.outputs() == 0 => b.inputs() / p.outputs(),
            (Kind::Conv, Kind::Conv) => {
                let reason = format!(
                    "`{}` takes {} input channels per group from the {} channels of `{}`: a \
                     grouped or depthwise convolution, whose channels cannot be pruned apart \
                     from its groups",
                    b.name(),
                    b.inputs(),
                    p.outputs(),
                    p.name()
                );
                out.fixed.push(FixedSlice {
                    weight: p.name().to_string(),
                    axis: 0,
                    reason: reason.clone(),
                });
                out.fixed.push(FixedSlice {
                    weight: b.name().to_string(),
                    axis: 1,
                    reason,
                });
                continue;
            }
            _ => continue,
        };
        let mut members = vec![Slice::new(p.name(), 0)];
        for norm in &a.norms {
            members.extend(norm_slices(norm, weights));
        }
        members.push(Slice::new(b.name(), 1).blocks(block));
        out.groups.push(CouplingGroup { members });
    }
}
