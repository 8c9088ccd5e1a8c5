//! The quickstart's promise, checked on real data: 90% sparsity within 1.5 points of dense.

#![allow(dead_code)]

#[path = "../examples/quickstart/common.rs"]
mod common;

use common::{Outcome, Settings};
use prune::PruningConfig;

fn check(backend: &str, o: &Outcome) {
    let sparsity = o.report.overall();
    assert!(
        sparsity >= 0.899,
        "{backend}: sparsity {sparsity} below 0.899"
    );
    for l in &o.report.layers {
        let want = (0.9 * l.numel as f64).round() as usize;
        assert_eq!(
            l.zeros, want,
            "{backend}: {} has {} zeros, expected exactly {want}",
            l.name, l.zeros
        );
    }
    assert!(
        o.dense_accuracy > 0.9,
        "{backend}: dense accuracy {} is implausibly low",
        o.dense_accuracy
    );
    assert!(
        o.pruned_accuracy >= o.dense_accuracy - 0.015,
        "{backend}: pruned accuracy {} more than 1.5 points below dense {}",
        o.pruned_accuracy,
        o.dense_accuracy
    );
}

/// The hidden-units config: 512 -> 128 units of the digits MLP, shrunk inside `fit()`, and the
/// smaller model keeps training to within 2 points of dense.
fn check_hidden_units(backend: &str, o: &Outcome) {
    let (features, hidden, classes) = (64, 128, 10);
    let want = features * hidden + hidden + hidden * classes + classes;
    assert_eq!(o.params, want, "{backend}: parameters after the shrink");
    assert!(
        o.pruned_accuracy >= o.dense_accuracy - 0.02,
        "{backend}: {} after shrinking 512 -> 128 units vs dense {}",
        o.pruned_accuracy,
        o.dense_accuracy
    );
}

const HIDDEN_UNITS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/configs/quickstart_hidden_units.yaml"
);

#[cfg(feature = "burn")]
#[path = "../examples/quickstart/burn_run.rs"]
mod burn_run;

#[cfg(feature = "burn")]
#[test]
fn hidden_units_shrink_inside_fit_on_burn() {
    let config = PruningConfig::from_file(HIDDEN_UNITS).unwrap();
    let (train, test) = common::digits().unwrap();
    let outcome = burn_run::run(&config, &train, &test, Settings::default()).unwrap();
    check_hidden_units("burn", &outcome);
}

#[cfg(feature = "torch")]
#[test]
fn hidden_units_shrink_inside_fit_on_torch() {
    let config = PruningConfig::from_file(HIDDEN_UNITS).unwrap();
    let (train, test) = common::digits().unwrap();
    let outcome = torch_run::run(&config, &train, &test, Settings::default()).unwrap();
    check_hidden_units("torch", &outcome);
}

#[cfg(feature = "burn")]
#[test]
fn quickstart_meets_its_target_on_burn() {
    let config = PruningConfig::from_file(common::CONFIG).unwrap();
    let (train, test) = common::digits().unwrap();
    let outcome = burn_run::run(&config, &train, &test, Settings::default()).unwrap();
    check("burn", &outcome);
}

#[cfg(feature = "torch")]
#[path = "../examples/quickstart/torch_run.rs"]
mod torch_run;

#[cfg(feature = "torch")]
#[test]
fn quickstart_meets_its_target_on_torch() {
    let config = PruningConfig::from_file(common::CONFIG).unwrap();
    let (train, test) = common::digits().unwrap();
    let outcome = torch_run::run(&config, &train, &test, Settings::default()).unwrap();
    check("torch", &outcome);
}

#[cfg(feature = "tf")]
#[path = "../examples/quickstart/tf_run.rs"]
mod tf_run;

#[cfg(feature = "tf")]
#[test]
fn quickstart_meets_its_target_on_tf() {
    let config = PruningConfig::from_file(common::CONFIG).unwrap();
    let (train, test) = common::digits().unwrap();
    let outcome = tf_run::run(&config, &train, &test, Settings::default()).unwrap();
    check("tf", &outcome);
}
