//! Every problem of the `train` section and of the CSV datasets the built-in loop reads, each
//! naming its YAML path (or file and line) and what is wrong: the rows of docs/errors.md that
//! point here.

use prune_core::{PruneError, PruningConfig};
use prune_train::{accuracy, Dataset, TrainConfig};
use std::io::Write;

const T: &str = "pruning.train";

/// A config whose train section is `train` (lines under `train:`).
fn config(train: &str) -> PruningConfig {
    let mut y = String::from("pruning:\n  train:\n");
    for line in train.lines() {
        y += &format!("    {line}\n");
    }
    y += "  approach:\n    weight_compression:\n      target_sparsity: 0.5\n      pruners:\n        \
          - !Pruner\n            names: ['fc1.weight']\n";
    PruningConfig::from_yaml(&y).unwrap_or_else(|e| panic!("{e}\n{y}"))
}

/// The problems `TrainConfig::read` reports, one string each, after the source name.
fn problems(train: &str) -> Vec<String> {
    match TrainConfig::read(&config(train), "f.yaml") {
        Err(PruneError::Config {
            source_name,
            problems,
        }) => {
            assert_eq!(source_name, "f.yaml");
            problems.0.iter().map(|p| p.to_string()).collect()
        }
        other => panic!("expected a config error for\n{train}\ngot {other:?}"),
    }
}

#[test]
fn every_train_section_problem_names_its_path_and_what_is_wrong() {
    let kd = "criterion:\n  KnowledgeDistillationLoss:";
    let il = "criterion:\n  IntermediateLayersKnowledgeDistillationLoss:";
    let cases: Vec<(String, String)> = vec![
        // The section and its epochs.
        ("epochs: 2".into(), format!("{T}.epochs: unknown key; did you mean `epoch`?")),
        (
            "start_epoch: 3\nend_epoch: 2".into(),
            format!("{T}.end_epoch: 2 must be after start_epoch 3"),
        ),
        (
            "end_epoch: 0".into(),
            format!("{T}.end_epoch: 0 must be after start_epoch 0"),
        ),
        (
            "epoch: 0".into(),
            format!("{T}.epoch: 0 would run no epoch; must be >= 1"),
        ),
        (
            "iteration: 0".into(),
            format!("{T}.iteration: 0 would run no step; must be >= 1"),
        ),
        (
            "seed: -1".into(),
            format!("{T}.seed: expected a whole number >= 0, found -1"),
        ),
        (
            "execution_mode: lazy".into(),
            format!("{T}.execution_mode: unknown execution_mode `lazy`; INC accepts eager, graph"),
        ),
        // The dataloader.
        (
            "dataloader: 4".into(),
            format!("{T}.dataloader: expected a mapping, found a number"),
        ),
        (
            "dataloader: {batchsize: 4}".into(),
            format!("{T}.dataloader.batchsize: unknown key; did you mean `batch_size`?"),
        ),
        (
            "dataloader: {batch_size: 0}".into(),
            format!("{T}.dataloader.batch_size: 0 must be >= 1"),
        ),
        (
            "dataloader: {last_batch: keep}".into(),
            format!(
                "{T}.dataloader.last_batch: unknown last_batch `keep`; INC accepts rollover, discard"
            ),
        ),
        (
            "dataloader: {shuffle: maybe}".into(),
            format!("{T}.dataloader.shuffle: expected True or False, found a string"),
        ),
        // The optimizer.
        (
            "optimizer: {SGD: {}, Adam: {}}".into(),
            format!("{T}.optimizer: expected exactly one entry such as `SGD: {{...}}`, found 2"),
        ),
        (
            "optimizer: {7: {}}".into(),
            format!("{T}.optimizer: the entry's key must be a name"),
        ),
        (
            "optimizer: {SGD: 0.1}".into(),
            format!("{T}.optimizer.SGD: expected a mapping, found a number"),
        ),
        (
            "optimizer: {RMSprop: {learning_rate: 0.1}}".into(),
            format!("{T}.optimizer.RMSprop: unknown optimizer `RMSprop`; INC defines SGD, Adam, AdamW"),
        ),
        (
            "optimizer: {SDG: {learning_rate: 0.1}}".into(),
            format!(
                "{T}.optimizer.SDG: unknown optimizer `SDG` (did you mean `SGD`?); INC defines \
                 SGD, Adam, AdamW"
            ),
        ),
        (
            "optimizer: {SGD: {learning_rat: 0.1}}".into(),
            format!("{T}.optimizer.SGD.learning_rat: unknown key; did you mean `learning_rate`?"),
        ),
        (
            "optimizer: {SGD: {learning_rate: -0.1}}".into(),
            format!("{T}.optimizer.SGD.learning_rate: -0.1 must be a finite number >= 0"),
        ),
        (
            "optimizer: {SGD: {momentum: fast}}".into(),
            format!("{T}.optimizer.SGD.momentum: expected a number, found a string"),
        ),
        (
            "optimizer: {AdamW: {learning_rate: 0.001}}".into(),
            format!("{T}.optimizer.AdamW.weight_decay: missing: INC requires it for AdamW"),
        ),
        (
            "optimizer: {Adam: {beta_1: 1.0}}".into(),
            format!("{T}.optimizer.Adam.beta_1: 1 must be < 1"),
        ),
        (
            "optimizer: {AdamW: {weight_decay: 0.01, beta_2: 1.5}}".into(),
            format!("{T}.optimizer.AdamW.beta_2: 1.5 must be < 1"),
        ),
        (
            "optimizer: {Adam: {epsilon: -1}}".into(),
            format!("{T}.optimizer.Adam.epsilon: -1 must be a finite number >= 0"),
        ),
        // The criterion.
        (
            "criterion: {MSELoss: {}}".into(),
            format!(
                "{T}.criterion.MSELoss: unknown criterion `MSELoss`; INC defines CrossEntropyLoss, \
                 SparseCategoricalCrossentropy, KnowledgeDistillationLoss, \
                 IntermediateLayersKnowledgeDistillationLoss"
            ),
        ),
        (
            "criterion: {CrossEntropyLos: {}}".into(),
            format!(
                "{T}.criterion.CrossEntropyLos: unknown criterion `CrossEntropyLos` (did you mean \
                 `CrossEntropyLoss`?)"
            ),
        ),
        (
            "criterion: {CrossEntropyLoss: {reduction: max}}".into(),
            format!(
                "{T}.criterion.CrossEntropyLoss.reduction: unknown reduction `max`; INC accepts \
                 none, sum, mean, auto, sum_over_batch_size"
            ),
        ),
        (
            "criterion: {SparseCategoricalCrossentropy: {from_logits: maybe}}".into(),
            format!(
                "{T}.criterion.SparseCategoricalCrossentropy.from_logits: expected True or False, \
                 found a string"
            ),
        ),
        (
            "criterion: {CrossEntropyLoss: {reductio: sum}}".into(),
            format!("{T}.criterion.CrossEntropyLoss.reductio: unknown key; did you mean `reduction`?"),
        ),
        // Distillation losses: accepted as INC accepts them, checked as INC's schema does.
        (
            format!("{kd} {{temperature: 0}}"),
            format!("{T}.criterion.KnowledgeDistillationLoss.temperature: 0 must be > 0"),
        ),
        (
            format!("{kd} {{loss_types: ['CE', 'L2']}}"),
            format!("{T}.criterion.KnowledgeDistillationLoss.loss_types[1]: expected one of CE, KL, MSE"),
        ),
        (
            format!("{kd} {{loss_weights: 0.5}}"),
            format!("{T}.criterion.KnowledgeDistillationLoss.loss_weights: expected a list"),
        ),
        (
            format!("{kd} {{loss_weights: [-0.5, 1.5]}}"),
            format!(
                "{T}.criterion.KnowledgeDistillationLoss.loss_weights: every weight must be a \
                 number >= 0"
            ),
        ),
        (
            format!("{kd} {{loss_weights: [0.5, 0.6]}}"),
            format!("{T}.criterion.KnowledgeDistillationLoss.loss_weights: they sum to 1.1; INC requires 1"),
        ),
        (
            format!("{kd} {{temprature: 1.0}}"),
            format!(
                "{T}.criterion.KnowledgeDistillationLoss.temprature: unknown key; did you mean \
                 `temperature`?"
            ),
        ),
        (
            format!("{il} {{loss_types: ['MSE']}}"),
            format!(
                "{T}.criterion.IntermediateLayersKnowledgeDistillationLoss.layer_mappings: \
                 missing: INC requires it"
            ),
        ),
        (
            format!("{il} {{layer_mappings: [['a.out']]}}"),
            format!(
                "{T}.criterion.IntermediateLayersKnowledgeDistillationLoss.layer_mappings[0]: \
                 expected a list of 2 or 4 layer names"
            ),
        ),
        (
            format!("{il} {{layer_mappings: [['a', 'b']], loss_types: ['CE']}}"),
            format!(
                "{T}.criterion.IntermediateLayersKnowledgeDistillationLoss.loss_types[0]: \
                 expected one of MSE, KL, L1"
            ),
        ),
        (
            format!("{il} {{layer_mappings: [['a', 'b']], add_origin_loss: maybe}}"),
            format!(
                "{T}.criterion.IntermediateLayersKnowledgeDistillationLoss.add_origin_loss: \
                 expected True or False, found a string"
            ),
        ),
    ];
    let mut failures = Vec::new();
    for (train, want) in &cases {
        let got = problems(train);
        if !got.iter().any(|p| p.starts_with(want.as_str())) {
            failures.push(format!("wanted `{want}`\n  in {got:#?}\n  from\n{train}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_missing_train_section_is_named_when_the_loop_reads_it() {
    let c = PruningConfig::from_yaml(
        "pruning:\n  approach:\n    weight_compression:\n      pruners:\n        - !Pruner\n            names: ['fc1.weight']\n",
    )
    .unwrap();
    let err = TrainConfig::from_config(&c, "f.yaml")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "f.yaml: 1 problem in the configuration\n  - pruning.train: missing: the built-in \
         training loop needs a train section (or call the hooks from your own loop)"
    );
    // A train section that is a list.
    let c = config("[1, 2]");
    let err = TrainConfig::read(&c, "f.yaml").unwrap_err().to_string();
    assert!(
        err.contains("pruning.train: expected a mapping, found a list"),
        "{err}"
    );
}

#[test]
fn a_distillation_loss_is_refused_by_fit_naming_the_teacher_it_needs() {
    let c = config(
        "criterion:\n  KnowledgeDistillationLoss: {temperature: 1.0, loss_types: ['CE', 'KL'], loss_weights: [0.5, 0.5]}",
    );
    assert!(TrainConfig::read(&c, "kd.yaml").unwrap().unused[0].blocks_fit);
    let err = TrainConfig::from_config(&c, "kd.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "pruning.train.criterion.KnowledgeDistillationLoss: KnowledgeDistillationLoss needs a \
             teacher model, which fit() is not given; fit() cannot run it (a loop of your own that \
             calls the hooks can)"
        ),
        "{err}"
    );
}

#[test]
fn every_csv_problem_names_the_line_and_the_cell() {
    let cases = [
        ("1,2,0\n3\n", "line 2: expected features and a label"),
        ("1,2,0\n3,1\n", "line 2: 2 columns, expected 3"),
        ("1,x,0\n", "line 1: `x` is not a number"),
        ("1,2,one\n", "line 1: label `one` is not a number"),
        (
            "1,2,0\n1,2,1.5\n",
            "line 2: label `1.5` is not a class index",
        ),
        ("1,2,-1\n", "line 1: label `-1` is not a class index"),
        ("\n\n", "no rows"),
    ];
    for (text, want) in cases {
        let err = Dataset::from_csv(text, 1.0).unwrap_err();
        assert_eq!(err, want, "{text:?}");
    }
}

#[test]
fn a_dataset_file_that_is_missing_or_malformed_is_an_io_error_naming_it() {
    let dir = std::env::temp_dir().join(format!("prune-train-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.csv.gz");
    let err = Dataset::from_csv_gz(&missing, 1.0).unwrap_err();
    assert!(matches!(err, PruneError::Io { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&missing.display().to_string()) && text.contains("No such file"),
        "{text}"
    );
    // Not gzip at all.
    let plain = dir.join("plain.csv.gz");
    std::fs::write(&plain, "1,2,0\n").unwrap();
    let text = Dataset::from_csv_gz(&plain, 1.0).unwrap_err().to_string();
    assert!(text.starts_with(&plain.display().to_string()), "{text}");
    // gzip of a ragged CSV: the file and the line.
    let ragged = dir.join("ragged.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&ragged).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(b"1,2,0\n3,1\n").unwrap();
    gz.finish().unwrap();
    let text = Dataset::from_csv_gz(&ragged, 1.0).unwrap_err().to_string();
    assert_eq!(
        text,
        format!("{}: line 2: 2 columns, expected 3", ragged.display())
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn accuracy_refuses_predictions_of_another_length_naming_both_counts() {
    let d = Dataset::from_csv("0,0\n1,1\n2,0\n", 1.0).unwrap();
    let err = accuracy(&d, |_| Ok(vec![0])).unwrap_err().to_string();
    assert_eq!(
        err,
        "weight `predictions`: 1 predictions for 3 rows (shape [1])"
    );
}
