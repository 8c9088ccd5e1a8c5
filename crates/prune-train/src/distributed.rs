//! Data-parallel training: the collectives the loop needs, and what it does with them.
//!
//! A [`Collective`] is a group of processes (ranks) that each hold a copy of the model. The loop
//! averages gradients across them after backward, so every rank takes the same optimizer step
//! and computes the same masks; [`VerifyConsistent`] proves that they do. The MPI world of
//! `prune-mpi` is one implementation; [`SingleProcess`] is the group of one.

use prune_core::session::digest::SessionDigest;
use prune_core::{Model, PruneError, Pruning, Result, TensorBackend, WeightId};

/// The operations data-parallel training needs from a group of processes. Every rank calls
/// each operation in the same order with buffers of the same length.
pub trait Collective {
    /// This process's rank, `0..size()`.
    fn rank(&self) -> usize;

    /// Number of ranks.
    fn size(&self) -> usize;

    /// Sums `values` element-wise over all ranks; every rank receives the sums in `values`.
    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()>;

    /// Replaces `values` on every rank by those of rank `root`.
    fn broadcast(&self, values: &mut [f32], root: usize) -> Result<()>;

    /// Every rank's `values`, rank after rank (each rank gives the same number).
    fn all_gather(&self, values: &[u64]) -> Result<Vec<u64>>;
}

/// One process on its own: rank 0 of 1. Collectives change nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_reduce_sum(&self, _values: &mut [f32]) -> Result<()> {
        Ok(())
    }

    fn broadcast(&self, _values: &mut [f32], _root: usize) -> Result<()> {
        Ok(())
    }

    fn all_gather(&self, values: &[u64]) -> Result<Vec<u64>> {
        Ok(values.to_vec())
    }
}

/// An error of the data-parallel group: what differs and on which ranks.
pub fn distributed_error(message: String) -> PruneError {
    PruneError::Backend {
        backend: "data-parallel".into(),
        message,
    }
}

/// The rows of a global batch that `rank` of `size` trains on: an equal share, the first
/// `len % size` ranks taking one row more. A rank outside the group (or a group of none) gets
/// no rows.
pub fn shard(len: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    if rank >= size {
        return 0..0;
    }
    let (base, extra) = (len / size, len % size);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// Checks that every rank runs a model of the same weights and shapes, naming the first rank
/// and weight that differ. Call it once before the first collective on the model's values.
pub fn check_same_model<M: Model>(model: &M, world: &dyn Collective) -> Result<()> {
    let weights = model.weights()?;
    let mut shape_digest = prune_core::session::digest::Digest::default();
    for w in &weights {
        shape_digest.word(w.shape.len() as u64);
        for &d in &w.shape {
            shape_digest.word(d as u64);
        }
        for b in w.name.bytes() {
            shape_digest.word(u64::from(b));
        }
    }
    let mine = [weights.len() as u64, shape_digest.value()];
    let all = world.all_gather(&mine)?;
    for (rank, theirs) in all.chunks(2).enumerate() {
        if theirs != mine {
            return Err(distributed_error(format!(
                "rank {rank} runs a model of {} weights (shape digest {:#x}); rank {} has {} weights (shape digest {:#x})",
                theirs[0],
                theirs[1],
                world.rank(),
                mine[0],
                mine[1]
            )));
        }
    }
    Ok(())
}

/// Replaces every weight of `model` by rank `root`'s, so that all ranks start alike.
pub fn broadcast_weights<M: Model>(
    model: &mut M,
    world: &dyn Collective,
    root: usize,
) -> Result<()> {
    if world.size() == 1 {
        return Ok(());
    }
    check_same_model(model, world)?;
    let be = model.backend().clone();
    let count = model.weights()?.len();
    let mut updates = Vec::with_capacity(count);
    for i in 0..count {
        let id = WeightId(i);
        let w = model.weight_at(id)?;
        let mut values = be.to_vec(&w)?;
        world.broadcast(&mut values, root)?;
        let shape = be.shape(&w);
        updates.push((id, be.from_vec(&w, values, &shape)?));
    }
    model.set_weights(updates)
}

/// Sums every rank's gradients, each scaled by a factor, into every rank's model, through one
/// flat buffer that is reused from step to step.
#[derive(Debug, Default)]
pub struct GradientReducer {
    send: Vec<f32>,
    ids: Option<Vec<WeightId>>,
}

impl GradientReducer {
    /// A reducer for the model's weights, found at the first call.
    pub fn new() -> Self {
        Self::default()
    }

    /// The mean of every rank's gradients, as `on_before_optimizer_step` expects after the
    /// all-reduce (each rank's batch weighs the same).
    pub fn average<M: Model>(&mut self, model: &mut M, world: &dyn Collective) -> Result<()> {
        let share = 1.0 / world.size() as f32;
        self.reduce(model, world, share, Some(0.0)).map(|_| ())
    }

    /// Replaces each gradient by the sum over ranks of `factor * gradient` (`factor` is this
    /// rank's share: `rows / global rows` for a mean loss, 1 for a summed one), and returns the
    /// sum over ranks of `factor * loss`. A rank whose loss is not finite (`None` or NaN) adds
    /// NaN to the loss and no gradient, so that every rank sees the same non-finite loss and
    /// stops at the same step.
    pub fn reduce<M: Model>(
        &mut self,
        model: &mut M,
        world: &dyn Collective,
        factor: f32,
        loss: Option<f32>,
    ) -> Result<f32> {
        let local_loss = loss.filter(|l| l.is_finite());
        if world.size() == 1 {
            return Ok(loss.unwrap_or(f32::NAN));
        }
        if self.ids.is_none() {
            check_same_model(model, world)?;
            let count = model.weights()?.len();
            self.ids = Some((0..count).map(WeightId).collect());
        }
        let ids = self.ids.as_deref().unwrap_or_default();
        let be = model.backend().clone();
        let mut grads = Vec::with_capacity(ids.len());
        let mut total = 0;
        for &id in ids {
            let g = match local_loss {
                Some(_) => model.gradient_at(id)?,
                None => None,
            };
            let numel = numel_at(model, id)?;
            total += numel;
            grads.push((id, g, numel));
        }
        self.send.clear();
        self.send.reserve(total + 1);
        for (id, g, numel) in &grads {
            match g {
                Some(g) => be.with_host_values(g, |v| {
                    self.send.extend(v.iter().map(|x| x * factor));
                })?,
                None if local_loss.is_some() => {
                    let name = model.weights()?.swap_remove(id.0).name;
                    return Err(distributed_error(format!(
                        "rank {}: `{name}` has no gradient after backward",
                        world.rank()
                    )));
                }
                None => self.send.extend(std::iter::repeat_n(0.0, *numel)),
            }
        }
        self.send.push(local_loss.map_or(f32::NAN, |l| l * factor));
        world.all_reduce_sum(&mut self.send)?;
        let global_loss = self.send[total];
        if !global_loss.is_finite() {
            return Ok(global_loss);
        }
        let mut updates = Vec::with_capacity(grads.len());
        let mut offset = 0;
        for (id, g, numel) in grads {
            let like = g.ok_or_else(|| distributed_error("a gradient vanished".into()))?;
            let shape = be.shape(&like);
            let values = self.send[offset..offset + numel].to_vec();
            updates.push((id, be.from_vec(&like, values, &shape)?));
            offset += numel;
        }
        model.set_gradients(updates)?;
        Ok(global_loss)
    }
}

/// Elements a weight holds now (a structured shrink changes it).
fn numel_at<M: Model>(model: &M, id: WeightId) -> Result<usize> {
    let w = model.weight_at(id)?;
    Ok(model.backend().shape(&w).iter().product())
}

/// Proof that every rank of a data-parallel group prunes alike.
pub trait VerifyConsistent {
    /// Compares the digest of every mask and of the schedule position across ranks. A
    /// difference is an error naming the first weight that differs and the ranks.
    fn verify_consistent(&self, world: &dyn Collective) -> Result<()>;
}

impl<B: TensorBackend> VerifyConsistent for Pruning<B> {
    fn verify_consistent(&self, world: &dyn Collective) -> Result<()> {
        if world.size() == 1 {
            return Ok(());
        }
        compare_digests(&self.digest(), world)
    }
}

fn compare_digests(digest: &SessionDigest, world: &dyn Collective) -> Result<()> {
    let counts = world.all_gather(&[digest.masks.len() as u64])?;
    let me = world.rank();
    if let Some((rank, n)) = counts
        .iter()
        .enumerate()
        .find(|(_, n)| **n != digest.masks.len() as u64)
    {
        return Err(distributed_error(format!(
            "masks differ: rank {rank} holds {n} masked weights, rank {me} holds {}",
            digest.masks.len()
        )));
    }
    const HEAD: usize = 4;
    let mut mine = Vec::with_capacity(digest.masks.len() + HEAD);
    mine.extend([
        digest.epoch.map_or(0, |e| e as u64 + 1),
        digest.steps,
        digest.shrinks,
        digest.position,
    ]);
    mine.extend(digest.masks.iter().map(|(_, d)| *d));
    let all = world.all_gather(&mine)?;
    let at = |p: &[u64]| match p[0] {
        0 => format!("between epochs after step {}", p[1]),
        e => format!("in epoch {} after step {}", e - 1, p[1]),
    };
    for (rank, theirs) in all.chunks(mine.len()).enumerate() {
        if let Some(i) = (HEAD..mine.len()).find(|&i| theirs[i] != mine[i]) {
            return Err(distributed_error(format!(
                "the mask of `{}` differs between rank {rank} ({}) and rank {me} ({})",
                digest.masks[i - HEAD].0,
                at(theirs),
                at(&mine)
            )));
        }
        if theirs[..HEAD] != mine[..HEAD] {
            return Err(distributed_error(format!(
                "ranks {rank} and {me} are at different points of the schedule: rank {rank} {} with {} shrinks, rank {me} {} with {} shrinks{}",
                at(theirs),
                theirs[2],
                at(&mine),
                mine[2],
                if theirs[3] != mine[3] { "; their applied sparsities or kept groups differ" } else { "" }
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::shard;

    #[test]
    fn shards_cover_a_batch_once_in_order() {
        for len in 0..20 {
            for size in 1..5 {
                let mut next = 0;
                for rank in 0..size {
                    let r = shard(len, rank, size);
                    assert_eq!(r.start, next, "len {len} size {size} rank {rank}");
                    assert!(r.len() + 1 >= len / size + usize::from(len % size > 0));
                    next = r.end;
                }
                assert_eq!(next, len);
            }
        }
    }
}
