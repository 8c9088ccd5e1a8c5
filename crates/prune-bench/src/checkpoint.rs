//! The `prune` command on a large f16 checkpoint made at run time: `prune apply` against
//! `cp IN OUT` and `prune inspect` against `cat IN > /dev/null`, warm cache, alternating, in one
//! run; and the peak RSS of each `prune` process against the largest tensor.

use crate::timing::Record;
use safetensors::tensor::View;
use safetensors::Dtype;
use serde_json::json;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Elements per tensor: 128 Mi f16 values, 256 MiB.
const TENSOR_ELEMENTS: usize = 1 << 27;

/// One generated f16 tensor of `[rows, cols]`, produced when written.
struct Generated {
    shape: Vec<usize>,
    seed: u64,
}

impl View for Generated {
    fn dtype(&self) -> Dtype {
        Dtype::F16
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        let mut x = self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let n: usize = self.shape.iter().product();
        let mut out = Vec::with_capacity(n * 2);
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Roughly normal-looking magnitudes in (-1, 1).
            let v = ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0;
            out.extend_from_slice(&half::f16::from_f32(v * v * v.signum()).to_le_bytes());
        }
        Cow::Owned(out)
    }
    fn data_len(&self) -> usize {
        self.shape.iter().product::<usize>() * 2
    }
}

/// Writes a checkpoint of about `gib` GiB of f16 `[4096, cols]` matrices (at most 256 MiB each)
/// and returns the largest tensor's bytes.
fn generate(path: &Path, gib: f64) -> usize {
    let total = (gib * (1u64 << 30) as f64) as usize / 2;
    let mut views = Vec::new();
    let mut left = total;
    let mut i = 0;
    while left >= 4096 * 4 {
        let n = left.min(TENSOR_ELEMENTS);
        let cols = n / 4096 / 4 * 4;
        views.push((
            format!("layers.{i}.weight"),
            Generated {
                shape: vec![4096, cols],
                seed: i as u64 + 1,
            },
        ));
        left -= 4096 * cols;
        i += 1;
    }
    let largest = views.iter().map(|(_, v)| v.data_len()).max().unwrap_or(0);
    safetensors::serialize_to_file(views, None, path).expect("write the benchmark checkpoint");
    largest
}

/// Runs a command to completion; wall milliseconds and the child's peak RSS in KiB.
fn run(cmd: &mut Command) -> (f64, u64) {
    let start = Instant::now();
    // Reaped by wait4 below, which also gives the peak RSS that Child::wait does not.
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().expect("start the command");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten; wait4 is given the pid
    // of our own child and pointers to live locals.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let ms = start.elapsed().as_secs_f64() * 1e3;
    assert!(
        pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed"
    );
    (ms, usage.ru_maxrss as u64)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The `prune` binary beside this one (`cargo build --release -p prune-cli`).
fn prune_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let p = exe.with_file_name("prune");
    assert!(
        p.exists(),
        "{} is missing: cargo build --release -p prune-cli",
        p.display()
    );
    p
}

const CONFIGS: [(&str, &str); 2] = [
    ("50% element-wise", ""),
    ("2:4", "\n            pattern: '2:4'"),
];

/// The records of the checkpoint benchmark on a file of about `gib` GiB.
pub fn records(gib: f64, reps: usize) -> Vec<Record> {
    let dir = std::env::temp_dir().join(format!("prune-bench-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.safetensors");
    let output = dir.join("out.safetensors");
    let copy = dir.join("copy.safetensors");
    let largest = generate(&input, gib);
    let bytes = std::fs::metadata(&input).unwrap().len();
    let size = json!(format!("{:.2} GiB f16", bytes as f64 / (1u64 << 30) as f64));
    let prune = prune_binary();
    // Warm the cache once.
    run(Command::new("cat")
        .arg(&input)
        .stdout(std::process::Stdio::null()));
    let mut out = Vec::new();
    for (label, pattern) in CONFIGS {
        let config = dir.join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "pruning:\n  approach:\n    weight_compression:\n      target_sparsity: 0.5\n      end_epoch: 0\n      pruners:\n        - !Pruner\n            prune_type: basic_magnitude{pattern}\n"
            ),
        )
        .unwrap();
        let (mut base, mut meas, mut rss) = (Vec::new(), Vec::new(), 0);
        for _ in 0..reps {
            base.push(run(Command::new("cp").arg(&input).arg(&copy)).0);
            std::fs::remove_file(&copy).ok();
            let (ms, kib) = run(Command::new(&prune)
                .args([
                    "apply".as_ref(),
                    config.as_os_str(),
                    input.as_os_str(),
                    "-o".as_ref(),
                    output.as_os_str(),
                    "--force".as_ref(),
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()));
            meas.push(ms);
            rss = rss.max(kib);
            std::fs::remove_file(&output).ok();
        }
        out.push(record(
            format!("prune apply {label}"),
            &size,
            median(meas),
            "cp IN OUT",
            median(base),
            rss,
            largest,
        ));
    }
    let (mut base, mut meas, mut rss) = (Vec::new(), Vec::new(), 0);
    for _ in 0..reps {
        base.push(
            run(Command::new("cat")
                .arg(&input)
                .stdout(std::process::Stdio::null()))
            .0,
        );
        let (ms, kib) = run(Command::new(&prune)
            .arg("inspect")
            .arg(&input)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()));
        meas.push(ms);
        rss = rss.max(kib);
    }
    out.push(record(
        "prune inspect".into(),
        &size,
        median(meas),
        "cat IN > /dev/null",
        median(base),
        rss,
        largest,
    ));
    std::fs::remove_dir_all(&dir).ok();
    out
}

fn record(
    name: String,
    size: &serde_json::Value,
    median_ms: f64,
    baseline: &'static str,
    baseline_ms: f64,
    rss_kib: u64,
    largest: usize,
) -> Record {
    let mib = |b: f64| b / (1u64 << 20) as f64;
    Record {
        name,
        backend: "cli".into(),
        size: size.clone(),
        median_ms,
        baseline,
        baseline_ms,
        extra: json!({
            "peak_rss_mib": mib(rss_kib as f64 * 1024.0),
            "largest_tensor_mib": mib(largest as f64),
            "rss_goal_mib": mib(2.0 * largest as f64) + 64.0,
        }),
    }
}
