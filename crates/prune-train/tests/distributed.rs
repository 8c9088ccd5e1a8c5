//! The data-parallel pieces of the loop against a scripted peer: rank 0 of two, whose other
//! rank's contributions are fixed in advance. The real two-process runs are tests/data_parallel.rs.

use prune_core::testing::reference::{RefModel, RefTensor};
use prune_core::{Layout, Model, Pruning, Reference, Result, WeightId};
use prune_train::distributed::{broadcast_weights, check_same_model};
use prune_train::{fit_on, Collective, Dataset, GradientReducer, TrainConfig, Trainer};
use std::cell::RefCell;

/// Rank 0 of two. The other rank adds `peer_sum` to every all-reduce, broadcasts nothing (rank 0
/// is the root) and gathers `peer_gather`.
struct ScriptedPeer {
    peer_sum: Vec<f32>,
    peer_gather: RefCell<Vec<Vec<u64>>>,
    calls: RefCell<Vec<&'static str>>,
}

impl ScriptedPeer {
    fn new(peer_sum: Vec<f32>, peer_gather: Vec<Vec<u64>>) -> Self {
        ScriptedPeer {
            peer_sum,
            peer_gather: RefCell::new(peer_gather),
            calls: RefCell::new(Vec::new()),
        }
    }
}

impl Collective for ScriptedPeer {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        2
    }
    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()> {
        self.calls.borrow_mut().push("all_reduce");
        assert_eq!(
            values.len(),
            self.peer_sum.len(),
            "both ranks send as many values"
        );
        values
            .iter_mut()
            .zip(&self.peer_sum)
            .for_each(|(v, p)| *v += p);
        Ok(())
    }
    fn broadcast(&self, _values: &mut [f32], root: usize) -> Result<()> {
        self.calls.borrow_mut().push("broadcast");
        assert_eq!(root, 0);
        Ok(())
    }
    fn all_gather(&self, values: &[u64]) -> Result<Vec<u64>> {
        self.calls.borrow_mut().push("all_gather");
        let mut all = values.to_vec();
        let mut script = self.peer_gather.borrow_mut();
        all.extend(if script.is_empty() {
            values.to_vec()
        } else {
            script.remove(0)
        });
        Ok(all)
    }
}

fn model() -> RefModel {
    let mut m = RefModel::default();
    m.push(
        "fc.weight",
        &[2, 2],
        vec![1.0, -2.0, 3.0, -4.0],
        Layout::Canonical,
    );
    m.push("fc.bias", &[2], vec![0.5, 0.25], Layout::Canonical);
    m
}

fn set_grads(m: &mut RefModel, w: Vec<f32>, b: Vec<f32>) {
    m.set_gradients(vec![
        (
            WeightId(0),
            RefTensor {
                data: w,
                shape: vec![2, 2],
            },
        ),
        (
            WeightId(1),
            RefTensor {
                data: b,
                shape: vec![2],
            },
        ),
    ])
    .unwrap();
}

fn grad(m: &RefModel, i: usize) -> Vec<f32> {
    m.gradient_at(WeightId(i)).unwrap().unwrap().data
}

#[test]
fn gradients_become_the_share_weighted_sum_over_ranks_and_the_loss_the_global_one() {
    let mut m = model();
    set_grads(&mut m, vec![1.0, 2.0, 3.0, 4.0], vec![10.0, 20.0]);
    // The peer trained on 3 of the 4 rows of the global batch: it sends 0.75 x its gradients.
    let peer: Vec<f32> = [5.0, 6.0, 7.0, 8.0, 30.0, 40.0, 2.0]
        .iter()
        .map(|v| v * 0.75)
        .collect();
    let world = ScriptedPeer::new(peer, Vec::new());
    let mut reducer = GradientReducer::new();
    let loss = reducer.reduce(&mut m, &world, 0.25, Some(1.0)).unwrap();
    assert_eq!(loss, 0.25 * 1.0 + 0.75 * 2.0);
    let want_w: Vec<f32> = [(1.0, 5.0), (2.0, 6.0), (3.0, 7.0), (4.0, 8.0)]
        .iter()
        .map(|(a, b)| 0.25 * a + 0.75 * b)
        .collect();
    assert_eq!(grad(&m, 0), want_w);
    assert_eq!(
        grad(&m, 1),
        vec![0.25 * 10.0 + 0.75 * 30.0, 0.25 * 20.0 + 0.75 * 40.0]
    );
    assert_eq!(
        *world.calls.borrow(),
        vec!["all_gather", "all_reduce"],
        "the model is checked once, then one all-reduce carries every gradient and the loss"
    );
    // The second step reuses the buffer and checks nothing again.
    set_grads(&mut m, vec![0.0; 4], vec![0.0; 2]);
    reducer.reduce(&mut m, &world, 0.25, Some(1.0)).unwrap();
    assert_eq!(world.calls.borrow().len(), 3);
}

#[test]
fn a_rank_with_a_non_finite_loss_makes_the_global_loss_non_finite_and_keeps_its_gradients() {
    let mut m = model();
    set_grads(&mut m, vec![1.0; 4], vec![1.0; 2]);
    let world = ScriptedPeer::new(vec![0.5; 7], Vec::new());
    let loss = GradientReducer::new()
        .reduce(&mut m, &world, 0.5, Some(f32::NAN))
        .unwrap();
    assert!(loss.is_nan(), "every rank sees the NaN: {loss}");
    assert_eq!(
        grad(&m, 0),
        vec![1.0; 4],
        "no half-reduced gradient is written"
    );
}

#[test]
fn a_peer_running_another_model_is_refused_naming_both_ranks() {
    let m = model();
    let world = ScriptedPeer::new(Vec::new(), vec![vec![3, 0xdead]]);
    let err = check_same_model(&m, &world).unwrap_err().to_string();
    assert!(
        err.contains("rank 1 runs a model of 3 weights") && err.contains("rank 0 has 2 weights"),
        "{err}"
    );
    let mut m = model();
    let world = ScriptedPeer::new(Vec::new(), vec![vec![3, 0xdead]]);
    let err = broadcast_weights(&mut m, &world, 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("rank 1 runs a model of 3 weights"), "{err}");
    assert_eq!(
        *world.calls.borrow(),
        vec!["all_gather"],
        "nothing is broadcast"
    );
}

const YAML: &str = "
pruning:
  train:
    end_epoch: 2
    dataloader: {batch_size: 2}
  approach:
    weight_compression:
      start_epoch: 0
      end_epoch: 1
      target_sparsity: 0.5
      pruners:
        - !Pruner
            prune_type: basic_magnitude
            names: ['fc.weight']
";

/// Records the rows each step trains on and leaves a gradient of ones.
#[derive(Default)]
struct Recorder {
    batches: Vec<Vec<usize>>,
}

impl Trainer<RefModel> for Recorder {
    fn backward(&mut self, m: &mut RefModel, _: &Dataset, rows: &[usize]) -> Result<Option<f32>> {
        self.batches.push(rows.to_vec());
        set_grads(m, vec![1.0; 4], vec![1.0; 2]);
        Ok(Some(1.0))
    }
    fn update(&mut self, _: &mut RefModel) -> Result<Option<f32>> {
        Ok(None)
    }
    fn predict(&mut self, _: &RefModel, _: &Dataset, rows: &[usize]) -> Result<Vec<usize>> {
        Ok(vec![0; rows.len()])
    }
}

fn data(rows: usize) -> Dataset {
    let text: String = (0..rows).map(|i| format!("{i},{}\n", i % 2)).collect();
    Dataset::from_csv(&text, 1.0).unwrap()
}

#[test]
fn several_ranks_without_distributed_true_are_refused_before_any_collective() {
    let mut p: Pruning<Reference> = Pruning::from_yaml(YAML).unwrap();
    let cfg = TrainConfig::from_config(p.config(), "test").unwrap();
    assert!(!cfg.distributed);
    let world = ScriptedPeer::new(Vec::new(), Vec::new());
    let err = fit_on(
        &mut p,
        &mut model(),
        &data(8),
        &cfg,
        &mut Recorder::default(),
        &world,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("runs on 2 ranks but train.dataloader.distributed is not True"),
        "{err}"
    );
    assert!(world.calls.borrow().is_empty());
}

#[test]
fn each_rank_trains_on_its_share_of_every_global_batch() {
    let yaml = YAML.replace("{batch_size: 2}", "{batch_size: 2, distributed: True}");
    let mut p: Pruning<Reference> = Pruning::from_yaml(&yaml).unwrap();
    let cfg = TrainConfig::from_config(p.config(), "test").unwrap();
    assert!(cfg.distributed);
    // The peer sends its half of the weights' gradients (6 values) and of the loss.
    let world = ScriptedPeer::new(vec![0.5; 7], Vec::new());
    let mut t = Recorder::default();
    let logs = fit_on(&mut p, &mut model(), &data(9), &cfg, &mut t, &world).unwrap();
    // 9 rows in global batches of 4 (2 per rank): two full batches, then one row, which is
    // fewer rows than ranks and is skipped. Rank 0 takes the first half of each.
    assert_eq!(logs.iter().map(|l| l.steps).collect::<Vec<_>>(), vec![2, 2]);
    assert!(t.batches.iter().all(|b| b.len() == 2), "{:?}", t.batches);
    let order = prune_train::shuffled(9, cfg.seed);
    assert_eq!(t.batches[0], order[0..2].to_vec());
    assert_eq!(t.batches[1], order[4..6].to_vec());
    assert!(
        logs.iter().all(|l| (l.mean_loss - 1.0).abs() < 1e-6),
        "{logs:?}"
    );
}
