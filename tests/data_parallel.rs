//! Data-parallel pruning on two MPI processes: `mpirun -n 2` on the data_parallel example (MNIST
//! 5k, the quickstart's gradual magnitude schedule), on burn and torch. Needs Open MPI
//! (`bash scripts/setup.sh mpi`) and the example built in the same profile, which `cargo test`
//! does; either missing is a failure naming what to do.
#![cfg(feature = "mpi")]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/configs/data_parallel.yaml"
);

/// The example binary beside this test's own (target/<profile>/examples/).
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = profile.join("examples").join("data_parallel");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo test --features mpi` (which builds examples) or `cargo build --example data_parallel --features mpi` in the same profile",
        path.display()
    );
    path
}

/// `mpirun` with the flags a CI machine needs: root allowed, more ranks than cores allowed.
fn mpirun() -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--oversubscribe", "--allow-run-as-root"])
        .env("RUST_BACKTRACE", "0")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1");
    c
}

/// Runs the job (one `--` separated argument list per MPMD part) and returns its output.
fn run(parts: &[(usize, Vec<String>)]) -> Output {
    let exe = example();
    let mut c = mpirun();
    for (i, (ranks, args)) in parts.iter().enumerate() {
        if i > 0 {
            c.arg(":");
        }
        c.arg("-n").arg(ranks.to_string()).arg(&exe).args(args);
    }
    c.output().unwrap_or_else(|e| {
        panic!("cannot start mpirun ({e}): install Open MPI with `bash scripts/setup.sh mpi`")
    })
}

/// Every rank's JSON line, by rank.
fn lines(out: &Output) -> Vec<Value> {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "mpirun failed ({}):\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows: Vec<Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    rows.sort_by_key(|r| r["rank"].as_u64());
    rows
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn two_ranks_prune_alike(backend: &str) {
    let rows = lines(&run(&[(2, args(&["--backend", backend, "--json"]))]));
    assert_eq!(rows.len(), 2, "one line per rank: {rows:?}");
    for (rank, row) in rows.iter().enumerate() {
        assert_eq!(row["rank"], rank as u64);
        assert_eq!(row["world_size"], 2);
    }
    assert_eq!(
        rows[0]["masks_digest"], rows[1]["masks_digest"],
        "both ranks must hold the same masks"
    );
    let r0 = &rows[0];
    let sparsity = r0["sparsity"].as_f64().expect("sparsity");
    assert!((sparsity - 0.9).abs() < 1e-3, "sparsity {sparsity}");
    let pruned = r0["pruned_accuracy"].as_f64().expect("pruned_accuracy");
    let single = r0["single_process_pruned_accuracy"]
        .as_f64()
        .expect("single_process_pruned_accuracy");
    assert!(
        (pruned - single).abs() <= 0.01,
        "{backend}: two ranks reach {pruned}, one process with the same global batch {single}"
    );
    assert!(pruned > 0.85, "{backend}: pruned accuracy {pruned}");
}

#[cfg(feature = "burn")]
#[test]
fn two_ranks_prune_alike_on_burn_and_match_one_process() {
    two_ranks_prune_alike("burn");
}

#[cfg(feature = "torch")]
#[test]
fn two_ranks_prune_alike_on_torch_and_match_one_process() {
    two_ranks_prune_alike("torch");
}

/// The example's config with plain SGD, whose steps depend only on weights and data, so that a
/// run stopped and resumed from files can end bit-identical.
fn sgd_config(dir: &Path) -> String {
    let text = std::fs::read_to_string(CONFIG).expect("the committed config");
    let start = text
        .find("      Adam:")
        .expect("an Adam optimizer in the config");
    let end = text[start..]
        .find("  approach:")
        .expect("approach after train")
        + start;
    let sgd = format!(
        "{}      SGD:\n        learning_rate: 0.05\n{}",
        &text[..start],
        &text[end..]
    );
    let path = dir.join("sgd.yaml");
    std::fs::write(&path, sgd).expect("writing the config");
    path.display().to_string()
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("prune-dp-{tag}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).expect("a temporary folder");
    d
}

fn resumed_run_ends_as_uninterrupted(backend: &str) {
    let dir = temp_dir(backend);
    let config = sgd_config(&dir);
    let state = dir.join("after-4").display().to_string();
    let common = [
        "--backend",
        backend,
        "--json",
        "--config",
        &config,
        "--no-baseline",
    ];
    let whole = lines(&run(&[(2, args(&common))]));
    let mut stop = args(&common);
    stop.extend(args(&["--stop-after", "4", "--save", &state]));
    let first = lines(&run(&[(2, stop)]));
    assert_ne!(
        first[0]["masks_digest"], whole[0]["masks_digest"],
        "after epoch 4 the masks are not the final ones yet"
    );
    let mut resume = args(&common);
    resume.extend(args(&["--resume", &state]));
    let resumed = lines(&run(&[(2, resume)]));
    assert_eq!(resumed.len(), 2);
    for (rank, row) in resumed.iter().enumerate() {
        assert_eq!(
            row["masks_digest"], whole[0]["masks_digest"],
            "{backend} rank {rank}: a resumed run must end with the uninterrupted run's masks"
        );
    }
    assert_eq!(resumed[0]["pruned_accuracy"], whole[0]["pruned_accuracy"]);
    assert_eq!(resumed[0]["epochs"], 16 - 5);
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(feature = "burn")]
#[test]
fn a_resumed_two_rank_run_ends_bit_identical_on_burn() {
    resumed_run_ends_as_uninterrupted("burn");
}

#[cfg(feature = "torch")]
#[test]
fn a_resumed_two_rank_run_ends_bit_identical_on_torch() {
    resumed_run_ends_as_uninterrupted("torch");
}

#[cfg(feature = "burn")]
#[test]
fn a_rank_resumed_from_another_state_is_refused_naming_where_each_rank_is() {
    let dir = temp_dir("mismatch");
    let config = sgd_config(&dir);
    let common = ["--json", "--config", &config, "--no-baseline"];
    for stop in ["2", "4"] {
        let mut a = args(&common);
        let state = dir.join(format!("after-{stop}")).display().to_string();
        a.extend(args(&["--stop-after", stop, "--save", &state]));
        lines(&run(&[(2, a)]));
    }
    // Rank 1 loads the state of epoch 2 but is told to go on from epoch 5, as rank 0 is: the
    // masks it computes there from rank 0's weights agree, its step count does not.
    std::fs::copy(
        dir.join("after-4").join("resume.json"),
        dir.join("after-2").join("resume.json"),
    )
    .expect("copying resume.json");
    let part = |stop: &str| {
        let mut a = args(&common);
        a.extend(args(&[
            "--resume",
            &dir.join(format!("after-{stop}")).display().to_string(),
        ]));
        (1, a)
    };
    let out = run(&[part("4"), part("2")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "ranks with different states must fail"
    );
    assert!(
        stderr.contains("ranks 0 and 1 are at different points of the schedule"),
        "the error names the ranks:\n{stderr}"
    );
    assert!(
        stderr.contains("rank 0 in epoch 5 after step 315")
            && stderr.contains("rank 1 in epoch 5 after step 189"),
        "the error tells where each rank is:\n{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(feature = "burn")]
#[test]
fn ranks_pruning_to_different_targets_are_refused_naming_the_weight() {
    let dir = temp_dir("targets");
    let text = std::fs::read_to_string(CONFIG).expect("the committed config");
    let other = text.replace("target_sparsity: 0.9", "target_sparsity: 0.8");
    assert_ne!(other, text, "the config sets target_sparsity: 0.9");
    let other_path = dir.join("other.yaml");
    std::fs::write(&other_path, other).expect("writing the config");
    let part = |config: &str| (1, args(&["--json", "--no-baseline", "--config", config]));
    let out = run(&[part(CONFIG), part(&other_path.display().to_string())]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "ranks with different targets must fail"
    );
    assert!(
        stderr.contains("the mask of `fc1.weight` differs between rank 1 (in epoch 0 after step 0) and rank 0 (in epoch 0 after step 0)"),
        "the error names the first weight that differs, the ranks and the epoch:\n{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(feature = "burn")]
#[test]
fn a_loop_of_ones_own_around_the_hooks_prunes_as_the_built_in_loop() {
    let built_in = lines(&run(&[(2, args(&["--json", "--no-baseline"]))]));
    let own = lines(&run(&[(
        2,
        args(&["--json", "--no-baseline", "--own-loop"]),
    )]));
    assert_eq!(own.len(), 2);
    for (rank, row) in own.iter().enumerate() {
        assert_eq!(
            row["masks_digest"], built_in[0]["masks_digest"],
            "rank {rank}: the hand-written loop must end with the built-in loop's masks"
        );
    }
    assert_eq!(own[0]["pruned_accuracy"], built_in[0]["pruned_accuracy"]);
}

#[cfg(feature = "burn")]
#[test]
fn a_rank_that_keeps_its_own_gradients_is_caught_at_the_next_mask_update() {
    let out = run(&[(2, args(&["--json", "--no-baseline", "--diverge-rank", "1"]))]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a diverged rank must stop the job");
    assert!(
        stderr.contains("the mask of `fc1.weight` differs between rank 1 (in epoch 1 after step 63) and rank 0 (in epoch 1 after step 63)"),
        "verification after epoch 1's mask update names the weight and the ranks:\n{stderr}"
    );
}

#[cfg(feature = "burn")]
#[test]
fn when_a_rank_dies_the_others_are_stopped_not_left_waiting() {
    let exe = example();
    let mut c = mpirun();
    c.args(["-n", "1"])
        .arg(&exe)
        .args(["--json", "--no-baseline", ":", "-n", "1"])
        .arg(&exe)
        .args(["--json", "--config", "/nonexistent/data_parallel.yaml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("mpirun starts");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for mpirun") {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            child.kill().ok();
            panic!("rank 0 was left waiting for a dead rank 1 for 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).ok();
    assert!(!status.success(), "the job must fail");
    assert!(
        stderr.contains("/nonexistent/data_parallel.yaml"),
        "the dead rank's error is shown:\n{stderr}"
    );
}
