//! `prune check`: the resolved plan of a configuration, as text or JSON.

use prune_core::algo::structured::is_structured;
use prune_core::config::ResolvedPruner;
use prune_core::schedule::planned_sparsity;
use prune_core::testing::reference::Reference;
use prune_core::{PruneError, Pruning, PruningConfig};
use prune_train::TrainConfig;
use serde_json::json;
use std::process::ExitCode;

/// Epochs shown when `--epochs` is not given: through the last scheduled epoch, plus one.
fn default_epochs(config: &PruningConfig) -> usize {
    config.last_schedule_epoch() + 2
}

/// Prints an error to stderr, a config error as one problem per line.
pub fn print_error(e: &PruneError) {
    match e {
        PruneError::Config {
            source_name,
            problems,
        } => {
            eprintln!("{source_name}: {} problem(s):", problems.0.len());
            for p in &problems.0 {
                eprintln!("  {p}");
            }
        }
        other => eprintln!("{other}"),
    }
}

/// Runs `prune check`.
pub fn check(file: &str, epochs: Option<usize>, as_json: bool) -> ExitCode {
    let config = match PruningConfig::from_file(file) {
        Ok(c) => c,
        Err(e) => {
            print_error(&e);
            return ExitCode::from(1);
        }
    };
    if let Err(e) = Pruning::<Reference>::new(config.clone()) {
        print_error(&e);
        return ExitCode::from(1);
    }
    // The train section is read only by the built-in loop (fit()): checked against INC's
    // schema, with a note for each setting fit() does not act on.
    if config.train.is_some() {
        match TrainConfig::read(&config, file) {
            Ok(train) => {
                eprintln!(
                    "note: pruning.train is read only by fit(); a loop of your own that calls the hooks ignores it"
                );
                for u in &train.unused {
                    let effect = if u.blocks_fit {
                        "fit() refuses it"
                    } else {
                        "unused by fit()"
                    };
                    eprintln!("note: {}: {effect}: {}", u.path, u.reason);
                }
            }
            Err(e) => {
                print_error(&e);
                return ExitCode::from(1);
            }
        }
    }
    let epochs = epochs.unwrap_or_else(|| default_epochs(&config));
    let pruners = config.resolved_pruners();
    for p in &pruners {
        let ignored = p.ignored_parameters();
        if !ignored.is_empty() {
            eprintln!(
                "note: pruners[{}].parameters {} are not used by {}",
                p.index,
                ignored.join(", "),
                p.prune_type
            );
        }
    }
    if as_json {
        let list: Vec<_> = pruners.iter().map(|p| pruner_json(p, epochs)).collect();
        outln!("{}", json!({ "pruners": list }));
    } else {
        let table = text(file, &pruners, epochs);
        outln!("{}", table.strip_suffix('\n').unwrap_or(&table));
    }
    ExitCode::SUCCESS
}

fn pruner_json(p: &ResolvedPruner, epochs: usize) -> serde_json::Value {
    let schedule: Vec<_> = (0..epochs)
        .map(|e| json!({"epoch": e, "sparsity": planned_sparsity(p, e)}))
        .collect();
    let schedule = if is_structured(p) {
        Vec::new()
    } else {
        schedule
    };
    json!({
        "index": p.index,
        "prune_type": p.prune_type,
        "names": p.names,
        "start_epoch": p.start_epoch,
        "end_epoch": p.end_epoch,
        "initial_sparsity": p.initial_sparsity,
        "target_sparsity": p.target_sparsity,
        "frequency": p.frequency,
        "method": p.method,
        "pattern": p.pattern.to_string(),
        "parameters": p.parameters,
        "schedule": schedule,
        "structured": is_structured(p),
    })
}

fn text(file: &str, pruners: &[ResolvedPruner], epochs: usize) -> String {
    let mut s = format!("{file}: OK, {} pruner(s)\n", pruners.len());
    for p in pruners {
        let names = if p.names.is_empty() {
            "every 2-D and 4-D weight".to_string()
        } else {
            p.names.join(", ")
        };
        s += &format!("\npruners[{}]: {} on {names}\n", p.index, p.prune_type);
        if is_structured(p) {
            let q = &p.parameters;
            s += &format!(
                "  structured: importance over epochs {}..={} from {} ({}), then per layer keep {} \
                 groups of {} {}{}; the model shrinks at the end of epoch {}\n",
                p.start_epoch,
                p.end_epoch,
                match (q.importance_inputs.is_empty(), q.importance_metric.weight_only()) {
                    (true, true) => "the pruned weights themselves".to_string(),
                    (true, false) => "the weights' own gradients".to_string(),
                    (false, _) => q.importance_inputs.join(", "),
                },
                q.importance_metric.name(),
                q.target.unwrap_or(0),
                q.stride.unwrap_or(1),
                if q.transpose { "input columns" } else { "output rows" },
                if q.normalize { ", importance L2-normalised per layer" } else { "" },
                p.end_epoch
            );
            continue;
        }
        s += &format!(
            "  epochs {}..={}  sparsity {} -> {}  frequency {}  pattern {}  method {}\n",
            p.start_epoch,
            p.end_epoch,
            p.initial_sparsity,
            p.target_sparsity,
            p.frequency,
            p.pattern,
            p.method
        );
        s += "  epoch:    ";
        s += &(0..epochs).map(|e| format!("{e:>6}")).collect::<String>();
        s += "\n  sparsity: ";
        s += &(0..epochs)
            .map(|e| match planned_sparsity(p, e) {
                Some(v) => format!("{v:>6.3}"),
                None => format!("{:>6}", "lock"),
            })
            .collect::<String>();
        s += "\n";
    }
    s
}
