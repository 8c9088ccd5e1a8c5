//! Every problem the pruning-config parser reports, each with the YAML path and what is wrong:
//! the rows of docs/errors.md that point here.

use prune_core::{PruneError, PruningConfig};

const WC: &str = "pruning.approach.weight_compression";
const P0: &str = "pruning.approach.weight_compression.pruners[0]";

/// `weight_compression` with `global` lines under it and one pruner of `pruner` lines.
fn wc(global: &str, pruner: &str) -> String {
    let mut y = String::from("pruning:\n  approach:\n    weight_compression:\n");
    for line in global.lines() {
        y += &format!("      {line}\n");
    }
    y += "      pruners:\n        - !Pruner\n";
    for line in pruner.lines() {
        y += &format!("            {line}\n");
    }
    y
}

/// A magnitude pruner on `fc1.weight` with extra `pruner` lines.
fn magnitude(pruner: &str) -> String {
    wc(
        "target_sparsity: 0.5",
        &format!("prune_type: basic_magnitude\nnames: ['fc1.weight']\n{pruner}"),
    )
}

/// A structured gradient_sensitivity pruner with `parameters` and extra `pruner` lines.
fn structured(parameters: &str, pruner: &str) -> String {
    wc(
        "",
        &format!(
            "prune_type: gradient_sensitivity\nnames: ['fc1.weight']\nparameters: {{{parameters}}}\n{pruner}"
        ),
    )
}

fn problems(yaml: &str) -> Vec<String> {
    match PruningConfig::from_yaml(yaml) {
        Err(PruneError::Config {
            source_name,
            problems,
        }) => {
            assert_eq!(source_name, "<string>");
            problems.0.iter().map(|p| p.to_string()).collect()
        }
        other => panic!("expected a config error for\n{yaml}\ngot {other:?}"),
    }
}

#[test]
fn every_config_problem_names_its_path_and_what_is_wrong() {
    let cases: Vec<(String, String)> = vec![
        // Sections.
        (
            "version: 1.0\nmodel: {name: x}\n".into(),
            "pruning: missing: the file needs a `pruning:` section".into(),
        ),
        (
            "- pruning\n".into(),
            "expected a mapping, found a list".into(),
        ),
        (
            "pruning:\n  train: {}\n".into(),
            "pruning.approach: missing: expected `approach: {weight_compression: ...}`".into(),
        ),
        (
            "pruning:\n  approach: {}\n".into(),
            "pruning.approach.weight_compression: missing".into(),
        ),
        (
            "pruning:\n  approach:\n    weight_compression_pytorch: {pruners: []}\n".into(),
            "pruning.approach.weight_compression_pytorch: INC 1.13's step-based pruners \
             (snip_momentum and the others of INC's pytorch_pruner) are not supported"
                .into(),
        ),
        (
            format!("{}modle: {{name: x}}\n", magnitude("")),
            "modle: unknown key; did you mean `model`?".into(),
        ),
        (
            magnitude("").replace("  approach:", "  qqqqqqqq: 1\n  approach:"),
            "pruning.qqqqqqqq: unknown key; expected one of: train, approach".into(),
        ),
        (
            magnitude("").replace("  approach:", "  7: 1\n  approach:"),
            "pruning: a key must be a string, found a number".into(),
        ),
        (
            "pruning:\n  approach:\n    weight_compression: 3\n".into(),
            format!("{WC}: expected a mapping, found a number"),
        ),
        // The global schedule.
        (
            wc("frequency: 1\nupdate_frequency: 2", "names: ['fc1.weight']"),
            format!("{WC}.update_frequency: both `frequency` and `update_frequency` given; keep one"),
        ),
        (
            wc("update_frequency: -1", "names: ['fc1.weight']"),
            format!("{WC}.update_frequency: -1 must be > 0"),
        ),
        (
            wc("frequency: 0", "names: ['fc1.weight']"),
            format!("{WC}.frequency: 0 must be > 0"),
        ),
        (
            wc("initial_sparsity: -0.1", "names: ['fc1.weight']"),
            format!("{WC}.initial_sparsity: -0.1 is not in [0, 1)"),
        ),
        (
            wc("target_sparsity: 1", "names: ['fc1.weight']"),
            format!("{WC}.target_sparsity: 1 is not in [0, 1)"),
        ),
        (
            wc(
                "initial_sparsity: 0.6\ntarget_sparsity: 0.5",
                "names: ['fc1.weight']",
            ),
            format!("{WC}.initial_sparsity: 0.6 is above target_sparsity 0.5"),
        ),
        (
            wc("start_epoch: 5\nend_epoch: 2", "names: ['fc1.weight']"),
            format!("{WC}.start_epoch: 5 is after end_epoch 2"),
        ),
        (
            wc("target_sparsity: high", "names: ['fc1.weight']"),
            format!("{WC}.target_sparsity: expected a number, found a string"),
        ),
        (
            wc("end_epoch: 1.5", "names: ['fc1.weight']"),
            format!("{WC}.end_epoch: expected a whole number >= 0, found 1.5"),
        ),
        (
            wc("end_epoch: four", "names: ['fc1.weight']"),
            format!("{WC}.end_epoch: expected a whole number, found a string"),
        ),
        // The pruners list.
        (
            "pruning:\n  approach:\n    weight_compression:\n      target_sparsity: 0.5\n".into(),
            format!("{WC}.pruners: missing: at least one `- !Pruner` item is needed"),
        ),
        (
            "pruning:\n  approach:\n    weight_compression:\n      pruners: []\n".into(),
            format!("{WC}.pruners: empty: at least one `- !Pruner` item is needed"),
        ),
        (
            "pruning:\n  approach:\n    weight_compression:\n      pruners: fc1.weight\n".into(),
            format!("{WC}.pruners: expected a list of `- !Pruner` items"),
        ),
        (
            magnitude("").replace("!Pruner", "!Prunr"),
            format!("{P0}: unexpected tag `!Prunr`; pruner items are tagged `!Pruner`"),
        ),
        // One pruner.
        (
            magnitude("target_sparsty: 0.5"),
            format!("{P0}.target_sparsty: unknown key; did you mean `target_sparsity`?"),
        ),
        (
            wc("", "prune_type: basic_magnitud"),
            format!(
                "{P0}.prune_type: unknown prune_type `basic_magnitud` (did you mean \
                 `basic_magnitude`?); supported: basic_magnitude, pattern_lock, \
                 gradient_sensitivity, group_lasso"
            ),
        ),
        (
            wc("", "prune_type: 3"),
            format!("{P0}.prune_type: expected a string, found a number"),
        ),
        (
            wc("", "names: ['fc1.weight', '  ']"),
            format!("{P0}.names[1]: empty weight name"),
        ),
        (
            wc("", "names: [fc1.weight, 7]"),
            format!("{P0}.names[1]: expected a string, found a number"),
        ),
        (
            wc("", "names: {fc1: weight}"),
            format!("{P0}.names: expected a list of strings, found a mapping"),
        ),
        (
            wc("target_sparsity: 0.5", "names: ['fc1.weight']\ninitial_sparsity: 0.9"),
            format!("{P0}.initial_sparsity: 0.9 is above target_sparsity 0.5"),
        ),
        (
            wc("end_epoch: 3", "names: ['fc1.weight']\nstart_epoch: 4"),
            format!("{P0}.start_epoch: 4 is after end_epoch 3"),
        ),
        (
            magnitude("update_frequency: 0"),
            format!("{P0}.update_frequency: 0 must be > 0"),
        ),
        (
            magnitude("method: per_row"),
            format!("{P0}.method: unknown method `per_row`; supported: per_tensor, per_channel"),
        ),
        // Patterns.
        (
            magnitude("pattern: 3y3"),
            format!(
                "{P0}.pattern: `3y3` is not a pattern; expected tile_pattern_RxC, RxC (e.g. \
                 1x1, 4x1, 1x16) or N:M (e.g. 2:4)"
            ),
        ),
        (
            magnitude("pattern: '4:2'"),
            format!("{P0}.pattern: `4:2`: N:M needs 0 < N < M"),
        ),
        (
            magnitude("pattern: '0:4'"),
            format!("{P0}.pattern: `0:4`: N:M needs 0 < N < M"),
        ),
        (
            magnitude("pattern: tile_pattern_0x4"),
            format!("{P0}.pattern: `tile_pattern_0x4`: tile sides must be >= 1"),
        ),
        (
            magnitude("pattern: 4x1\nparameters: {pattern: 1x4}"),
            format!("{P0}.parameters.pattern: differs from the pruner's `pattern`; give it once"),
        ),
        (
            magnitude("parameters: {pattern: 1x0}"),
            format!("{P0}.parameters.pattern: `1x0`: tile sides must be >= 1"),
        ),
        // Parameters.
        (
            magnitude("parameters: 3"),
            format!("{P0}.parameters: expected a mapping, found a number"),
        ),
        (
            magnitude("parameters: {alfa: 0.1}"),
            format!("{P0}.parameters.alfa: unknown key; did you mean `alpha`?"),
        ),
        (
            magnitude("parameters: {transpose: maybe}"),
            format!("{P0}.parameters.transpose: expected True or False, found a string"),
        ),
        (
            wc("", "prune_type: group_lasso\nnames: ['fc1.weight']"),
            format!("{P0}.parameters.alpha: missing: group_lasso needs `parameters: {{alpha: ...}}`"),
        ),
        (
            wc(
                "",
                "prune_type: group_lasso\nnames: ['fc1.weight']\nparameters: {alpha: -0.1}",
            ),
            format!("{P0}.parameters.alpha: -0.1 must be a finite number >= 0"),
        ),
        (
            structured("importance_inputs: ['head_mask']", ""),
            format!("{P0}.parameters.target: missing: structured gradient_sensitivity needs `target`"),
        ),
        (
            structured("target: 1", "pattern: '2:4'"),
            format!("{P0}.pattern: structured gradient_sensitivity does not take an N:M pattern"),
        ),
        (
            structured("target: 1, stride: 0", ""),
            format!("{P0}.parameters.stride: 0 must be >= 1"),
        ),
        (
            structured("target: 0", ""),
            format!("{P0}.parameters.target: 0 would remove every group; must be >= 1"),
        ),
        (
            structured("target: 1, importance_metric: taylor", ""),
            format!(
                "{P0}.parameters.importance_metric: unknown importance_metric `taylor`; \
                 supported: abs_gradient, weighted_gradient, l1_norm, l2_norm"
            ),
        ),
        // Declared coupling groups, as read (checked against the model at bind: see
        // session_errors.rs).
        (
            magnitude("").replace("      pruners:", "      coupling: a.weight\n      pruners:"),
            format!("{WC}.coupling: expected a list of groups, each a list of {{weight, axis, block}}"),
        ),
        (
            magnitude("").replace(
                "      pruners:",
                "      coupling:\n        - a.weight\n      pruners:",
            ),
            format!("{WC}.coupling[0]: expected a list of {{weight, axis, block}} slices"),
        ),
        (
            magnitude("").replace(
                "      pruners:",
                "      coupling:\n        - - {weight: a.weight}\n      pruners:",
            ),
            format!("{WC}.coupling[0]: a group needs at least two slices"),
        ),
        (
            magnitude("").replace(
                "      pruners:",
                "      coupling:\n        - - {weight: a.weight, axes: 1}\n          - {weight: b.weight}\n      pruners:",
            ),
            format!("{WC}.coupling[0][0].axes: unknown key; did you mean `axis`?"),
        ),
        (
            magnitude("").replace(
                "      pruners:",
                "      coupling:\n        - - {axis: 1}\n          - {weight: b.weight}\n      pruners:",
            ),
            format!("{WC}.coupling[0][0].weight: missing: the weight's name"),
        ),
        (
            magnitude("").replace(
                "      pruners:",
                "      coupling:\n        - - {weight: 3}\n          - {weight: b.weight}\n      pruners:",
            ),
            format!("{WC}.coupling[0][0].weight: expected a string, found a number"),
        ),
        (
            magnitude("").replace(
                "      pruners:",
                "      coupling:\n        - - {weight: a.weight, block: 0}\n          - {weight: b.weight}\n      pruners:",
            ),
            format!("{WC}.coupling[0][0].block: must be at least 1"),
        ),
        (
            magnitude("").replace(
                "      pruners:",
                "      coupling:\n        - - a.weight\n          - {weight: b.weight}\n      pruners:",
            ),
            format!("{WC}.coupling[0][0]: expected a mapping, found a string"),
        ),
    ];
    let mut failures = Vec::new();
    for (yaml, want) in &cases {
        let got = problems(yaml);
        if !got.iter().any(|p| p.starts_with(want.as_str())) {
            failures.push(format!("wanted `{want}`\n  in {got:#?}\n  from\n{yaml}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn several_problems_are_counted_and_listed_one_a_line() {
    let yaml = wc(
        "target_sparsity: 1.5",
        "prune_type: magnitude\nmethod: per_row",
    );
    let err = PruningConfig::from_yaml_named(&yaml, "f.yaml")
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines[0], "f.yaml: 3 problems in the configuration", "{err}");
    assert!(
        lines[1].starts_with(&format!("  - {WC}.target_sparsity: 1.5 is not in [0, 1)")),
        "{err}"
    );
    assert_eq!(lines.len(), 4, "{err}");
}

#[test]
fn a_yaml_syntax_error_names_the_file_line_and_column() {
    let err =
        PruningConfig::from_yaml_named("pruning:\n  approach: [unclosed\n", "f.yaml").unwrap_err();
    match &err {
        PruneError::Yaml {
            source_name,
            line,
            column,
            ..
        } => {
            assert_eq!(source_name, "f.yaml");
            assert!(*line >= 2 && *column > 0, "line {line} column {column}");
        }
        other => panic!("expected a YAML error, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("f.yaml: YAML syntax error at line "),
        "{err}"
    );
}

#[test]
fn a_config_file_that_cannot_be_read_is_an_io_error_naming_it() {
    let path = std::env::temp_dir().join(format!("prune-no-such-{}.yaml", std::process::id()));
    let err = PruningConfig::from_file(&path).unwrap_err();
    assert!(matches!(err, PruneError::Io { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&path.display().to_string()) && text.contains("No such file"),
        "{text}"
    );
}
