//! `prune check` run as a user runs it.

mod common;
use common::prune;

fn repo_file(rel: &str) -> String {
    format!("{}/../../{rel}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_inc_template_checks_as_written() {
    let (code, out, err) = prune(&["check", &repo_file("tests/fixtures/inc/template.yaml")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("basic_magnitude on layer1.0.conv1.weight"),
        "{out}"
    );
    assert!(
        out.contains("0.323  0.647  0.970") || out.contains(" 0.323 0.647 0.970"),
        "{out}"
    );
    assert!(err.contains("are not used by basic_magnitude"), "{err}");
}

#[test]
fn json_plan_has_the_documented_keys_and_schedule() {
    let (code, out, err) = prune(&[
        "check",
        &repo_file("examples/configs/quickstart.yaml"),
        "--json",
        "--epochs",
        "26",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let p = &v["pruners"][0];
    for key in [
        "prune_type",
        "names",
        "start_epoch",
        "end_epoch",
        "initial_sparsity",
        "target_sparsity",
        "frequency",
        "schedule",
    ] {
        assert!(!p[key].is_null(), "missing {key} in {p}");
    }
    assert_eq!(p["prune_type"], "basic_magnitude");
    let schedule = p["schedule"].as_array().unwrap();
    assert_eq!(schedule.len(), 26);
    let s: Vec<f64> = schedule
        .iter()
        .map(|e| e["sparsity"].as_f64().unwrap())
        .collect();
    assert!((s[0] - 0.036).abs() < 1e-9, "{s:?}");
    assert!(
        (s[24] - 0.9).abs() < 1e-12 && (s[25] - 0.9).abs() < 1e-12,
        "{s:?}"
    );
    assert!(s.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn n_of_m_shows_its_fixed_sparsity() {
    let (code, out, _) = prune(&[
        "check",
        &repo_file("tests/fixtures/inc/mobilenet_frequency.yaml"),
        "--json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["pruners"][1]["pattern"], "2:4");
    assert_eq!(
        v["pruners"][1]["schedule"][3]["sparsity"].as_f64(),
        Some(0.5)
    );
}

#[test]
fn bad_configs_exit_1_with_every_problem() {
    let dir = std::env::temp_dir().join(format!("prune-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.yaml");
    std::fs::write(&f, "pruning:\n  approach:\n    weight_compression:\n      target_sparsity: 2\n      pruners: []\n").unwrap();
    let (code, out, err) = prune(&["check", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("weight_compression.target_sparsity: 2 is not in [0, 1)"),
        "{err}"
    );
    assert!(err.contains("weight_compression.pruners: empty"), "{err}");
    let (code, _, err) = prune(&["check", dir.join("missing.yaml").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("missing.yaml"), "{err}");
    let (code, _, err) = prune(&["check"]);
    assert_eq!(code, 2);
    assert!(err.to_lowercase().contains("usage"), "{err}");
}

#[test]
fn a_bad_train_section_fails_the_check_naming_its_path() {
    let text = std::fs::read_to_string(repo_file("examples/configs/quickstart.yaml")).unwrap();
    assert!(
        text.contains("batch_size: "),
        "the quickstart config sets a batch size"
    );
    let bad = text.replacen("batch_size: ", "batch_size: 0 #", 1);
    let dir = std::env::temp_dir().join(format!("prune-cli-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad_train.yaml");
    std::fs::write(&file, bad).unwrap();
    let (code, _, err) = prune(&["check", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("bad_train.yaml")
            && err.contains("pruning.train.dataloader.batch_size: 0 must be >= 1"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn inc_train_settings_fit_does_not_use_are_reported_not_refused() {
    let (code, _, err) = prune(&[
        "check",
        &repo_file("tests/fixtures/inc/upstream/neural_compressor-template-pruning.yaml"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("note: pruning.train is read only by fit()"),
        "{err}"
    );
    assert!(
        err.contains("note: pruning.train.dataloader.dataset: unused by fit(): fit() takes its dataset from code"),
        "{err}"
    );
    // A distillation loss: INC accepts it, fit() cannot run it, a loop of your own can.
    let dir = std::env::temp_dir().join(format!("prune-cli-kd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kd.yaml");
    std::fs::write(
        &file,
        "pruning:\n  train:\n    optimizer: {SGD: {learning_rate: 0.1}}\n    criterion:\n      \
         KnowledgeDistillationLoss: {temperature: 2.0}\n  approach:\n    weight_compression:\n      \
         pruners:\n        - !Pruner\n            names: ['fc1.weight']\n",
    )
    .unwrap();
    let (code, _, err) = prune(&["check", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("note: pruning.train.criterion.KnowledgeDistillationLoss: fit() refuses it: KnowledgeDistillationLoss needs a teacher model"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
