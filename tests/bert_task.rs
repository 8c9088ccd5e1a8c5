//! Hugging Face task checkpoints on burn and torch, with no download: a synthetic
//! BertForSequenceClassification (hidden 768, 12 heads of 64, FFN 3072, 2 layers, pooler,
//! 2 labels, config.json) pruned by INC's own head-and-FFN gradient_sensitivity config as
//! written, with a classification importance step; the same logits on both backends; a
//! RoBERTa-named classifier loaded under its own names; and a config.json that disagrees with
//! the weights refused.

use prune::io::{HostTensor, TensorMap};
use prune::nlp::bert::BertConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const INC_HEAD_CONF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/inc/upstream/pytorch-nlp-text-classification-pruning-gradient_sensitivity-head_conf.yaml"
);

/// The sizes of a synthetic checkpoint.
#[derive(Clone, Copy)]
struct Sizes {
    roberta: bool,
    hidden: usize,
    heads: usize,
    ffn: usize,
    layers: usize,
    vocab: usize,
    positions: usize,
    types: usize,
    labels: usize,
}

/// The BertForSequenceClassification the INC config is run on.
const BERT: Sizes = Sizes {
    roberta: false,
    hidden: 768,
    heads: 12,
    ffn: 3072,
    layers: 2,
    vocab: 120,
    positions: 64,
    types: 2,
    labels: 2,
};

/// A small RobertaForSequenceClassification: positions after the padding id 1.
const ROBERTA: Sizes = Sizes {
    roberta: true,
    hidden: 64,
    heads: 4,
    ffn: 128,
    layers: 2,
    vocab: 120,
    positions: 66,
    types: 1,
    labels: 3,
};

impl Sizes {
    fn prefix(&self) -> &'static str {
        if self.roberta {
            "roberta."
        } else {
            "bert."
        }
    }

    /// Tensors in Hugging Face names, deterministic values; Linear weights scaled by
    /// 1/sqrt(inputs).
    fn tensors(&self) -> TensorMap {
        let mut m = TensorMap::new();
        let mut seed = 100u64;
        let mut put = |name: String, shape: Vec<usize>, scale: f32, offset: f32| {
            seed += 1;
            let data = prune_core::testing::conformance::values(seed, shape.iter().product())
                .into_iter()
                .map(|v| v * scale + offset)
                .collect();
            m.insert(name, HostTensor { shape, data });
        };
        let h = self.hidden;
        let p = self.prefix();
        let linear = |put: &mut dyn FnMut(String, Vec<usize>, f32, f32),
                      stem: String,
                      out: usize,
                      inp: usize| {
            put(
                format!("{stem}.weight"),
                vec![out, inp],
                (inp as f32).sqrt().recip(),
                0.0,
            );
            put(format!("{stem}.bias"), vec![out], 0.1, 0.0);
        };
        let norm = |put: &mut dyn FnMut(String, Vec<usize>, f32, f32), stem: String| {
            put(format!("{stem}.weight"), vec![h], 0.1, 1.0);
            put(format!("{stem}.bias"), vec![h], 0.1, 0.0);
        };
        put(
            format!("{p}embeddings.word_embeddings.weight"),
            vec![self.vocab, h],
            1.0,
            0.0,
        );
        put(
            format!("{p}embeddings.position_embeddings.weight"),
            vec![self.positions, h],
            0.5,
            0.0,
        );
        put(
            format!("{p}embeddings.token_type_embeddings.weight"),
            vec![self.types, h],
            0.1,
            0.0,
        );
        norm(&mut put, format!("{p}embeddings.LayerNorm"));
        for l in 0..self.layers {
            let q = format!("{p}encoder.layer.{l}.");
            for w in ["query", "key", "value"] {
                linear(&mut put, format!("{q}attention.self.{w}"), h, h);
            }
            linear(&mut put, format!("{q}attention.output.dense"), h, h);
            norm(&mut put, format!("{q}attention.output.LayerNorm"));
            linear(&mut put, format!("{q}intermediate.dense"), self.ffn, h);
            linear(&mut put, format!("{q}output.dense"), h, self.ffn);
            norm(&mut put, format!("{q}output.LayerNorm"));
        }
        if self.roberta {
            linear(&mut put, "classifier.dense".into(), h, h);
            linear(&mut put, "classifier.out_proj".into(), self.labels, h);
        } else {
            linear(&mut put, format!("{p}pooler.dense"), h, h);
            linear(&mut put, "classifier".into(), self.labels, h);
        }
        m
    }

    /// The Hugging Face config.json of this model.
    fn config_json(&self) -> serde_json::Value {
        let id2label: serde_json::Map<String, serde_json::Value> = (0..self.labels)
            .map(|i| (i.to_string(), format!("LABEL_{i}").into()))
            .collect();
        serde_json::json!({
            "architectures": [if self.roberta {
                "RobertaForSequenceClassification"
            } else {
                "BertForSequenceClassification"
            }],
            "model_type": if self.roberta { "roberta" } else { "bert" },
            "hidden_size": self.hidden,
            "num_attention_heads": self.heads,
            "num_hidden_layers": self.layers,
            "intermediate_size": self.ffn,
            "vocab_size": self.vocab,
            "max_position_embeddings": self.positions,
            "type_vocab_size": self.types,
            "layer_norm_eps": if self.roberta { 1e-5 } else { 1e-12 },
            "pad_token_id": if self.roberta { 1 } else { 0 },
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "id2label": id2label,
        })
    }
}

/// A model directory in the temp dir, removed when dropped.
struct ModelDir(PathBuf);

impl ModelDir {
    fn new(name: &str, sizes: &Sizes, config: Option<serde_json::Value>) -> ModelDir {
        let dir =
            std::env::temp_dir().join(format!("prune-bert-task-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        prune::io::write_f32(
            dir.join("model.safetensors"),
            &sizes.tensors(),
            &Default::default(),
        )
        .unwrap();
        if let Some(c) = config {
            std::fs::write(dir.join("config.json"), c.to_string()).unwrap();
        }
        ModelDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ModelDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// A padded batch of `rows` sentences of up to `seq` tokens (first token 2, as a [CLS]), with
/// labels.
struct Sentences {
    ids: Vec<i64>,
    mask: Vec<f32>,
    rows: usize,
    seq: usize,
    labels: Vec<i64>,
}

fn sentences(seed: u64, rows: usize, seq: usize, vocab: usize, labels: usize) -> Sentences {
    let noise = prune_core::testing::conformance::values(seed, rows * seq);
    let mut ids = Vec::with_capacity(rows * seq);
    let mut mask = Vec::with_capacity(rows * seq);
    for r in 0..rows {
        let len = seq - (r % 3);
        for t in 0..seq {
            let id = if t == 0 {
                2
            } else if t < len {
                3 + ((noise[r * seq + t] + 1.0) * 0.5 * (vocab - 4) as f32) as i64
            } else {
                0
            };
            ids.push(id);
            mask.push(if t < len { 1.0 } else { 0.0 });
        }
    }
    Sentences {
        ids,
        mask,
        rows,
        seq,
        labels: (0..rows)
            .map(|r| ((r * 7 + seed as usize) % labels) as i64)
            .collect(),
    }
}

/// What a test needs from one backend's task model.
trait Task {
    /// Weights by canonical name, with canonical shapes.
    fn shapes(&self) -> BTreeMap<String, Vec<usize>>;
    /// Logits `[rows, labels]`, row-major, with `config`.
    fn logits_with(&self, batch: &Sentences, config: &BertConfig) -> (Vec<usize>, Vec<f32>);
    fn config(&self) -> BertConfig;
    fn logits(&self, batch: &Sentences) -> (Vec<usize>, Vec<f32>) {
        self.logits_with(batch, &self.config())
    }
    fn train_begin(&mut self);
    fn epoch_begin(&mut self, epoch: usize);
    fn importance_step(&mut self, batch: &Sentences) -> f32;
    fn epoch_end(&mut self);
    fn train_end(&mut self);
    fn epochs(&self) -> usize;
    fn outcome(&self) -> Vec<prune::LayerOutcome>;
}

/// The file's tensor names and shapes.
fn file_shapes(dir: &Path) -> BTreeMap<String, Vec<usize>> {
    let (tensors, _) = prune::io::read_f32(dir.join("model.safetensors")).unwrap();
    tensors.into_iter().map(|(n, t)| (n, t.shape)).collect()
}

/// INC's config as written over the epochs its schedule needs, then the shrunk sizes.
fn pruned_by_the_inc_config(task: &mut dyn Task, dir: &Path) {
    assert_eq!(
        task.shapes(),
        file_shapes(dir),
        "names and shapes as in the file"
    );
    let probe = sentences(1, 3, 10, BERT.vocab, BERT.labels);
    let (dims, dense) = task.logits(&probe);
    assert_eq!(dims, vec![3, 2]);

    assert_eq!(task.epochs(), 2, "the config's schedule ends at epoch 1");
    task.train_begin();
    let mut losses = Vec::new();
    for epoch in 0..task.epochs() {
        task.epoch_begin(epoch);
        for step in 0..2 {
            let batch = sentences(
                10 + (epoch * 2 + step) as u64,
                4,
                8,
                BERT.vocab,
                BERT.labels,
            );
            losses.push(task.importance_step(&batch));
        }
        task.epoch_end();
    }
    task.train_end();
    assert!(
        losses.iter().all(|l| l.is_finite() && *l > 0.0),
        "{losses:?}"
    );

    let shapes = task.shapes();
    for l in 0..BERT.layers {
        let shape = |suffix: &str| {
            let name = format!("bert.encoder.layer.{l}.{suffix}");
            shapes
                .get(&name)
                .unwrap_or_else(|| panic!("{name} is missing"))
                .clone()
        };
        for w in ["query", "key", "value"] {
            assert_eq!(shape(&format!("attention.self.{w}.weight")), vec![512, 768]);
            assert_eq!(shape(&format!("attention.self.{w}.bias")), vec![512]);
        }
        assert_eq!(shape("attention.output.dense.weight"), vec![768, 512]);
        assert_eq!(shape("attention.output.dense.bias"), vec![768]);
        assert_eq!(shape("intermediate.dense.weight"), vec![2000, 768]);
        assert_eq!(shape("intermediate.dense.bias"), vec![2000]);
        assert_eq!(shape("output.dense.weight"), vec![768, 2000]);
        assert_eq!(shape("output.dense.bias"), vec![768]);
    }
    assert_eq!(shapes["classifier.weight"], vec![2, 768]);
    assert_eq!(shapes["bert.pooler.dense.weight"], vec![768, 768]);

    let outcome = task.outcome();
    assert_eq!(outcome.len(), 4 * BERT.layers, "four pruners, two layers");
    for o in &outcome {
        let kept = o.kept.as_ref().expect("every pruner shrank its layer");
        let (groups, target) = if o.pruner < 2 { (12, 8) } else { (3072, 2000) };
        assert_eq!((o.groups, kept.len()), (groups, target), "{o:?}");
        assert!(kept.windows(2).all(|w| w[0] < w[1]));
        assert!(o.importance.iter().all(|v| v.is_finite()));
        let first = o.importance[0];
        assert!(
            o.importance.iter().any(|v| *v != first),
            "pruner {} layer {}: importance does not tell groups apart",
            o.pruner,
            o.layer
        );
    }
    for l in 0..BERT.layers {
        let kept = |p: usize| {
            outcome
                .iter()
                .find(|o| o.pruner == p && o.layer == l)
                .and_then(|o| o.kept.clone())
        };
        assert_eq!(kept(0), kept(1), "Q/K/V and the output keep the same heads");
        assert_eq!(kept(2), kept(3), "both FFN pruners keep the same units");
    }

    let (dims, after) = task.logits(&probe);
    assert_eq!(dims, vec![3, 2], "the shrunk model still classifies");
    assert!(after.iter().all(|v| v.is_finite()));
    assert_ne!(after, dense, "removing heads and units changes the logits");
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= tol, "{what}: largest difference {worst} > {tol}");
}

/// A RoBERTa classifier: named as its file, positions from pad_token_id + 1, and it runs.
fn roberta_runs(task: &dyn Task, dir: &Path) -> Vec<f32> {
    let shapes = task.shapes();
    assert_eq!(shapes, file_shapes(dir), "names and shapes as in the file");
    assert!(shapes.contains_key("roberta.encoder.layer.1.attention.self.query.weight"));
    assert!(shapes.contains_key("classifier.out_proj.weight"));
    assert!(!shapes.keys().any(|n| n.contains("pooler")));
    let config = task.config();
    assert_eq!(
        config,
        BertConfig {
            head_dim: 16,
            layer_norm_eps: 1e-5,
            position_offset: 2
        }
    );
    let batch = sentences(3, 3, 9, ROBERTA.vocab, ROBERTA.labels);
    let (dims, logits) = task.logits(&batch);
    assert_eq!(dims, vec![3, 3]);
    assert!(logits.iter().all(|v| v.is_finite()));
    let from_zero = BertConfig {
        position_offset: 0,
        ..config
    };
    assert_ne!(
        task.logits_with(&batch, &from_zero).1,
        logits,
        "the position offset reaches the forward pass"
    );
    logits
}

/// config.json with the wrong hidden size and layer count.
fn disagreeing_config() -> serde_json::Value {
    let mut c = ROBERTA.config_json();
    c["model_type"] = "bert".into();
    c["hidden_size"] = 768.into();
    c["num_attention_heads"] = 12.into();
    c["num_hidden_layers"] = 3.into();
    c
}

fn check_disagreement(err: &prune::PruneError) {
    let err = err.to_string();
    for part in [
        "config.json",
        "hidden_size: 768, but `bert.embeddings.word_embeddings.weight` is [120, 64]: 64 wide",
        "num_hidden_layers: 3, but the checkpoint has 2 layers",
        "no `bert.encoder.layer.2.attention.self.query.weight`",
    ] {
        assert!(err.contains(part), "`{part}` not in: {err}");
    }
}

/// A small BERT classifier whose config.json disagrees with it.
fn disagreeing_dir(name: &str) -> ModelDir {
    let sizes = Sizes {
        roberta: false,
        types: 2,
        ..ROBERTA
    };
    ModelDir::new(name, &sizes, Some(disagreeing_config()))
}

#[cfg(feature = "burn")]
mod on_burn {
    use super::*;
    use burn::module::Module;
    use burn::tensor::{Device, Tensor};
    use prune::burn::bert::{classification_importance_step, BertBatch, BertModel};
    use prune::burn::{BurnModel, BurnPruning};
    use prune::{Model, Pruning};

    pub struct BurnTask {
        model: BurnModel<BertModel>,
        pruning: BurnPruning,
        device: Device,
        config: BertConfig,
    }

    impl BurnTask {
        pub fn new(dir: &Path) -> Self {
            let device = Device::flex().autodiff();
            let (model, config) = BertModel::from_dir(dir, &device).unwrap();
            BurnTask {
                model: BurnModel::new(model),
                pruning: Pruning::from_file(INC_HEAD_CONF).unwrap(),
                device,
                config,
            }
        }
    }

    fn batch(s: &Sentences, d: &Device) -> BertBatch {
        BertBatch::new(&s.ids, &s.mask, s.rows, s.seq, d).unwrap()
    }

    fn host(t: Tensor<2>) -> (Vec<usize>, Vec<f32>) {
        (
            t.dims().to_vec(),
            t.into_data().try_to_vec::<f32>().unwrap(),
        )
    }

    impl Task for BurnTask {
        fn shapes(&self) -> BTreeMap<String, Vec<usize>> {
            self.model
                .weights()
                .unwrap()
                .into_iter()
                .map(|w| (w.name, w.shape))
                .collect()
        }
        fn logits_with(&self, s: &Sentences, config: &BertConfig) -> (Vec<usize>, Vec<f32>) {
            let valid = self.model.module().valid();
            host(
                valid
                    .logits(&batch(s, &Device::flex()), None, config)
                    .unwrap(),
            )
        }
        fn config(&self) -> BertConfig {
            self.config
        }
        fn train_begin(&mut self) {
            self.pruning.on_train_begin(&mut self.model).unwrap();
        }
        fn epoch_begin(&mut self, epoch: usize) {
            self.pruning.on_epoch_begin(&mut self.model, epoch).unwrap();
        }
        fn importance_step(&mut self, s: &Sentences) -> f32 {
            classification_importance_step(
                &mut self.pruning,
                &mut self.model,
                &batch(s, &self.device),
                &s.labels,
                &self.config,
            )
            .unwrap()
        }
        fn epoch_end(&mut self) {
            self.pruning.on_epoch_end(&mut self.model).unwrap();
        }
        fn train_end(&mut self) {
            self.pruning.on_train_end(&mut self.model).unwrap();
        }
        fn epochs(&self) -> usize {
            self.pruning
                .pruners()
                .iter()
                .map(|p| p.end_epoch + 1)
                .max()
                .unwrap_or(0)
        }
        fn outcome(&self) -> Vec<prune::LayerOutcome> {
            self.pruning.structured_outcome()
        }
    }

    #[test]
    fn burn_runs_the_inc_head_config_on_a_bert_classifier() {
        let dir = ModelDir::new("burn-bert", &BERT, Some(BERT.config_json()));
        let mut task = BurnTask::new(dir.path());
        assert_eq!(
            task.config,
            BertConfig {
                head_dim: 64,
                layer_norm_eps: 1e-12,
                position_offset: 0
            }
        );
        assert_eq!(task.model.module().prefix(), "bert.");
        pruned_by_the_inc_config(&mut task, dir.path());
        assert_eq!(task.model.module().heads(&task.config), vec![8, 8]);
        assert_eq!(task.model.module().ffn(), vec![2000, 2000]);
    }

    #[test]
    fn burn_loads_a_roberta_classifier_under_its_names() {
        let dir = ModelDir::new("burn-roberta", &ROBERTA, Some(ROBERTA.config_json()));
        let task = BurnTask::new(dir.path());
        assert_eq!(task.model.module().prefix(), "roberta.");
        assert_eq!(task.model.module().labels(), Some(3));
        roberta_runs(&task, dir.path());
    }

    #[test]
    fn burn_refuses_a_config_json_that_disagrees_with_the_weights() {
        let dir = disagreeing_dir("burn-disagree");
        let err = BertModel::from_dir(dir.path(), &Device::flex()).unwrap_err();
        check_disagreement(&err);
    }
}

#[cfg(feature = "torch")]
mod on_torch {
    use super::*;
    use prune::torch::bert::{classification_importance_step, Bert, BertBatch};
    use prune::torch::{TorchModel, TorchPruning};
    use prune::{Model, Pruning};
    use tch::nn::VarStore;
    use tch::{Device, Tensor};

    pub struct TorchTask {
        pub bert: Bert,
        model: TorchModel<VarStore>,
        pruning: TorchPruning,
        config: BertConfig,
    }

    impl TorchTask {
        pub fn new(dir: &Path) -> Self {
            let vs = VarStore::new(Device::Cpu);
            let (bert, config) = Bert::from_dir(&vs, dir).unwrap();
            TorchTask {
                bert,
                model: TorchModel::new(vs),
                pruning: Pruning::from_file(INC_HEAD_CONF).unwrap(),
                config,
            }
        }
    }

    fn batch(s: &Sentences) -> BertBatch {
        BertBatch::new(&s.ids, &s.mask, s.rows, s.seq, Device::Cpu).unwrap()
    }

    fn host(t: &Tensor) -> (Vec<usize>, Vec<f32>) {
        (
            t.size().iter().map(|&d| d as usize).collect(),
            Vec::<f32>::try_from(t.flatten(0, -1)).unwrap(),
        )
    }

    impl Task for TorchTask {
        fn shapes(&self) -> BTreeMap<String, Vec<usize>> {
            self.model
                .weights()
                .unwrap()
                .into_iter()
                .map(|w| (w.name, w.shape))
                .collect()
        }
        fn logits_with(&self, s: &Sentences, config: &BertConfig) -> (Vec<usize>, Vec<f32>) {
            tch::no_grad(|| host(&self.bert.logits(&batch(s), None, config).unwrap()))
        }
        fn config(&self) -> BertConfig {
            self.config
        }
        fn train_begin(&mut self) {
            self.pruning.on_train_begin(&mut self.model).unwrap();
        }
        fn epoch_begin(&mut self, epoch: usize) {
            self.pruning.on_epoch_begin(&mut self.model, epoch).unwrap();
        }
        fn importance_step(&mut self, s: &Sentences) -> f32 {
            classification_importance_step(
                &mut self.pruning,
                &mut self.model,
                &self.bert,
                &batch(s),
                &s.labels,
                &self.config,
            )
            .unwrap()
        }
        fn epoch_end(&mut self) {
            self.pruning.on_epoch_end(&mut self.model).unwrap();
        }
        fn train_end(&mut self) {
            self.pruning.on_train_end(&mut self.model).unwrap();
        }
        fn epochs(&self) -> usize {
            self.pruning
                .pruners()
                .iter()
                .map(|p| p.end_epoch + 1)
                .max()
                .unwrap_or(0)
        }
        fn outcome(&self) -> Vec<prune::LayerOutcome> {
            self.pruning.structured_outcome()
        }
    }

    #[test]
    fn torch_runs_the_inc_head_config_on_a_bert_classifier() {
        let dir = ModelDir::new("torch-bert", &BERT, Some(BERT.config_json()));
        let mut task = TorchTask::new(dir.path());
        assert_eq!(
            task.config,
            BertConfig {
                head_dim: 64,
                layer_norm_eps: 1e-12,
                position_offset: 0
            }
        );
        assert_eq!(task.bert.prefix(), "bert.");
        pruned_by_the_inc_config(&mut task, dir.path());
        assert_eq!(task.bert.heads(&task.config), vec![8, 8]);
        assert_eq!(task.bert.ffn(), vec![2000, 2000]);
    }

    #[test]
    fn torch_loads_a_roberta_classifier_under_its_names() {
        let dir = ModelDir::new("torch-roberta", &ROBERTA, Some(ROBERTA.config_json()));
        let task = TorchTask::new(dir.path());
        assert_eq!(task.bert.prefix(), "roberta.");
        assert_eq!(task.bert.labels(), Some(3));
        roberta_runs(&task, dir.path());
    }

    #[test]
    fn torch_refuses_a_config_json_that_disagrees_with_the_weights() {
        let dir = disagreeing_dir("torch-disagree");
        let vs = VarStore::new(Device::Cpu);
        let err = Bert::from_dir(&vs, dir.path()).err().unwrap();
        check_disagreement(&err);
    }

    /// The same checkpoints give the same logits on burn and torch.
    #[cfg(feature = "burn")]
    #[test]
    fn burn_and_torch_give_the_same_logits() {
        let bert = ModelDir::new("both-bert", &BERT, Some(BERT.config_json()));
        let roberta = ModelDir::new("both-roberta", &ROBERTA, Some(ROBERTA.config_json()));
        for (dir, sizes) in [(&bert, BERT), (&roberta, ROBERTA)] {
            let b = super::on_burn::BurnTask::new(dir.path());
            let t = TorchTask::new(dir.path());
            let batch = sentences(5, 4, 12, sizes.vocab, sizes.labels);
            let (db, lb) = b.logits(&batch);
            let (dt, lt) = t.logits(&batch);
            assert_eq!(db, vec![4, sizes.labels]);
            assert_eq!(db, dt);
            assert_close(&lb, &lt, 1e-4, sizes.prefix());
            assert!(
                lb.iter().any(|v| v.abs() > 1e-2),
                "logits large enough to compare: {lb:?}"
            );
        }
    }
}
