//! The checkpoint reader takes any bytes without panicking: it returns a checkpoint or an
//! error. Every tensor of an accepted file reads in full, and the pattern checks of
//! `prune inspect` run over it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prune_core::config::Pattern;
use prune_core::select::conform::conformance;

fuzz_target!(|data: &[u8]| {
    let Ok(checkpoint) = prune_io::Checkpoint::from_bytes("fuzz", data.to_vec()) else {
        return;
    };
    for entry in checkpoint.tensors() {
        let bytes = checkpoint.bytes(entry);
        assert_eq!(bytes.len(), entry.byte_len());
        let Some(dtype) = entry.float() else { continue };
        assert_eq!(bytes.len(), entry.numel() * dtype.size(), "{}", entry.name);
        let values = checkpoint.values(entry).expect("a float tensor reads");
        assert_eq!(values.len(), entry.numel());
        let nonzero = dtype.nonzero_bits(bytes);
        assert_eq!(nonzero.len, entry.numel());
        let zeros = values.iter().filter(|v| **v == 0.0).count();
        let set: usize = nonzero.words.iter().map(|w| w.count_ones() as usize).sum();
        assert_eq!(nonzero.len - set, zeros, "{}", entry.name);
        for pattern in [
            Pattern::NOfM { n: 2, m: 4 },
            Pattern::Tile { rows: 4, cols: 1 },
        ] {
            let _ = conformance(&entry.shape, pattern, &nonzero);
        }
    }
});
