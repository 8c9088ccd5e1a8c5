//! The one epoch loop, driven through a recording trainer on the reference backend.

use prune_core::testing::reference::RefModel;
use prune_core::{Layout, Model, Pruning, Reference};
use prune_train::{accuracy, fit, Dataset, TrainConfig, Trainer};

const YAML: &str = "
pruning:
  train:
    end_epoch: 2
    iteration: 2
    dataloader: {batch_size: 4}
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

#[derive(Default)]
struct Recorder {
    batches: Vec<Vec<usize>>,
    updates: usize,
    loss: f32,
    /// The shape of `fc1.weight` at each probe.
    probes: Vec<Vec<usize>>,
    /// The probe's forward pass panics, as a framework's does on mismatched shapes.
    probe_panics: bool,
}

impl Trainer<RefModel> for Recorder {
    fn backward(
        &mut self,
        _: &mut RefModel,
        _: &Dataset,
        rows: &[usize],
    ) -> prune_core::Result<Option<f32>> {
        self.batches.push(rows.to_vec());
        Ok(Some(self.loss))
    }
    fn update(&mut self, _: &mut RefModel) -> prune_core::Result<Option<f32>> {
        self.updates += 1;
        Ok(None)
    }
    fn predict(
        &mut self,
        m: &RefModel,
        _: &Dataset,
        rows: &[usize],
    ) -> prune_core::Result<Vec<usize>> {
        let fc1 = m.weights()?.into_iter().find(|w| w.name == "fc1.weight");
        self.probes.push(fc1.map(|w| w.shape).unwrap_or_default());
        if self.probe_panics {
            panic!("mat1 and mat2 shapes cannot be multiplied (4x3 and 2x3)");
        }
        Ok(vec![0; rows.len()])
    }
}

/// fc1 (3 -> 4 units) feeding fc2 (4 -> 2), in a numbered chain.
fn chain() -> RefModel {
    let mut m = RefModel::default();
    m.push(
        "fc1.weight",
        &[4, 3],
        (1..=12).map(|v| v as f32).collect(),
        Layout::Canonical,
    );
    m.push(
        "fc2.weight",
        &[2, 4],
        (1..=8).map(|v| v as f32).collect(),
        Layout::Canonical,
    );
    m
}

/// A shrink of fc1 to 2 units by L1 norm at the end of epoch 0 of 2.
const SHRINK: &str = "
pruning:
  train:
    end_epoch: 2
    dataloader: {batch_size: 4}
  approach:
    weight_compression:
      start_epoch: 0
      end_epoch: 0
      pruners:
        - !Pruner
            prune_type: gradient_sensitivity
            names: ['fc1.weight']
            parameters: {target: 2, stride: 1, importance_metric: l1_norm}
";

/// Rows of three features in two classes.
fn three_features(rows: usize) -> Dataset {
    let text: String = (0..rows).map(|i| format!("{i},1,2,{}\n", i % 2)).collect();
    Dataset::from_csv(&text, 1.0).unwrap()
}

#[test]
fn fit_probes_the_model_once_after_a_shrink() {
    let mut p: Pruning<Reference> = Pruning::from_yaml(SHRINK).unwrap();
    let cfg = train(&p);
    let (mut m, mut t) = (chain(), Recorder::default());
    fit(&mut p, &mut m, &three_features(8), &cfg, &mut t).unwrap();
    assert_eq!(p.shrinks(), 1);
    assert_eq!(t.probes, vec![vec![2, 3]], "one probe, at the new shape");
}

#[test]
fn a_probe_that_panics_becomes_an_error_naming_the_shrink() {
    let mut p: Pruning<Reference> = Pruning::from_yaml(SHRINK).unwrap();
    let cfg = train(&p);
    let (mut m, mut t) = (
        chain(),
        Recorder {
            probe_panics: true,
            ..Default::default()
        },
    );
    let err = fit(&mut p, &mut m, &three_features(8), &cfg, &mut t)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the probe batch after the structured shrink before epoch 1 failed")
            && err.contains("mat1 and mat2 shapes cannot be multiplied"),
        "{err}"
    );
    assert_eq!(t.batches.len(), 2, "epoch 1 never started");
}

fn train(p: &Pruning<Reference>) -> TrainConfig {
    TrainConfig::from_config(p.config(), "test").unwrap()
}

fn data(rows: usize) -> Dataset {
    let text: String = (0..rows).map(|i| format!("{i},{}\n", i % 2)).collect();
    Dataset::from_csv(&text, 1.0).unwrap()
}

fn model() -> RefModel {
    let mut m = RefModel::default();
    m.push(
        "fc.weight",
        &[2, 4],
        (1..=8).map(|v| v as f32).collect(),
        Layout::Canonical,
    );
    m
}

#[test]
fn fit_runs_the_train_section_with_the_hooks() {
    let mut p: Pruning<Reference> = Pruning::from_yaml(YAML).unwrap();
    let cfg = train(&p);
    let (mut m, mut t) = (
        model(),
        Recorder {
            loss: 0.5,
            ..Default::default()
        },
    );
    let logs = fit(&mut p, &mut m, &data(10), &cfg, &mut t).unwrap();
    // Two epochs of at most two batches of four rows; every row of a batch is distinct.
    assert_eq!(logs.iter().map(|l| l.steps).collect::<Vec<_>>(), vec![2, 2]);
    assert_eq!((t.batches.len(), t.updates, p.steps()), (4, 4, 4));
    assert!(t.batches.iter().all(|b| b.len() == 4));
    assert!(logs.iter().all(|l| (l.mean_loss - 0.5).abs() < 1e-12));
    assert_eq!(p.mask_counts()[0].1, 4, "the schedule reached its target");
}

#[test]
fn a_non_finite_loss_stops_before_the_optimizer_step() {
    let mut p: Pruning<Reference> = Pruning::from_yaml(YAML).unwrap();
    let cfg = train(&p);
    let (mut m, mut t) = (
        model(),
        Recorder {
            loss: f32::NAN,
            ..Default::default()
        },
    );
    let err = fit(&mut p, &mut m, &data(10), &cfg, &mut t)
        .unwrap_err()
        .to_string();
    assert!(err.contains("loss is NaN"), "{err}");
    assert_eq!((t.batches.len(), t.updates), (1, 0));
}

#[test]
fn an_empty_dataset_is_refused_before_any_hook() {
    let mut p: Pruning<Reference> = Pruning::from_yaml(YAML).unwrap();
    let cfg = train(&p);
    let (mut m, mut t) = (model(), Recorder::default());
    let empty = data(4).subset(&[]);
    let err = fit(&mut p, &mut m, &empty, &cfg, &mut t)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no training rows"), "{err}");
    assert_eq!(p.mask_counts(), Vec::new(), "no pruner was bound");
    assert!(t.batches.is_empty());
}

#[test]
fn accuracy_counts_matching_labels_and_refuses_short_predictions() {
    let d = data(6); // labels 0 1 0 1 0 1
    assert_eq!(accuracy(&d, |rows| Ok(vec![0; rows.len()])).unwrap(), 0.5);
    assert_eq!(
        accuracy(&d, |rows| Ok(rows.iter().map(|r| r % 2).collect())).unwrap(),
        1.0
    );
    assert!(accuracy(&d, |_| Ok(vec![0])).is_err());
}

#[test]
fn a_bad_train_section_is_refused_by_the_loop_not_by_the_session() {
    let yaml = YAML.replace(
        "dataloader: {batch_size: 4}",
        "dataloader: {batch_size: 0}\n    optimizer: {RMSprop: {learning_rate: 0.1}}",
    );
    // A user's own loop never reads the train section: the session takes the file.
    let p: Pruning<Reference> = Pruning::from_yaml(&yaml).unwrap();
    let err = TrainConfig::from_config(p.config(), "cfg.yaml")
        .unwrap_err()
        .to_string();
    for want in [
        "cfg.yaml",
        "pruning.train.dataloader.batch_size: 0 must be >= 1",
        "pruning.train.optimizer.RMSprop: unknown optimizer `RMSprop`; INC defines SGD, Adam, AdamW",
    ] {
        assert!(err.contains(want), "{want} not in {err}");
    }
    let without = YAML.replace(
        "  train:\n    end_epoch: 2\n    iteration: 2\n    dataloader: {batch_size: 4}\n",
        "",
    );
    let p: Pruning<Reference> = Pruning::from_yaml(&without).unwrap();
    let err = TrainConfig::from_config(p.config(), "cfg.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("pruning.train: missing"), "{err}");
}

#[test]
fn shuffle_false_keeps_row_order_and_discard_skips_the_short_batch() {
    let run = |dataloader: &str| {
        let yaml = YAML
            .replace("    iteration: 2\n", "")
            .replace("{batch_size: 4}", dataloader);
        let mut p: Pruning<Reference> = Pruning::from_yaml(&yaml).unwrap();
        let cfg = train(&p);
        let (mut m, mut t) = (model(), Recorder::default());
        let logs = fit(&mut p, &mut m, &data(10), &cfg, &mut t).unwrap();
        (logs.iter().map(|l| l.steps).collect::<Vec<_>>(), t.batches)
    };
    let in_order: Vec<Vec<usize>> = vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]];
    let (steps, batches) = run("{batch_size: 4, shuffle: False}");
    assert_eq!(steps, vec![3, 3]);
    assert_eq!(batches[..3], in_order[..]);
    assert_eq!(batches[3..], in_order[..]);
    let (steps, batches) = run("{batch_size: 4, shuffle: False, last_batch: discard}");
    assert_eq!(steps, vec![2, 2]);
    assert_eq!(batches[..2], in_order[..2]);
    // Shuffled (the default), the two epochs see different orders.
    let (_, batches) = run("{batch_size: 4}");
    assert_ne!(batches[..3], batches[3..]);
}
