//! The real all-MiniLM-L6-v2 shrunk one-shot by weight norms (the `prune apply` path: a shrink
//! plan, the pruned file and an updated config.json), then loaded from its folder by the burn
//! and torch encoders with nothing patched: 8 heads and 1024 FFN units per layer read from the
//! files, and the same embeddings on both.

#![allow(dead_code)]

use prune::io::shrink_plan::shrink_plan;
use prune::io::{write_pruned, Checkpoint};
use prune::nlp::WordPiece;
use prune::PruningConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn minilm_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/minilm");
    assert!(
        dir.join("model.safetensors").exists() && dir.join("config.json").exists(),
        "{} lacks the model: run `bash scripts/setup.sh minilm`",
        dir.display()
    );
    dir
}

/// MiniLM shrunk by examples/configs/checkpoint_minilm_structured.yaml into a new folder with
/// model.safetensors, config.json and tokenizer.json.
fn shrunk_minilm(tag: &str) -> PathBuf {
    let dir = minilm_dir();
    let out =
        std::env::temp_dir().join(format!("prune-shrunk-minilm-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let config = PruningConfig::from_file(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/configs/checkpoint_minilm_structured.yaml"),
    )
    .unwrap();
    let source = Checkpoint::open(dir.join("model.safetensors")).unwrap();
    let plan = shrink_plan(&config, &source).unwrap();
    write_pruned(
        &out.join("model.safetensors"),
        &source,
        &BTreeMap::new(),
        &plan,
        &|_| {},
    )
    .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let updated = prune::nlp::hf_config::updated(&dir.join("config.json"), &json, &plan.ops)
        .unwrap()
        .expect("heads and FFN units changed");
    std::fs::write(out.join("config.json"), updated.to_string()).unwrap();
    std::fs::copy(dir.join("tokenizer.json"), out.join("tokenizer.json")).unwrap();
    out
}

fn sentences() -> prune::nlp::Encoded {
    let corpus = prune::nlp::Corpus::from_file(minilm_dir().join("sentences.tsv")).unwrap();
    let texts: Vec<String> = corpus
        .sentences
        .iter()
        .take(8)
        .map(|s| s.text.clone())
        .collect();
    WordPiece::from_file(minilm_dir().join("tokenizer.json"))
        .unwrap()
        .encode_batch(&texts, 48)
}

#[cfg(feature = "burn")]
fn burn_embeddings(dir: &Path) -> (Vec<usize>, Vec<usize>, Vec<f32>) {
    use prune::burn::bert::{BertBatch, BertModel};
    let device = burn::tensor::Device::flex();
    let (model, config) = BertModel::from_dir(dir, &device).unwrap();
    let e = sentences();
    let batch = BertBatch::new(&e.ids, &e.mask, e.rows, e.seq, &device).unwrap();
    let out = model.bert.embed(&batch, None, &config).unwrap();
    (
        model.heads(&config),
        model.ffn(),
        out.into_data().try_to_vec::<f32>().unwrap(),
    )
}

#[cfg(feature = "torch")]
fn torch_embeddings(dir: &Path) -> (Vec<usize>, Vec<usize>, Vec<f32>) {
    use prune::torch::bert::{Bert, BertBatch};
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let (model, config) = Bert::from_dir(&vs, dir).unwrap();
    let e = sentences();
    let batch = BertBatch::new(&e.ids, &e.mask, e.rows, e.seq, tch::Device::Cpu).unwrap();
    let out = tch::no_grad(|| model.embed(&batch, None, &config).unwrap());
    let out: Vec<f32> = Vec::<f32>::try_from(&out.flatten(0, -1)).unwrap();
    (model.heads(&config), model.ffn(), out)
}

#[cfg(all(feature = "burn", feature = "torch"))]
#[test]
#[ignore = "needs the MiniLM model: bash scripts/setup.sh minilm"]
fn a_checkpoint_shrunk_by_weight_norms_loads_on_burn_and_torch_alike() {
    let dir = shrunk_minilm("both");
    let (burn_heads, burn_ffn, burn) = burn_embeddings(&dir);
    let (torch_heads, torch_ffn, torch) = torch_embeddings(&dir);
    assert_eq!(burn_heads, vec![8; 6]);
    assert_eq!(burn_ffn, vec![1024; 6]);
    assert_eq!((torch_heads, torch_ffn), (burn_heads, burn_ffn));
    assert_eq!(burn.len(), 8 * 384);
    let worst = burn
        .iter()
        .zip(&torch)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "burn and torch differ by {worst}");
    // The shrink changed the model: its embeddings are not the dense model's.
    let (_, _, dense) = burn_embeddings(&minilm_dir());
    let moved = burn
        .iter()
        .zip(&dense)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        moved > 1e-3,
        "the shrunk model embeds as the dense one ({moved})"
    );
    std::fs::remove_dir_all(&dir).ok();
}
