//! The structured examples' promises on real data (burn): locked zeros, exact blocks, exact N:M
//! groups, and a compacted layer pair that computes the same outputs.

#![cfg(feature = "burn")]
#![allow(dead_code)]

#[path = "../examples/structured.rs"]
mod structured;

use burn::tensor::Device;

fn device() -> Device {
    let d = Device::flex().autodiff();
    d.seed(42);
    d
}

#[test]
fn pattern_lock_fine_tuning_keeps_every_zero_and_recovers_accuracy() {
    let run = structured::pattern_lock(&device()).unwrap();
    assert_eq!(run.extra["zeros_kept_in_place"], true);
    let one_shot = run.extra["one_shot_accuracy"].as_f64().unwrap();
    assert!(
        run.pruned > one_shot,
        "fine-tuning did not help: {one_shot} -> {}",
        run.pruned
    );
    for l in &run.report.layers {
        assert_eq!(
            l.zeros,
            (0.8 * l.numel as f64).round() as usize,
            "{}",
            l.name
        );
    }
}

#[test]
fn group_lasso_removes_exactly_the_scheduled_blocks() {
    let run = structured::group_lasso_blocks(&device()).unwrap();
    assert_eq!(run.extra["block_sparsity"].as_f64(), Some(0.75));
    assert!(
        run.pruned >= run.dense - 0.02,
        "{} vs dense {}",
        run.pruned,
        run.dense
    );
}

#[test]
fn whole_rows_compact_into_a_smaller_layer_with_the_same_outputs() {
    let run = structured::rows(&device()).unwrap();
    assert_eq!(run.extra["hidden_units"]["after"].as_u64(), Some(128));
    assert!(
        run.extra["max_logit_difference_after_compaction"]
            .as_f64()
            .unwrap()
            < 1e-4
    );
    assert_eq!(run.extra["compacted_accuracy"].as_f64(), Some(run.pruned));
}

#[test]
fn two_of_four_holds_in_every_group() {
    let run = structured::n_of_m(&device()).unwrap();
    assert_eq!(run.extra["nm_groups_exact"].as_f64(), Some(1.0));
    assert!((run.report.overall() - 0.5).abs() < 1e-12);
    assert!(
        run.pruned >= run.dense - 0.02,
        "{} vs dense {}",
        run.pruned,
        run.dense
    );
}
