//! Inputs that used to panic in the loop (a batch size of 0, a group of no ranks, a rank outside
//! its group) are refused with errors naming the number.

use prune_core::testing::reference::RefModel;
use prune_core::{Layout, Pruning, Reference, Result};
use prune_train::{
    fit_on, run_epoch_on, Collective, Dataset, GradientReducer, TrainConfig, Trainer,
};

const YAML: &str = "
pruning:
  train:
    end_epoch: 1
    dataloader: {batch_size: 2, distributed: True}
  approach:
    weight_compression:
      start_epoch: 0
      end_epoch: 0
      pruners:
        - !Pruner
            prune_type: basic_magnitude
            names: ['fc.weight']
";

/// A trainer that must never be reached.
struct Unreached;

impl Trainer<RefModel> for Unreached {
    fn backward(&mut self, _: &mut RefModel, _: &Dataset, _: &[usize]) -> Result<Option<f32>> {
        panic!("backward reached");
    }
    fn update(&mut self, _: &mut RefModel) -> Result<Option<f32>> {
        panic!("update reached");
    }
    fn predict(&mut self, _: &RefModel, _: &Dataset, _: &[usize]) -> Result<Vec<usize>> {
        panic!("predict reached");
    }
}

/// A group that says it has `size` ranks and that this process is `rank`.
struct Group {
    rank: usize,
    size: usize,
}

impl Collective for Group {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn all_reduce_sum(&self, _: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn broadcast(&self, _: &mut [f32], _: usize) -> Result<()> {
        Ok(())
    }
    fn all_gather(&self, values: &[u64]) -> Result<Vec<u64>> {
        Ok(values.repeat(self.size))
    }
}

fn model() -> RefModel {
    let mut m = RefModel::default();
    m.push(
        "fc.weight",
        &[2, 2],
        vec![1.0, 2.0, 3.0, 4.0],
        Layout::Canonical,
    );
    m
}

fn data() -> Dataset {
    Dataset::from_csv("1,0\n2,1\n3,0\n4,1\n", 1.0).unwrap()
}

fn epoch_error(cfg: &TrainConfig, world: &dyn Collective) -> String {
    let mut m = model();
    run_epoch_on::<Reference, _, _>(
        &mut m,
        None,
        cfg,
        &data(),
        0,
        &mut Unreached,
        world,
        &mut GradientReducer::new(),
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn a_batch_size_of_zero_is_refused() {
    let p: Pruning<Reference> = Pruning::from_yaml(YAML).unwrap();
    let mut cfg = TrainConfig::from_config(p.config(), "cfg").unwrap();
    cfg.batch_size = 0;
    let err = epoch_error(&cfg, &Group { rank: 0, size: 1 });
    assert!(
        err.contains("pruning.train.dataloader.batch_size: 0 must be >= 1"),
        "{err}"
    );
}

#[test]
fn a_group_of_no_ranks_or_a_rank_outside_it_is_refused() {
    let p: Pruning<Reference> = Pruning::from_yaml(YAML).unwrap();
    let cfg = TrainConfig::from_config(p.config(), "cfg").unwrap();
    let err = epoch_error(&cfg, &Group { rank: 0, size: 0 });
    assert!(err.contains("the group has 0 ranks"), "{err}");
    let err = epoch_error(&cfg, &Group { rank: 2, size: 2 });
    assert!(
        err.contains("rank 2 is outside its group of 2 ranks (0..2)"),
        "{err}"
    );
    // fit refuses it before any hook or collective.
    let mut p: Pruning<Reference> = Pruning::from_yaml(YAML).unwrap();
    let err = fit_on(
        &mut p,
        &mut model(),
        &data(),
        &cfg,
        &mut Unreached,
        &Group { rank: 3, size: 2 },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("rank 3 is outside its group of 2 ranks"),
        "{err}"
    );
    assert_eq!(p.mask_counts(), Vec::new(), "no pruner was bound");
}

#[test]
fn a_shard_outside_the_group_is_empty() {
    assert_eq!(prune_train::distributed::shard(10, 2, 2), 0..0);
    assert_eq!(prune_train::distributed::shard(10, 0, 0), 0..0);
}
