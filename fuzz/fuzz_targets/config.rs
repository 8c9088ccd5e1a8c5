//! The config loader takes any bytes without panicking or hanging: it returns a config or an
//! error. Valid configs also resolve and produce a schedule, and their `train` section reads
//! as `fit()` reads it, without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = prune_core::PruningConfig::from_yaml(text) {
        for p in config.resolved_pruners() {
            for epoch in 0..(p.end_epoch.min(64) + 2) {
                let s = prune_core::schedule::planned_sparsity(&p, epoch);
                assert!(
                    s.is_none_or(|s| (0.0..1.0).contains(&s)),
                    "sparsity {s:?} out of range"
                );
            }
        }
        if let Ok(train) = prune_train::TrainConfig::from_config(&config, "fuzz") {
            assert!(train.batch_size >= 1, "batch size 0 accepted");
            let _ = train.epochs(&config);
        }
    }
});
