//! Configuration loading: every YAML file in the repository, INC files as written, and bad input.

use prune::config::{ImportanceMetric, Pattern, PruneType};
use prune::train::{OptimizerConfig, TrainConfig};
use prune::{PruneError, PruningConfig};
use std::path::{Path, PathBuf};

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            // INC's own files are read by `every_config_inc_publishes_loads`.
            if !["target", ".git", ".deps", "node_modules", "upstream"].contains(&name.as_str()) {
                yaml_files(&path, out);
            }
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(path);
        }
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_pruning_yaml_in_the_repository_loads() {
    let mut files = Vec::new();
    for dir in ["examples", "tests", "docs"] {
        if repo().join(dir).exists() {
            yaml_files(&repo().join(dir), &mut files);
        }
    }
    assert!(
        files.len() >= 7,
        "expected the example and fixture configs, found {files:?}"
    );
    for f in files {
        let config = PruningConfig::from_file(&f).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !config.weight_compression.pruners.is_empty(),
            "{}",
            f.display()
        );
    }
}

/// Reads `tests/fixtures/inc/upstream/README.md`'s table: the file names it lists.
fn listed_upstream_files() -> Vec<String> {
    let readme =
        std::fs::read_to_string(repo().join("tests/fixtures/inc/upstream/README.md")).unwrap();
    readme
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(" |").next())
        .filter(|name| name.ends_with(".yaml"))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_config_inc_publishes_loads() {
    use prune_core::testing::reference::Reference;
    let dir = repo().join("tests/fixtures/inc/upstream");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut listed = listed_upstream_files();
    listed.sort();
    assert_eq!(files, listed, "the folder and its README's table differ");
    assert!(
        files.len() >= 40,
        "INC's example, template and test-suite configs: {files:?}"
    );
    let (mut loaded, mut with_train, mut step_based) = (0, 0, 0);
    for name in &files {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let result = PruningConfig::from_file(&path);
        if text.contains("weight_compression_pytorch:") {
            // INC 1.13's step-based pruners (snip_momentum, ...): a different algorithm family.
            let err = result.expect_err(name).to_string();
            assert!(
                err.contains("pruning.approach.weight_compression_pytorch")
                    && err.contains("step-based"),
                "{name}: {err}"
            );
            step_based += 1;
            continue;
        }
        let config = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        prune::Pruning::<Reference>::new(config.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        if config.train.is_some() {
            TrainConfig::read(&config, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            with_train += 1;
        }
        loaded += 1;
    }
    assert!(
        loaded >= 20 && with_train >= 12,
        "{loaded} loaded, {with_train} with a train section"
    );
    assert_eq!(step_based, 8, "files of INC's step-based pruners");
}

#[test]
fn inc_train_settings_are_honoured_or_reported() {
    let dir = repo().join("tests/fixtures/inc/upstream");
    let read = |name: &str| {
        let c = PruningConfig::from_file(dir.join(name)).unwrap();
        TrainConfig::read(&c, name).unwrap()
    };
    // `epoch` counts the epochs when end_epoch is absent; AdamW with its weight decay;
    // Keras' reduction and from_logits.
    let vit = read("test-test_config-2.yaml");
    assert_eq!((vit.start_epoch, vit.end_epoch), (0, Some(15)));
    assert_eq!(
        vit.optimizer,
        OptimizerConfig::AdamW(prune_train::AdamParams {
            learning_rate: 0.001,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            weight_decay: 0.0001,
            amsgrad: false
        })
    );
    assert_eq!(
        vit.criterion,
        prune::train::Criterion::CrossEntropyLoss {
            reduction: prune::train::Reduction::Mean,
            from_logits: true
        }
    );
    // INC's data pipeline is reported as unused by fit(), which takes data from code.
    let template = read("neural_compressor-template-pruning.yaml");
    let paths: Vec<&str> = template.unused.iter().map(|u| u.path.as_str()).collect();
    assert!(
        paths.contains(&"pruning.train.dataloader.dataset")
            && paths.contains(&"pruning.train.hostfile"),
        "{paths:?}"
    );
    assert!(template.unused.iter().all(|u| !u.blocks_fit));
    let c = PruningConfig::from_file(dir.join("neural_compressor-template-pruning.yaml")).unwrap();
    TrainConfig::from_config(&c, "template").unwrap();
}

#[test]
fn a_distillation_loss_is_accepted_but_fit_refuses_it() {
    let yaml = "pruning:\n  train:\n    optimizer: {SGD: {learning_rate: 0.001}}\n    criterion:\n      \
        KnowledgeDistillationLoss: {temperature: 1.0, loss_types: ['CE', 'KL'], loss_weights: [0.5, 0.5]}\n  \
        approach:\n    weight_compression:\n      pruners:\n        - !Pruner\n            names: ['fc1.weight']\n";
    let c = PruningConfig::from_yaml(yaml).unwrap();
    let train = TrainConfig::read(&c, "kd").unwrap();
    assert_eq!(train.unused.len(), 1);
    assert!(train.unused[0].blocks_fit);
    let err = TrainConfig::from_config(&c, "kd").unwrap_err().to_string();
    assert!(
        err.contains("pruning.train.criterion.KnowledgeDistillationLoss")
            && err.contains("teacher")
            && err.contains("fit() cannot run it"),
        "{err}"
    );
    // INC's own limits on its parameters still apply.
    let bad = yaml.replace("[0.5, 0.5]", "[0.5, 0.6]");
    let err = TrainConfig::read(&PruningConfig::from_yaml(&bad).unwrap(), "kd")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("loss_weights") && err.contains("sum to 1.1"),
        "{err}"
    );
}

fn fixture(name: &str) -> PruningConfig {
    PruningConfig::from_file(repo().join("tests/fixtures/inc").join(name)).unwrap()
}

#[test]
fn the_inc_template_loads_as_written() {
    let c = fixture("template.yaml");
    let train = TrainConfig::from_config(&c, "template.yaml").unwrap();
    assert_eq!(
        (
            train.start_epoch,
            train.end_epoch,
            train.iteration,
            train.frequency
        ),
        (0, Some(10), Some(100), Some(2))
    );
    assert_eq!(train.batch_size, 256);
    assert_eq!(train.epochs(&c), 0..10);
    let no_end = PruningConfig::from_yaml(
        &std::fs::read_to_string(repo().join("tests/fixtures/inc/template.yaml"))
            .unwrap()
            .replace("    end_epoch: 10\n", ""),
    )
    .unwrap();
    assert_eq!(
        TrainConfig::from_config(&no_end, "no_end")
            .unwrap()
            .epochs(&no_end),
        0..3,
        "one past the last scheduled epoch (pruner end_epoch 2)"
    );
    assert!(
        TrainConfig::from_config(&fixture("resnet_magnitude.yaml"), "resnet").is_err(),
        "no train section"
    );
    assert_eq!(
        train.optimizer,
        OptimizerConfig::Sgd {
            learning_rate: 0.1,
            momentum: 0.9,
            weight_decay: 0.0004,
            nesterov: false
        }
    );
    let wc = &c.weight_compression;
    assert_eq!(
        (
            wc.initial_sparsity,
            wc.target_sparsity,
            wc.start_epoch,
            wc.end_epoch,
            wc.frequency
        ),
        (0.0, 0.3, 0, 4, 1.0)
    );
    let p = &c.resolved_pruners()[0];
    assert_eq!(p.prune_type, PruneType::BasicMagnitude);
    assert_eq!(p.names, vec!["layer1.0.conv1.weight"]);
    assert_eq!(
        (p.target_sparsity, p.end_epoch, p.frequency),
        (0.97, 2, 0.1)
    );
    let params = &p.parameters;
    assert_eq!(
        (params.target, params.stride, params.index),
        (Some(8), Some(64), Some(0))
    );
    assert!(params.transpose && params.normalize);
    assert_eq!(params.importance_inputs, vec!["head_mask"]);
    assert_eq!(params.importance_metric, ImportanceMetric::AbsGradient);
}

#[test]
fn pruner_values_fall_back_to_globals_only_when_absent() {
    let c = fixture("mobilenet_frequency.yaml");
    let p = c.resolved_pruners();
    assert_eq!(p[0].target_sparsity, 0.5, "absent: global value");
    assert_eq!(p[0].initial_sparsity, 0.0, "0 is a value, not absence");
    assert_eq!(p[1].initial_sparsity, 0.05, "absent: global value");
    assert_eq!((p[0].frequency, p[0].start_epoch), (2.0, 1));
    assert_eq!(p[0].pattern, Pattern::Tile { rows: 4, cols: 1 });
    assert_eq!(p[1].pattern, Pattern::NOfM { n: 2, m: 4 });
    assert!(
        matches!(TrainConfig::from_config(&c, "mobilenet").unwrap().optimizer, OptimizerConfig::Adam(p) if p.learning_rate == 0.0001)
    );
}

#[test]
fn structured_and_group_lasso_files_load() {
    let c = fixture("bert_heads_gradient_sensitivity.yaml");
    let p = c.resolved_pruners();
    assert_eq!(p.len(), 3);
    assert_eq!(p[0].names.len(), 6);
    assert_eq!(
        (p[0].parameters.target, p[0].parameters.stride),
        (Some(8), Some(64))
    );
    assert!(p[1].parameters.transpose);
    assert_eq!(
        p[2].parameters.importance_metric,
        ImportanceMetric::WeightedGradient
    );
    assert_eq!(p[2].end_epoch, 1, "global end_epoch");
    let g = fixture("bert_group_lasso.yaml").resolved_pruners();
    assert_eq!(g[0].parameters.alpha, Some(0.006));
    assert_eq!(
        g[0].pattern,
        Pattern::Tile { rows: 1, cols: 2 },
        "pattern inside parameters is honoured"
    );
    assert_eq!(
        fixture("bert_pattern_lock.yaml").resolved_pruners()[0].prune_type,
        PruneType::PatternLock
    );
}

fn problems(yaml: &str) -> Vec<String> {
    match PruningConfig::from_yaml(yaml) {
        Err(PruneError::Config { problems, .. }) => {
            problems.0.iter().map(|p| p.to_string()).collect()
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

const HEAD: &str = "pruning:\n  approach:\n    weight_compression:\n";

#[test]
fn every_problem_is_reported_with_its_path() {
    let yaml = format!(
        "{HEAD}      target_sparsity: 1.5\n      start_epoch: 5\n      end_epoch: 2\n      pruners:\n        - !Pruner\n            \
         prune_type: basic_magnitude\n            target_sparsty: 0.5\n        - !Pruner\n            prune_type: magnitude\n"
    );
    let p = problems(&yaml);
    let want = [
        "pruning.approach.weight_compression.target_sparsity: 1.5 is not in [0, 1)",
        "pruning.approach.weight_compression.start_epoch: 5 is after end_epoch 2",
        "pruning.approach.weight_compression.pruners[0].target_sparsty: unknown key; did you mean `target_sparsity`?",
        "pruning.approach.weight_compression.pruners[1].prune_type: unknown prune_type `magnitude`",
    ];
    for w in want {
        assert!(
            p.iter().any(|x| x.starts_with(w)),
            "missing `{w}` in {p:#?}"
        );
    }
    assert!(p.iter().any(|x| x
        .contains("supported: basic_magnitude, pattern_lock, gradient_sensitivity, group_lasso")));
}

#[test]
fn wrong_types_and_ranges_are_named() {
    let yaml = format!(
        "{HEAD}      frequency: 0\n      pruners:\n        - !Pruner\n            prune_type: basic_magnitude\n            \
         names: fc1.weight\n            start_epoch: -1\n            pattern: 3y3\n            parameters: {{transpose: maybe}}\n"
    );
    let p = problems(&yaml);
    for w in [
        "weight_compression.frequency: 0 must be > 0",
        "pruners[0].start_epoch: expected a whole number >= 0, found -1",
        "pruners[0].pattern: `3y3` is not a pattern",
        "pruners[0].parameters.transpose: expected True or False, found a string",
    ] {
        assert!(p.iter().any(|x| x.contains(w)), "missing `{w}` in {p:#?}");
    }
}

#[test]
fn malformed_yaml_gives_line_and_column() {
    let err = PruningConfig::from_yaml("pruning:\n  approach: [unclosed\n").unwrap_err();
    match err {
        PruneError::Yaml { line, column, .. } => {
            assert!(line >= 2 && column > 0, "line {line} column {column}")
        }
        other => panic!("expected a YAML error, got {other:?}"),
    }
}

#[test]
fn missing_sections_and_bad_train_values_are_named() {
    assert!(problems("model: {name: x}\n")[0].starts_with("pruning: missing"));
    assert!(problems("pruning:\n  train: {}\n")[0].starts_with("pruning.approach: missing"));
    let yaml = "pruning:\n  train:\n    optimizer:\n      RMSprop: {learning_rate: 0.1}\n    dataloader: {batch_size: 0}\n  \
                approach:\n    weight_compression:\n      pruners:\n        - !Pruner\n            prune_type: group_lasso\n";
    let p = problems(yaml);
    assert!(
        p.iter()
            .any(|x| x.contains("pruners[0].parameters.alpha: missing")),
        "{p:#?}"
    );
    // The train section is the built-in loop's: read when fit() or `prune check` reads it.
    let with_alpha = yaml.replace(
        "group_lasso\n",
        "group_lasso\n            parameters: {alpha: 0.1}\n",
    );
    let c = PruningConfig::from_yaml(&with_alpha).unwrap();
    let err = TrainConfig::from_config(&c, "<string>")
        .unwrap_err()
        .to_string();
    for w in [
        "pruning.train.optimizer.RMSprop: unknown optimizer `RMSprop`; INC defines SGD, Adam, AdamW",
        "pruning.train.dataloader.batch_size: 0 must be >= 1",
    ] {
        assert!(err.contains(w), "missing `{w}` in {err}");
    }
}

/// INC's own FastFormers config for BERT-base, as written, runs on a one-layer BERT-base-shaped
/// model: 12 -> 8 heads of 64, FFN 3072 -> 2048, and `output.dense` (which the file does not
/// name) follows the FFN so the layer stays consistent.
#[test]
fn inc_bert_head_pruning_config_runs_as_written() {
    use prune::{Layout, Model};
    use prune_core::testing::reference::{RefModel, RefTensor};
    let mut m = RefModel::default();
    let p = "bert.encoder.layer.0.";
    let shapes: [(&str, Vec<usize>); 12] = [
        ("attention.self.query.weight", vec![768, 768]),
        ("attention.self.query.bias", vec![768]),
        ("attention.self.key.weight", vec![768, 768]),
        ("attention.self.key.bias", vec![768]),
        ("attention.self.value.weight", vec![768, 768]),
        ("attention.self.value.bias", vec![768]),
        ("attention.output.dense.weight", vec![768, 768]),
        ("attention.output.dense.bias", vec![768]),
        ("intermediate.dense.weight", vec![3072, 768]),
        ("intermediate.dense.bias", vec![3072]),
        ("output.dense.weight", vec![768, 3072]),
        ("output.dense.bias", vec![768]),
    ];
    for (k, (name, shape)) in shapes.iter().enumerate() {
        let n: usize = shape.iter().product();
        let values = prune_core::testing::conformance::values(k as u64, n);
        m.push(&format!("{p}{name}"), shape, values, Layout::Canonical);
    }
    let mut pruning = prune::Pruning::<prune_core::Reference>::new(fixture(
        "bert_heads_gradient_sensitivity.yaml",
    ))
    .unwrap();
    let ffn = format!("{p}intermediate.dense.weight");
    for epoch in 0..2 {
        pruning.on_epoch_begin(&mut m, epoch).unwrap();
        pruning.on_step_begin(&mut m).unwrap();
        let head_grad = prune_core::testing::conformance::values(100 + epoch as u64, 12);
        pruning
            .record_input_gradient("head_mask", &[1, 12], &head_grad)
            .unwrap();
        let g = prune_core::testing::conformance::values(200 + epoch as u64, 3072 * 768);
        m.set_gradients(vec![(
            m.weight_id(&ffn).unwrap(),
            RefTensor {
                data: g,
                shape: vec![3072, 768],
            },
        )])
        .unwrap();
        pruning.on_before_optimizer_step(&mut m).unwrap();
        pruning.on_step_end(&mut m).unwrap();
        pruning.on_epoch_end(&mut m).unwrap();
    }
    let shape = |name: &str| {
        m.weights()
            .unwrap()
            .into_iter()
            .find(|w| w.name == format!("{p}{name}"))
            .unwrap()
            .shape
    };
    for w in ["query", "key", "value"] {
        assert_eq!(shape(&format!("attention.self.{w}.weight")), vec![512, 768]);
        assert_eq!(shape(&format!("attention.self.{w}.bias")), vec![512]);
    }
    assert_eq!(shape("attention.output.dense.weight"), vec![768, 512]);
    assert_eq!(shape("attention.output.dense.bias"), vec![768]);
    assert_eq!(shape("intermediate.dense.weight"), vec![2048, 768]);
    assert_eq!(shape("intermediate.dense.bias"), vec![2048]);
    assert_eq!(shape("output.dense.weight"), vec![768, 2048]);
    let outcome = pruning.structured_outcome();
    assert_eq!(
        outcome[0].kept, outcome[1].kept,
        "Q/K/V and the attention output keep the same heads"
    );
    assert_eq!(outcome[0].kept.as_ref().unwrap().len(), 8);
    assert!(prune::Pruning::<prune_core::Reference>::new(fixture("bert_group_lasso.yaml")).is_ok());
}
