//! The real all-MiniLM-L6-v2 on burn and torch: tokenisation and dense embeddings against an
//! independent reference (Hugging Face `tokenizers` ids and a NumPy forward pass, made by
//! scripts/make_minilm_fixture.py), structured shrinking that keeps everything changes no
//! output, and a model pruned to 8 heads and 1024 FFN units runs with the expected sizes.
//!
//! Needs `bash scripts/setup.sh minilm`, so every test here is ignored by a plain `cargo test`;
//! `cargo test --test minilm -- --ignored` (and scripts/test-all.sh) runs them, and they fail
//! naming the setup command when the model is missing.

use prune::nlp::{Encoded, WordPiece};
use prune::LayerOutcome;
use prune::PruningConfig;
use std::path::PathBuf;

const HIDDEN: usize = 384;
const LAYERS: usize = 6;

fn minilm_dir() -> PathBuf {
    let dir = std::env::var_os("PRUNE_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".deps/minilm"));
    assert!(
        dir.join("model.safetensors").exists(),
        "MiniLM is not in {}: run `bash scripts/setup.sh minilm`",
        dir.display()
    );
    dir
}

struct Reference {
    texts: Vec<String>,
    ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/minilm_reference.json"
    ))
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = json["sentences"].as_array().unwrap();
    let f = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    Reference {
        texts: rows
            .iter()
            .map(|r| r["text"].as_str().unwrap().to_string())
            .collect(),
        ids: rows
            .iter()
            .map(|r| f(&r["ids"]).into_iter().map(|x| x as u32).collect())
            .collect(),
        embeddings: rows
            .iter()
            .map(|r| f(&r["embedding"]).into_iter().map(|x| x as f32).collect())
            .collect(),
    }
}

/// Sentences for the importance steps and probes (from the corpus the example uses).
fn sentences(dir: &std::path::Path) -> Vec<String> {
    let corpus = prune::nlp::Corpus::from_file(dir.join("sentences.tsv")).unwrap();
    corpus
        .sentences
        .iter()
        .take(12)
        .map(|s| s.text.clone())
        .collect()
}

/// The example's three-structure config: 8 heads, 1024 FFN units, 256 hidden dimensions.
fn hidden_config() -> PruningConfig {
    PruningConfig::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/configs/minilm_hidden.yaml"
    ))
    .unwrap()
}

/// Importance and kept groups agree on both backends: the importance within 1e-3 of its scale,
/// and the kept groups wherever the ranking at the cut is clear (1e-2 of the scale); at least
/// half the rankings must be that clear.
fn assert_same_outcome(ob: &[LayerOutcome], ot: &[LayerOutcome]) {
    let mut compared = 0;
    for (x, y) in ob.iter().zip(ot) {
        assert_eq!((x.pruner, x.layer), (y.pruner, y.layer));
        let scale = x.importance.iter().cloned().fold(0.0f64, f64::max);
        for (p, q) in x.importance.iter().zip(&y.importance) {
            assert!(
                (p - q).abs() <= 1e-3 * scale,
                "pruner {} layer {}: {p} vs {q}",
                x.pruner,
                x.layer
            );
        }
        let target = x.kept.as_ref().unwrap().len();
        let mut sorted = x.importance.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        if sorted[target - 1] - sorted[target] > 1e-2 * scale {
            assert_eq!(x.kept, y.kept, "pruner {} layer {}", x.pruner, x.layer);
            compared += 1;
        }
    }
    assert!(
        compared >= ob.len() / 2,
        "only {compared} of {} rankings were clear enough to compare",
        ob.len()
    );
}

/// The example's config with the given targets.
fn config(heads: usize, ffn: usize) -> PruningConfig {
    let mut c = PruningConfig::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/configs/minilm_heads.yaml"
    ))
    .unwrap();
    for p in &mut c.weight_compression.pruners {
        p.parameters.target = Some(if p.parameters.stride == Some(32) {
            heads
        } else {
            ffn
        });
    }
    c
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= tol, "{what}: largest difference {worst} > {tol}");
}

fn cosine_rows(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.chunks(HIDDEN)
        .zip(b.chunks(HIDDEN))
        .map(|(x, y)| {
            let dot: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
            let n = |v: &[f32]| v.iter().map(|p| p * p).sum::<f32>().sqrt();
            dot / (n(x) * n(y))
        })
        .collect()
}

/// Parameters removed per layer when keeping `heads` of 12 and `ffn` of 1536.
fn removed_per_layer(heads: usize, ffn: usize) -> usize {
    let rows = (12 - heads) * 32;
    let units = 1536 - ffn;
    3 * (rows * HIDDEN + rows) + HIDDEN * rows + units * HIDDEN + units + HIDDEN * units
}

#[test]
#[ignore = "needs the MiniLM model: bash scripts/setup.sh minilm"]
fn tokenizer_matches_the_reference_ids() {
    let dir = minilm_dir();
    let tok = WordPiece::from_file(dir.join("tokenizer.json")).unwrap();
    let r = reference();
    for (text, ids) in r.texts.iter().zip(&r.ids) {
        assert_eq!(&tok.encode(text, 128), ids, "{text}");
    }
}

/// What a test needs from one framework's MiniLM.
trait Minilm {
    fn embed(&self, batch: &Encoded) -> Vec<f32>;
    /// One importance step with the contrastive objective, through the session's hooks.
    fn importance_step(&mut self, a: &Encoded, b: &Encoded);
    fn begin(&mut self);
    fn end(&mut self);
    fn outcome(&self) -> Vec<LayerOutcome>;
    fn params(&self) -> usize;
    fn sizes(&self) -> (Vec<usize>, Vec<usize>);
    fn export(&self) -> prune::io::TensorMap;
    /// Every slice the session's shrinks kept.
    fn shrunk(&self) -> Vec<prune::ShrinkOp>;
}

fn dense_matches_reference(m: &dyn Minilm, tok: &WordPiece) {
    let r = reference();
    for (text, want) in r.texts.iter().zip(&r.embeddings) {
        let got = m.embed(&tok.encode_batch(&[text], 128));
        assert_close(&got, want, 2e-5, text);
    }
    // Padding must not change a sentence's embedding.
    let batch = tok.encode_batch(&r.texts, 128);
    let got = m.embed(&batch);
    for (i, want) in r.embeddings.iter().enumerate() {
        assert_close(
            &got[i * HIDDEN..(i + 1) * HIDDEN],
            want,
            2e-5,
            &format!("padded row {i}"),
        );
    }
}

/// Importance from two contrastive steps, then the shrink; returns embeddings before and after.
fn prune_with(m: &mut dyn Minilm, tok: &WordPiece, texts: &[String]) -> (Vec<f32>, Vec<f32>) {
    let probe = tok.encode_batch(&texts[8..12], 128);
    let before = m.embed(&probe);
    m.begin();
    for step in 0..2 {
        let a = tok.encode_batch(&texts[step * 4..step * 4 + 4], 128);
        let b = tok.encode_batch(&texts[step * 4 + 1..step * 4 + 5], 128);
        m.importance_step(&a, &b);
    }
    m.end();
    (before, m.embed(&probe))
}

fn keeping_everything_changes_nothing(
    mut m: Box<dyn Minilm>,
    tok: &WordPiece,
    dir: &std::path::Path,
) {
    let dense_params = m.params();
    let (before, after) = prune_with(m.as_mut(), tok, &sentences(dir));
    assert_eq!(m.sizes(), (vec![12; LAYERS], vec![1536; LAYERS]));
    assert_eq!(m.params(), dense_params);
    assert_eq!(
        before, after,
        "outputs changed although every head and unit was kept"
    );
    for o in m.outcome() {
        assert_eq!(o.kept.unwrap(), (0..o.groups).collect::<Vec<_>>());
    }
}

fn pruned_model_runs(
    mut m: Box<dyn Minilm>,
    tok: &WordPiece,
    dir: &std::path::Path,
) -> Vec<LayerOutcome> {
    let dense_params = m.params();
    let (before, after) = prune_with(m.as_mut(), tok, &sentences(dir));
    assert_eq!(m.sizes(), (vec![8; LAYERS], vec![1024; LAYERS]));
    assert_eq!(
        m.params(),
        dense_params - LAYERS * removed_per_layer(8, 1024)
    );
    assert_eq!(after.len(), before.len());
    assert!(after.iter().all(|v| v.is_finite()));
    let cos = cosine_rows(&before, &after);
    assert!(
        cos.iter().all(|&c| c > 0.3 && c < 0.9999),
        "cosine to dense {cos:?}"
    );
    let outcome = m.outcome();
    for o in &outcome {
        let kept = o.kept.as_ref().unwrap();
        assert!(
            kept.windows(2).all(|w| w[0] < w[1]),
            "kept groups in original order"
        );
        assert_eq!(kept.len(), if o.groups == 12 { 8 } else { 1024 });
    }
    // Q/K/V (pruner 0) and the attention output (pruner 1) keep the same heads in every layer.
    for layer in 0..LAYERS {
        let heads = |p: usize| {
            outcome
                .iter()
                .find(|o| o.pruner == p && o.layer == layer)
                .unwrap()
                .kept
                .clone()
        };
        assert_eq!(heads(0), heads(1), "layer {layer}");
    }
    outcome
}

#[cfg(feature = "burn")]
mod on_burn {
    use super::*;
    use burn::module::Module;
    use burn::tensor::{Device, Tensor};
    use prune::burn::bert::{Bert, BertBatch, BertConfig};
    use prune::burn::{BurnModel, BurnPruning};
    use prune::{Model, Pruning};

    pub struct BurnMinilm {
        model: BurnModel<Bert>,
        pruning: BurnPruning,
        device: Device,
        config: BertConfig,
    }

    impl BurnMinilm {
        pub fn new(dir: &std::path::Path, config: PruningConfig) -> Self {
            let device = Device::flex().autodiff();
            let (tensors, _) = prune::io::read_f32(dir.join("model.safetensors")).unwrap();
            BurnMinilm {
                model: BurnModel::new(Bert::from_tensors(&tensors, &device).unwrap()),
                pruning: Pruning::new(config).unwrap(),
                device,
                config: BertConfig::minilm(),
            }
        }
    }

    fn batch(e: &Encoded, d: &Device) -> BertBatch {
        BertBatch::new(&e.ids, &e.mask, e.rows, e.seq, d).unwrap()
    }

    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    impl Minilm for BurnMinilm {
        fn embed(&self, e: &Encoded) -> Vec<f32> {
            let valid = self.model.module().valid();
            host(
                valid
                    .embed(&batch(e, &Device::flex()), None, &self.config)
                    .unwrap(),
            )
        }
        fn importance_step(&mut self, a: &Encoded, b: &Encoded) {
            prune::burn::bert::contrastive_importance_step(
                &mut self.pruning,
                &mut self.model,
                &batch(a, &self.device),
                &batch(b, &self.device),
                &self.config,
            )
            .unwrap();
        }
        fn begin(&mut self) {
            self.pruning.on_epoch_begin(&mut self.model, 0).unwrap();
        }
        fn end(&mut self) {
            self.pruning.on_epoch_end(&mut self.model).unwrap();
        }
        fn outcome(&self) -> Vec<LayerOutcome> {
            self.pruning.structured_outcome()
        }
        fn params(&self) -> usize {
            self.model
                .weights()
                .unwrap()
                .iter()
                .map(|w| w.numel())
                .sum()
        }
        fn sizes(&self) -> (Vec<usize>, Vec<usize>) {
            let m = self.model.module();
            (m.heads(&self.config), m.ffn())
        }
        fn export(&self) -> prune::io::TensorMap {
            prune::io::from_model(&self.model).unwrap()
        }

        fn shrunk(&self) -> Vec<prune::ShrinkOp> {
            self.pruning.shrunk().to_vec()
        }
    }

    #[test]
    #[ignore = "needs the MiniLM model: bash scripts/setup.sh minilm"]
    fn burn_dense_embeddings_match_the_numpy_reference() {
        let dir = minilm_dir();
        let tok = WordPiece::from_file(dir.join("tokenizer.json")).unwrap();
        dense_matches_reference(&BurnMinilm::new(&dir, config(8, 1024)), &tok);
    }

    #[test]
    #[ignore = "needs the MiniLM model: bash scripts/setup.sh minilm"]
    fn burn_keeping_every_head_and_unit_changes_no_output() {
        let dir = minilm_dir();
        let tok = WordPiece::from_file(dir.join("tokenizer.json")).unwrap();
        keeping_everything_changes_nothing(
            Box::new(BurnMinilm::new(&dir, config(12, 1536))),
            &tok,
            &dir,
        );
    }

    #[test]
    #[ignore = "needs the MiniLM model: bash scripts/setup.sh minilm"]
    fn burn_pruned_to_8_heads_and_1024_units_runs() {
        let dir = minilm_dir();
        let tok = WordPiece::from_file(dir.join("tokenizer.json")).unwrap();
        pruned_model_runs(Box::new(BurnMinilm::new(&dir, config(8, 1024))), &tok, &dir);
    }
}

#[cfg(feature = "torch")]
mod on_torch {
    use super::*;
    use prune::torch::bert::{Bert, BertBatch, BertConfig};
    use prune::torch::{TorchModel, TorchPruning};
    use prune::{Model, Pruning};
    use tch::nn::VarStore;
    use tch::{Device, Tensor};

    pub struct TorchMinilm {
        bert: Bert,
        model: TorchModel<VarStore>,
        pruning: TorchPruning,
        config: BertConfig,
    }

    impl TorchMinilm {
        pub fn new(dir: &std::path::Path, config: PruningConfig) -> Self {
            let (tensors, _) = prune::io::read_f32(dir.join("model.safetensors")).unwrap();
            let vs = VarStore::new(Device::Cpu);
            let bert = Bert::from_tensors(&vs, &tensors).unwrap();
            TorchMinilm {
                bert,
                model: TorchModel::new(vs),
                pruning: Pruning::new(config).unwrap(),
                config: BertConfig::minilm(),
            }
        }
    }

    fn batch(e: &Encoded) -> BertBatch {
        BertBatch::new(&e.ids, &e.mask, e.rows, e.seq, Device::Cpu).unwrap()
    }

    fn host(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
    }

    impl Minilm for TorchMinilm {
        fn embed(&self, e: &Encoded) -> Vec<f32> {
            tch::no_grad(|| host(&self.bert.embed(&batch(e), None, &self.config).unwrap()))
        }
        fn importance_step(&mut self, a: &Encoded, b: &Encoded) {
            prune::torch::bert::contrastive_importance_step(
                &mut self.pruning,
                &mut self.model,
                &self.bert,
                &batch(a),
                &batch(b),
                &self.config,
            )
            .unwrap();
        }
        fn begin(&mut self) {
            self.pruning.on_epoch_begin(&mut self.model, 0).unwrap();
        }
        fn end(&mut self) {
            self.pruning.on_epoch_end(&mut self.model).unwrap();
        }
        fn outcome(&self) -> Vec<LayerOutcome> {
            self.pruning.structured_outcome()
        }
        fn params(&self) -> usize {
            self.model
                .weights()
                .unwrap()
                .iter()
                .map(|w| w.numel())
                .sum()
        }
        fn sizes(&self) -> (Vec<usize>, Vec<usize>) {
            (self.bert.heads(&self.config), self.bert.ffn())
        }
        fn export(&self) -> prune::io::TensorMap {
            prune::io::from_model(&self.model).unwrap()
        }

        fn shrunk(&self) -> Vec<prune::ShrinkOp> {
            self.pruning.shrunk().to_vec()
        }
    }

    #[test]
    #[ignore = "needs the MiniLM model: bash scripts/setup.sh minilm"]
    fn torch_dense_embeddings_match_the_numpy_reference() {
        let dir = minilm_dir();
        let tok = WordPiece::from_file(dir.join("tokenizer.json")).unwrap();
        dense_matches_reference(&TorchMinilm::new(&dir, config(8, 1024)), &tok);
    }

    #[test]
    #[ignore = "needs the MiniLM model: bash scripts/setup.sh minilm"]
    fn torch_keeping_every_head_and_unit_changes_no_output() {
        let dir = minilm_dir();
        let tok = WordPiece::from_file(dir.join("tokenizer.json")).unwrap();
        keeping_everything_changes_nothing(
            Box::new(TorchMinilm::new(&dir, config(12, 1536))),
            &tok,
            &dir,
        );
    }

    #[test]
    #[ignore = "needs the MiniLM model: bash scripts/setup.sh minilm"]
    fn torch_pruned_to_8_heads_and_1024_units_runs() {
        let dir = minilm_dir();
        let tok = WordPiece::from_file(dir.join("tokenizer.json")).unwrap();
        pruned_model_runs(
            Box::new(TorchMinilm::new(&dir, config(8, 1024))),
            &tok,
            &dir,
        );
    }

    /// Identical weights and data give the same importance and the same kept heads and units
    /// on burn and torch (where the ranking is not a near tie).
    #[cfg(feature = "burn")]
    #[test]
    #[ignore = "needs the MiniLM model: bash scripts/setup.sh minilm"]
    fn burn_and_torch_keep_the_same_heads_and_units() {
        let dir = minilm_dir();
        let tok = WordPiece::from_file(dir.join("tokenizer.json")).unwrap();
        let texts = sentences(&dir);
        let mut b: Box<dyn Minilm> =
            Box::new(super::on_burn::BurnMinilm::new(&dir, config(8, 1024)));
        let mut t: Box<dyn Minilm> = Box::new(TorchMinilm::new(&dir, config(8, 1024)));
        prune_with(b.as_mut(), &tok, &texts);
        prune_with(t.as_mut(), &tok, &texts);
        assert_same_outcome(&b.outcome(), &t.outcome());

        // The pruned burn model, saved as safetensors, loads into torch with its new sizes and
        // gives the same embeddings.
        let file =
            std::env::temp_dir().join(format!("prune-minilm-{}.safetensors", std::process::id()));
        prune::io::write_f32(&file, &b.export(), &Default::default()).unwrap();
        let (tensors, _) = prune::io::read_f32(&file).unwrap();
        std::fs::remove_file(&file).ok();
        let vs = VarStore::new(Device::Cpu);
        let loaded = Bert::from_tensors(&vs, &tensors).unwrap();
        let config = BertConfig::minilm();
        assert_eq!((loaded.heads(&config), loaded.ffn()), b.sizes());
        let probe = tok.encode_batch(&texts[8..12], 128);
        let from_torch =
            tch::no_grad(|| host(&loaded.embed(&batch(&probe), None, &config).unwrap()));
        assert_close(
            &from_torch,
            &b.embed(&probe),
            2e-5,
            "pruned burn model loaded in torch",
        );
    }

    /// Heads, FFN units and the hidden size pruned in one run from the same data keep the same
    /// groups and hidden dimensions on burn and torch; the burn model saved as model.safetensors
    /// and config.json (MiniLM's, brought to the new sizes) loads in torch from the folder alone
    /// and gives the same embeddings.
    #[cfg(feature = "burn")]
    #[test]
    #[ignore = "needs the MiniLM model: bash scripts/setup.sh minilm"]
    fn burn_and_torch_keep_the_same_hidden_dimensions_and_the_saved_folder_loads() {
        let dir = minilm_dir();
        let tok = WordPiece::from_file(dir.join("tokenizer.json")).unwrap();
        let texts = sentences(&dir);
        let mut b: Box<dyn Minilm> =
            Box::new(super::on_burn::BurnMinilm::new(&dir, hidden_config()));
        let mut t: Box<dyn Minilm> = Box::new(TorchMinilm::new(&dir, hidden_config()));
        prune_with(b.as_mut(), &tok, &texts);
        prune_with(t.as_mut(), &tok, &texts);
        let (ob, ot) = (b.outcome(), t.outcome());
        let hidden = ob.iter().find(|o| o.pruner == 3).unwrap();
        assert_eq!(
            (hidden.groups, hidden.kept.as_ref().unwrap().len()),
            (384, 256)
        );
        assert_same_outcome(&ob, &ot);
        assert_eq!(b.sizes(), (vec![8; LAYERS], vec![1024; LAYERS]));

        let out = std::env::temp_dir().join(format!("prune-minilm-hidden-{}", std::process::id()));
        let updated = save_folder(b.as_ref(), &dir, &out);
        assert_eq!(updated["hidden_size"], 256);
        // 8 heads of 32 fill 256: the plain form, as any BERT implementation builds it.
        assert_eq!(updated["num_attention_heads"], 8);
        assert_eq!(updated["intermediate_size"], 1024);
        let vs = VarStore::new(Device::Cpu);
        let loaded = Bert::from_dir(&vs, &out);
        std::fs::remove_dir_all(&out).ok();
        let (loaded, config) = loaded.unwrap();
        assert_eq!(config.head_dim, 32);
        assert_eq!((loaded.heads(&config), loaded.ffn()), b.sizes());
        let probe = tok.encode_batch(&texts[8..12], 128);
        let from_torch =
            tch::no_grad(|| host(&loaded.embed(&batch(&probe), None, &config).unwrap()));
        assert_eq!(from_torch.len(), 4 * 256);
        assert_close(
            &from_torch,
            &b.embed(&probe),
            2e-5,
            "hidden-pruned burn model loaded in torch from its folder",
        );

        // And the other way: torch's pruned model, from its folder, in burn.
        let out =
            std::env::temp_dir().join(format!("prune-minilm-hidden-t-{}", std::process::id()));
        save_folder(t.as_ref(), &dir, &out);
        let checkpoint = prune::nlp::bert::read_dir(&out);
        std::fs::remove_dir_all(&out).ok();
        let checkpoint = checkpoint.unwrap();
        assert_eq!(checkpoint.config.head_dim, 32);
        let device = burn::tensor::Device::flex();
        let in_burn = prune::burn::bert::Bert::from_tensors(&checkpoint.tensors, &device).unwrap();
        let enc = prune::burn::bert::BertBatch::new(
            &probe.ids,
            &probe.mask,
            probe.rows,
            probe.seq,
            &device,
        )
        .unwrap();
        let from_burn = in_burn
            .embed(&enc, None, &checkpoint.config)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_close(
            &from_burn,
            &t.embed(&probe),
            2e-5,
            "hidden-pruned torch model loaded in burn from its folder",
        );
    }

    /// Writes `m`'s pruned weights and MiniLM's config.json brought to the new sizes into
    /// `out`; returns that config.
    fn save_folder(
        m: &dyn Minilm,
        dense_dir: &std::path::Path,
        out: &std::path::Path,
    ) -> serde_json::Value {
        std::fs::create_dir_all(out).unwrap();
        prune::io::write_f32(
            out.join("model.safetensors"),
            &m.export(),
            &Default::default(),
        )
        .unwrap();
        let config_path = dense_dir.join("config.json");
        let dense: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
        let updated = prune::nlp::hf_config::updated(&config_path, &dense, &m.shrunk())
            .unwrap()
            .unwrap();
        std::fs::write(out.join("config.json"), updated.to_string()).unwrap();
        updated
    }
}
