//! Inputs that used to panic inside the burn backend (an empty BERT batch, contrastive batches
//! of different sizes, labels past the classifier's classes) are refused with errors naming
//! what is wrong.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use prune_burn::bert::{contrastive_importance_step, Bert, BertBatch, BertConfig};
use prune_burn::train::{accuracy, train_dense, try_batch, Classifier};
use prune_burn::{BurnModel, BurnPruning};
use prune_core::PruningConfig;
use prune_io::{HostTensor, TensorMap};
use prune_train::{Dataset, TrainConfig};

const HIDDEN: usize = 8;

fn device() -> Device {
    Device::flex().autodiff()
}

/// A one-layer encoder: hidden 8, two heads of 4, 6 FFN units, 10 tokens, 12 positions.
fn encoder() -> Bert {
    let (h, a, f) = (HIDDEN, 8, 6);
    let mut m = TensorMap::new();
    let mut put = |name: &str, shape: Vec<usize>| {
        let n = shape.iter().product();
        let data = (0..n).map(|i| ((i % 7) as f32 - 3.0) * 0.05).collect();
        m.insert(name.to_string(), HostTensor { shape, data });
    };
    put("embeddings.word_embeddings.weight", vec![10, h]);
    put("embeddings.position_embeddings.weight", vec![12, h]);
    put("embeddings.token_type_embeddings.weight", vec![2, h]);
    put("embeddings.LayerNorm.weight", vec![h]);
    put("embeddings.LayerNorm.bias", vec![h]);
    let p = "encoder.layer.0.";
    for w in ["query", "key", "value"] {
        put(&format!("{p}attention.self.{w}.weight"), vec![a, h]);
        put(&format!("{p}attention.self.{w}.bias"), vec![a]);
    }
    put(&format!("{p}attention.output.dense.weight"), vec![h, a]);
    put(&format!("{p}intermediate.dense.weight"), vec![f, h]);
    put(&format!("{p}intermediate.dense.bias"), vec![f]);
    put(&format!("{p}output.dense.weight"), vec![h, f]);
    for n in [
        "attention.output.dense.bias",
        "attention.output.LayerNorm.weight",
        "attention.output.LayerNorm.bias",
        "output.dense.bias",
        "output.LayerNorm.weight",
        "output.LayerNorm.bias",
    ] {
        put(&format!("{p}{n}"), vec![h]);
    }
    Bert::from_tensors(&m, &device()).unwrap()
}

fn config() -> BertConfig {
    BertConfig {
        head_dim: 4,
        layer_norm_eps: 1e-12,
        position_offset: 0,
    }
}

fn batch(rows: usize, seq: usize) -> BertBatch {
    let ids: Vec<i64> = (0..rows * seq).map(|i| (i % 10) as i64).collect();
    BertBatch::new(&ids, &vec![1.0; rows * seq], rows, seq, &device()).unwrap()
}

#[test]
fn an_empty_bert_batch_is_refused() {
    let bert = encoder();
    assert!(bert.forward(&batch(2, 3), None, &config()).is_ok());
    for (rows, seq) in [(0, 3), (2, 0)] {
        let err = bert
            .forward(&batch(rows, seq), None, &config())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("weight `batch`") && err.contains("an empty batch"),
            "{err}"
        );
    }
}

#[test]
fn contrastive_batches_of_different_sizes_are_refused() {
    let yaml = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      pruners:\n        - !Pruner\n            prune_type: gradient_sensitivity\n            names: ['encoder.layer.*.intermediate.dense.weight']\n            parameters: {target: 3, stride: 1, importance_metric: abs_gradient}\n";
    let mut pruning = BurnPruning::from_yaml(yaml).unwrap();
    let mut model = BurnModel::new(encoder());
    let err = contrastive_importance_step(
        &mut pruning,
        &mut model,
        &batch(3, 4),
        &batch(2, 4),
        &config(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("batch a has 3 rows, batch b 2"), "{err}");
    let err = contrastive_importance_step(
        &mut pruning,
        &mut model,
        &batch(0, 4),
        &batch(0, 4),
        &config(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("batch a has 0 rows"), "{err}");
}

/// Two features to two classes.
#[derive(Module, Debug)]
struct TwoClasses {
    fc: Linear,
}

impl Classifier for TwoClasses {
    fn logits(&self, features: Tensor<2>) -> Tensor<2> {
        self.fc.forward(features)
    }
}

fn two_classes() -> TwoClasses {
    TwoClasses {
        fc: LinearConfig::new(2, 2).init(&device()),
    }
}

#[test]
fn a_label_past_the_models_classes_is_refused() {
    let data = Dataset::from_csv("1,2,0\n3,4,2\n5,6,1\n", 1.0).unwrap();
    let yaml = "pruning:\n  train:\n    end_epoch: 1\n    dataloader: {batch_size: 4}\n  approach:\n    weight_compression:\n      pruners:\n        - !Pruner\n            names: ['fc.weight']\n";
    let cfg = TrainConfig::from_config(&PruningConfig::from_yaml(yaml).unwrap(), "cfg").unwrap();
    let err = train_dense(two_classes(), &data, &cfg, 1, &device())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("row 1 has label 2, and the model gives 2 classes"),
        "{err}"
    );
    // Predictions need no label, and count it as missed.
    assert!(accuracy(&two_classes(), &data, &device()).is_ok());
}

#[test]
fn a_batch_of_rows_past_the_end_is_refused() {
    let data = Dataset::from_csv("1,2,0\n3,4,1\n", 1.0).unwrap();
    let err = try_batch(&data, &[1, 2], &device())
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 2 is past the end of the 2 rows"), "{err}");
    let (x, y) = prune_burn::train::batch(&data, &[1, 2], &device());
    assert_eq!((x.dims(), y.dims()), ([1, 2], [1]));
}
