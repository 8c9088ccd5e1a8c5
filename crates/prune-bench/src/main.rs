//! Benchmarks, each as a ratio against a baseline measured in the same run:
//!
//! - mask computation (threshold + mask + in-place apply, through a session call) against a
//!   streaming pass (sum of |w|) over the same tensor, per backend, 2^16 .. 2^24 elements;
//! - the same for 4x1 tiles and 2:4 groups, and libtorch's own kthvalue and sort routes;
//! - the per-step mask re-application, and the extra cost of a group-lasso step;
//! - training epochs with the hooks against the same epochs without them;
//! - mask bytes per pruned weight, and peak RSS with and without pruning.
//!
//! cargo run --release -p prune-bench -- [--quick] [--json] [--only TEXT]
//!
//! `--only TEXT` runs only the measurements whose name contains TEXT (e.g. `--only "group lasso"`).
//!
//! With `--checkpoint GIB`, only the `prune` command on a generated f16 checkpoint of about
//! GIB GiB: `prune apply` against `cp`, `prune inspect` against `cat`, and peak RSS against the
//! largest tensor (build the command first: `cargo build --release -p prune-cli`).

mod checkpoint;
mod masks;
mod memory;
mod timing;
mod training;

use timing::Record;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--rss-probe") {
        memory::probe(args.get(i + 1).map(String::as_str).unwrap_or("plain"));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let as_json = args.iter().any(|a| a == "--json");
    if let Some(i) = args.iter().position(|a| a == "--checkpoint") {
        let gib = args
            .get(i + 1)
            .and_then(|g| g.parse::<f64>().ok())
            .unwrap_or_else(|| {
                eprintln!("--checkpoint needs a size in GiB, e.g. --checkpoint 2");
                std::process::exit(2)
            });
        checkpoint_table(gib, as_json);
        return;
    }
    let only = match args.iter().position(|a| a == "--only") {
        Some(i) => match args.get(i + 1) {
            Some(text) => Some(text.clone()),
            None => {
                eprintln!("--only needs part of a measurement name, e.g. --only \"group lasso\"");
                std::process::exit(2)
            }
        },
        None => None,
    };
    let only_value = args.iter().position(|a| a == "--only").map(|i| i + 1);
    if let Some((_, bad)) = args.iter().enumerate().find(|(i, a)| {
        !["--quick", "--json", "--only"].contains(&a.as_str()) && Some(*i) != only_value
    }) {
        eprintln!("unknown argument `{bad}`; usage: prune-bench [--quick] [--json] [--only TEXT]");
        std::process::exit(2);
    }
    let want = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    let emit = |r: Record| {
        if as_json {
            println!("{}", r.json());
        } else {
            println!("{}", r.row());
        }
    };
    if !as_json {
        println!("| measurement | backend | size | median ms | baseline ms | ratio |\n|---|---|---|---|---|---|");
    }
    let exps: &[u32] = if quick {
        &[16, 20]
    } else {
        &[16, 18, 20, 22, 24]
    };
    for &e in exps {
        let n = 1usize << e;
        let reps = if e >= 22 { 3 } else { 7 };
        if want("mask 1x1") {
            emit(masks::reference(n, "1x1", reps));
            emit(masks::burn(n, "1x1", reps));
            #[cfg(feature = "torch")]
            emit(masks::torch::session(n, "1x1", reps));
        }
        #[cfg(feature = "torch")]
        if want("torch kthvalue + mask") || want("torch sort + mask (INC 1.x route)") {
            for r in masks::torch::native(n, reps) {
                emit(r);
            }
        }
    }
    let big = 1usize << if quick { 20 } else { 22 };
    for pattern in ["4x1", "2:4"] {
        if want(&format!("mask {pattern}")) {
            emit(masks::reference(big, pattern, 3));
            emit(masks::burn(big, pattern, 3));
            #[cfg(feature = "torch")]
            emit(masks::torch::session(big, pattern, 3));
        }
    }
    if want("re-apply mask (per step)") {
        emit(masks::burn_reapply(big, 7));
        #[cfg(feature = "torch")]
        emit(masks::torch::reapply(big, 7));
    }
    if want("group lasso step") {
        emit(masks::burn_group_lasso(big, 5));
        #[cfg(feature = "torch")]
        emit(masks::torch::group_lasso(big, 5));
    }

    let epochs_wanted = want(training::phase_name(false)) || want(training::phase_name(true));
    let digits = training::load("digits");
    let (epochs, reps) = if quick { (3, 3) } else { (10, 5) };
    if epochs_wanted {
        overhead(
            &emit,
            &want,
            "digits 64-512-10",
            &digits,
            &[512],
            epochs,
            reps,
        );
    }
    if !quick && epochs_wanted {
        let mnist = training::load("mnist");
        overhead(
            &emit,
            &want,
            "MNIST-5k 784-1024-1024-10",
            &mnist,
            &[1024, 1024],
            2,
            5,
        );
    }

    if want("mask bytes per pruned weight") {
        for (backend, per_weight, host) in memory::mask_bytes_per_weight() {
            if as_json {
                println!(
                    "{}",
                    serde_json::json!({"name": "mask bytes per pruned weight", "backend": backend, "model": "digits 64-512-10", "bytes_per_weight": per_weight, "host_bytes_per_weight": host, "ratio": per_weight})
                );
            } else {
                println!("| mask bytes per pruned weight | {backend} | digits MLP | {per_weight:.3} B (+ {host:.3} B host bits) | goal 1 B | {:.2} |", per_weight);
            }
        }
    }
    if want("peak RSS, one training epoch") {
        if let Some(r) = memory::peak_rss() {
            emit(r);
        }
    }
}

/// Epochs with hooks against epochs without, on each backend, with masks recomputed and held.
fn overhead(
    emit: &impl Fn(Record),
    want: &impl Fn(&str) -> bool,
    label: &str,
    data: &prune_train::Dataset,
    hidden: &[usize],
    epochs: usize,
    reps: usize,
) {
    for held in [false, true]
        .into_iter()
        .filter(|&h| want(training::phase_name(h)))
    {
        emit(training::burn_overhead(
            label, data, hidden, epochs, reps, held,
        ));
        #[cfg(feature = "torch")]
        emit(training::torch_overhead(
            label, data, hidden, epochs, reps, held,
        ));
    }
}

/// `--checkpoint GIB`: the checkpoint commands' table.
fn checkpoint_table(gib: f64, as_json: bool) {
    if !as_json {
        println!("| measurement | size | median ms | baseline ms | ratio | peak RSS MiB | goal MiB (2 x largest tensor + 64) |\n|---|---|---|---|---|---|---|");
    }
    for r in checkpoint::records(gib, 3) {
        if as_json {
            println!("{}", r.json());
        } else {
            println!(
                "| {} | {} | {:.0} | {} {:.0} | {:.2} | {:.0} | {:.0} |",
                r.name,
                r.size.as_str().unwrap_or_default(),
                r.median_ms,
                r.baseline,
                r.baseline_ms,
                r.ratio(),
                r.extra["peak_rss_mib"].as_f64().unwrap_or_default(),
                r.extra["rss_goal_mib"].as_f64().unwrap_or_default(),
            );
        }
    }
}
