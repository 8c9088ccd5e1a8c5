//! The optimizer settings read from the `train` section, and their serialized form, which the
//! `AdamParams` refactor keeps byte for byte.

use prune_core::PruningConfig;
use prune_train::TrainConfig;

fn optimizer_yaml(optimizer: &str) -> String {
    let yaml = format!(
        "pruning:\n  train:\n    optimizer: {optimizer}\n  approach:\n    weight_compression:\n      pruners:\n        - !Pruner\n            names: ['w']\n"
    );
    let c = PruningConfig::from_yaml(&yaml).unwrap();
    serde_yaml::to_string(&TrainConfig::from_config(&c, "cfg").unwrap().optimizer).unwrap()
}

#[test]
fn the_serialized_optimizer_is_tagged_by_kind_with_every_setting() {
    assert_eq!(
        optimizer_yaml("{Adam: {learning_rate: 0.002, amsgrad: True}}"),
        "kind: Adam\nlearning_rate: 0.002\nbeta_1: 0.9\nbeta_2: 0.999\nepsilon: 1e-7\nweight_decay: 0.0\namsgrad: true\n"
    );
    assert_eq!(
        optimizer_yaml("{AdamW: {weight_decay: 0.01, beta_2: 0.98}}"),
        "kind: AdamW\nlearning_rate: 0.001\nbeta_1: 0.9\nbeta_2: 0.98\nepsilon: 1e-7\nweight_decay: 0.01\namsgrad: false\n"
    );
    assert_eq!(
        optimizer_yaml("{SGD: {learning_rate: 0.1, momentum: 0.9}}"),
        "kind: SGD\nlearning_rate: 0.1\nmomentum: 0.9\nweight_decay: 0.0\nnesterov: false\n"
    );
}
