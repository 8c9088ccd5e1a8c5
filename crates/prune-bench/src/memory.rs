//! Memory: bytes a session holds per pruned weight, and peak RSS of a training run with and
//! without pruning (each in a child process of this binary, so the peaks do not mix).

use crate::timing::Record;
use crate::training::{burn_overhead_model, config, load};
use burn::tensor::Device;
use prune_burn::train::{fit, train_dense};
use prune_burn::BurnPruning;
use prune_train::TrainConfig;
use serde_json::json;

/// Bytes of mask per pruned weight after pruning the digits MLP, per backend: on the
/// framework's side (applied every step) and as host bits (previous masks, saved state).
pub fn mask_bytes_per_weight() -> Vec<(String, f64, f64)> {
    let per = |m: prune_core::session::MaskMemory| {
        (
            m.device_bytes as f64 / m.weights as f64,
            m.host_bytes as f64 / m.weights as f64,
        )
    };
    let data = load("digits");
    let device = Device::flex().autodiff();
    let model = burn_overhead_model(&data, &[512], &device);
    let mut p = BurnPruning::new(config(1)).unwrap();
    let mut wrapped = prune_burn::BurnModel::new(model);
    p.on_epoch_begin(&mut wrapped, 0).unwrap();
    let (device, host) = per(p.mask_memory());
    let mut out = vec![("burn".to_string(), device, host)];
    let mut r = prune_core::testing::reference::RefModel::default();
    r.push(
        "w",
        &[512, 64],
        prune_core::testing::conformance::values(3, 512 * 64),
        prune_core::Layout::Canonical,
    );
    let mut pr = prune_core::Pruning::<prune_core::Reference>::new(config(1)).unwrap();
    pr.on_epoch_begin(&mut r, 0).unwrap();
    let (device, host) = per(pr.mask_memory());
    out.push(("reference".into(), device, host));
    #[cfg(feature = "torch")]
    {
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let _ = vs.root().var_copy(
            "w",
            &tch::Tensor::from_slice(&prune_core::testing::conformance::values(3, 512 * 64))
                .reshape([512, 64]),
        );
        let mut m = prune_torch::TorchModel::new(&vs);
        let mut pt = prune_torch::TorchPruning::new(config(1)).unwrap();
        pt.on_epoch_begin(&mut m, 0).unwrap();
        let (device, host) = per(pt.mask_memory());
        out.push(("torch".into(), device, host));
    }
    out
}

/// Peak resident memory of this process, in kB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Child side: trains the MNIST 784-1024-1024-10 MLP for one epoch, with or without pruning,
/// and prints its peak RSS.
pub fn probe(mode: &str) {
    let data = load("mnist");
    let device = Device::flex().autodiff();
    device.seed(1);
    let model = burn_overhead_model(&data, &[1024, 1024], &device);
    let cfg = config(1);
    if mode == "pruned" {
        let mut p = BurnPruning::new(cfg).unwrap();
        fit(&mut p, model, &data, &device).unwrap();
    } else {
        train_dense(
            model,
            &data,
            &TrainConfig::from_config(&cfg, "bench").unwrap(),
            1,
            &device,
        )
        .unwrap();
    }
    println!("{}", peak_rss_kb());
}

/// Parent side: runs both probes and compares their peaks.
pub fn peak_rss() -> Option<Record> {
    let exe = std::env::current_exe().ok()?;
    let run = |mode: &str| -> Option<f64> {
        let out = std::process::Command::new(&exe)
            .args(["--rss-probe", mode])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .lines()
            .last()?
            .parse::<f64>()
            .ok()
    };
    let (plain, pruned) = (run("plain")?, run("pruned")?);
    Some(Record {
        name: "peak RSS, one training epoch".into(),
        backend: "burn".into(),
        size: json!("MNIST 784-1024-1024-10"),
        median_ms: pruned / 1024.0,
        baseline: "no pruning",
        baseline_ms: plain / 1024.0,
        extra: json!({"unit": "MiB (the *_ms fields hold MiB for this row)"}),
    })
}
