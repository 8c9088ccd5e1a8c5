//! Every problem of a BERT-family model directory that prune-nlp reports and its unit tests do
//! not: config.json keys against the weights, checkpoints that are not one encoder, the
//! config.json update of a shrink, tokenizer and corpus files. Each names the key or file and
//! what is wrong: the rows of docs/errors.md that point here.

use prune_io::{HostTensor, TensorMap};
use prune_nlp::bert::{read_dir, BertConfig, BertSchema};
use prune_nlp::{hf_config, Corpus, WordPiece};
use std::path::{Path, PathBuf};

fn t(shape: Vec<usize>) -> HostTensor {
    let n = shape.iter().product();
    HostTensor {
        shape,
        data: vec![0.0; n],
    }
}

/// A checkpoint under `prefix` of hidden 8, 2 layers of 2 heads of 4 (`rows` query rows in
/// layer 1), FFN 6, vocabulary 10, 12 positions; with BERT's 3-label head when `head`.
fn checkpoint(prefix: &str, rows1: usize, head: bool) -> TensorMap {
    let (h, f) = (8, 6);
    let mut m = TensorMap::new();
    let mut put = |name: String, shape: Vec<usize>| {
        m.insert(name, t(shape));
    };
    put(
        format!("{prefix}embeddings.word_embeddings.weight"),
        vec![10, h],
    );
    put(
        format!("{prefix}embeddings.position_embeddings.weight"),
        vec![12, h],
    );
    put(
        format!("{prefix}embeddings.token_type_embeddings.weight"),
        vec![2, h],
    );
    put(format!("{prefix}embeddings.LayerNorm.weight"), vec![h]);
    put(format!("{prefix}embeddings.LayerNorm.bias"), vec![h]);
    for l in 0..2 {
        let a = if l == 1 { rows1 } else { 8 };
        let p = format!("{prefix}encoder.layer.{l}.");
        for w in ["query", "key", "value"] {
            put(format!("{p}attention.self.{w}.weight"), vec![a, h]);
            put(format!("{p}attention.self.{w}.bias"), vec![a]);
        }
        put(format!("{p}attention.output.dense.weight"), vec![h, a]);
        put(format!("{p}intermediate.dense.weight"), vec![f, h]);
        put(format!("{p}intermediate.dense.bias"), vec![f]);
        put(format!("{p}output.dense.weight"), vec![h, f]);
        for n in [
            "attention.output.dense.bias",
            "attention.output.LayerNorm.weight",
            "attention.output.LayerNorm.bias",
            "output.dense.bias",
            "output.LayerNorm.weight",
            "output.LayerNorm.bias",
        ] {
            put(format!("{p}{n}"), vec![h]);
        }
    }
    if head {
        put(format!("{prefix}pooler.dense.weight"), vec![h, h]);
        put(format!("{prefix}pooler.dense.bias"), vec![h]);
        put("classifier.weight".into(), vec![3, h]);
        put("classifier.bias".into(), vec![3]);
    }
    m
}

const BERT_JSON: &str = r#"{"model_type": "bert", "hidden_size": 8, "num_attention_heads": 2,
    "num_hidden_layers": 2, "intermediate_size": 6, "vocab_size": 10,
    "max_position_embeddings": 12, "type_vocab_size": 2, "layer_norm_eps": 1e-7,
    "pad_token_id": 0, "hidden_act": "gelu", "id2label": {"0": "NO", "1": "YES", "2": "MAYBE"}}"#;

/// `BERT_JSON` with `key` set to `value` (JSON text), added if absent.
fn with(key: &str, value: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(BERT_JSON).unwrap();
    v[key] = serde_json::from_str(value).unwrap();
    v.to_string()
}

/// `BERT_JSON` without `key`.
fn without(key: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(BERT_JSON).unwrap();
    v.as_object_mut().unwrap().remove(key);
    v.to_string()
}

#[test]
fn every_config_json_problem_names_the_key_the_tensor_and_both_sizes() {
    let bert = checkpoint("bert.", 8, true);
    let one_head = checkpoint("bert.", 4, true);
    let roberta = checkpoint("roberta.", 8, false);
    let q1 = "`bert.encoder.layer.1.attention.self.query.weight`";
    let cases: Vec<(String, &TensorMap, String)> = vec![
        ("{\"hidden_size\": 8,".into(), &bert, "not JSON: ".into()),
        ("[8, 2]".into(), &bert, "not a JSON object".into()),
        (
            with("model_type", "\"gpt2\""),
            &bert,
            "model_type: \"gpt2\" is not a BERT-family encoder these models run (bert, roberta, \
             xlm-roberta, camembert)"
                .into(),
        ),
        (
            with("hidden_size", "\"8\""),
            &bert,
            "hidden_size: expected a non-negative integer, found \"8\"".into(),
        ),
        (
            without("num_attention_heads"),
            &bert,
            "num_attention_heads: missing: a Hugging Face model config.json has hidden_size and \
             num_attention_heads"
                .into(),
        ),
        (
            with("num_attention_heads", "0"),
            &bert,
            "num_attention_heads: must be at least 1".into(),
        ),
        (
            with("attention_head_size", "0"),
            &bert,
            "attention_head_size: must be at least 1".into(),
        ),
        (
            with("intermediate_size", "4"),
            &bert,
            "intermediate_size: 4, but `bert.encoder.layer.0.intermediate.dense.weight` has 6 rows"
                .into(),
        ),
        (
            with("max_position_embeddings", "512"),
            &bert,
            "max_position_embeddings: 512, but `bert.embeddings.position_embeddings.weight` is \
             [12, 8]: 12 rows"
                .into(),
        ),
        (
            with("type_vocab_size", "1"),
            &bert,
            "type_vocab_size: 1, but `bert.embeddings.token_type_embeddings.weight` is [2, 8]: 2 \
             rows"
                .into(),
        ),
        (
            with("layer_norm_eps", "0"),
            &bert,
            "layer_norm_eps: expected a positive number, found 0".into(),
        ),
        (
            with("position_embedding_type", "\"relative_key\""),
            &bert,
            "position_embedding_type: \"relative_key\" is not supported: the encoders add \
             absolute position embeddings"
                .into(),
        ),
        (
            with("num_labels", "2"),
            &bert,
            "num_labels: 2 labels, but `classifier.weight` has 3 rows".into(),
        ),
        (
            with("pruned_heads", "[1]"),
            &bert,
            "pruned_heads: expected a map of layer -> pruned heads, found [1]".into(),
        ),
        (
            with("pruned_heads", "{\"5\": [0]}"),
            &bert,
            "pruned_heads.5: not a layer of the checkpoint (0 to 1)".into(),
        ),
        (
            with("pruned_heads", "{\"1\": \"all\"}"),
            &one_head,
            "pruned_heads.1: expected a list of head numbers, found \"all\"".into(),
        ),
        (
            with("pruned_heads", "{\"0\": []}"),
            &one_head,
            format!(
                "pruned_heads: layer 1 is not listed, so it keeps all 2 heads of 4, but {q1} has \
                 4 rows"
            ),
        ),
        (
            with("model_type", "\"roberta\"")
                .replace("\"pad_token_id\":0", "\"pad_token_id\":11")
                .replace("\"id2label\"", "\"x_id2label\""),
            &roberta,
            "pad_token_id: RoBERTa positions start at pad_token_id + 1 = 12, past the 12 rows of \
             `roberta.embeddings.position_embeddings.weight`"
                .into(),
        ),
    ];
    let mut failures = Vec::new();
    for (json, tensors, want) in &cases {
        let schema = BertSchema::read(tensors).unwrap();
        match BertConfig::from_json(json, "dir/config.json", &schema, tensors) {
            Ok(c) => failures.push(format!("accepted {json}: {c:?}")),
            Err(e) => {
                let text = e.to_string();
                let listed = text
                    .lines()
                    .skip(1)
                    .any(|l| l.starts_with(&format!("  - {want}")));
                if !text.starts_with("dir/config.json: ") || !listed {
                    failures.push(format!("wanted `{want}`\n  in {text}\n  from {json}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn sizes_that_do_not_fit_the_checkpoint_name_the_tensor() {
    let m = checkpoint("bert.", 8, true);
    let schema = BertSchema::read(&m).unwrap();
    let past = BertConfig {
        head_dim: 4,
        layer_norm_eps: 1e-12,
        position_offset: 12,
    };
    assert_eq!(
        past.check(&schema, &m).unwrap_err().to_string(),
        "weight `bert.embeddings.position_embeddings.weight`: positions start at row 12, past the \
         table (shape [12, 8])"
    );
    let none = BertConfig {
        head_dim: 0,
        ..past
    };
    assert_eq!(
        none.check(&schema, &m).unwrap_err().to_string(),
        "weight `bert.encoder.layer.0.attention.self.query.weight`: head_dim 0 gives no heads \
         (shape [8, 8])"
    );
}

#[test]
fn a_checkpoint_without_one_encoder_names_what_it_looked_for() {
    let mut none = checkpoint("bert.", 8, false);
    none.remove("bert.embeddings.word_embeddings.weight");
    let err = BertSchema::read(&none).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "weight `embeddings.word_embeddings.weight (bare, or under `bert.` or `roberta.`)` \
             is not in the model; close matches: "
        ),
        "{err}"
    );
    let mut layerless = checkpoint("bert.", 8, false);
    layerless.retain(|name, _| !name.contains("encoder.layer."));
    let err = BertSchema::read(&layerless).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "weight `bert.encoder.layer.0.attention.self.query.weight` is not in the model"
        ),
        "{err}"
    );
    let mut two = checkpoint("bert.", 8, false);
    two.extend(checkpoint("roberta.", 8, false));
    let err = BertSchema::read(&two).unwrap_err().to_string();
    assert_eq!(
        err,
        "weight `roberta.embeddings.word_embeddings.weight`: the checkpoint also has \
         `bert.embeddings.word_embeddings.weight`: two encoders in one file (shape [10, 8])"
    );
}

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prune-nlp-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_model_directory_without_safetensors_weights_says_what_to_save() {
    let dir = scratch("dir");
    std::fs::write(dir.join("pytorch_model.bin"), b"not read").unwrap();
    let err = read_dir(&dir).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: no model.safetensors, only pytorch_model.bin: save the model with \
             `save_pretrained(..., safe_serialization=True)`",
            dir.join("model.safetensors").display()
        )
    );
    let m = checkpoint("bert.", 8, true);
    let schema = BertSchema::read(&m).unwrap();
    let missing = dir.join("config.json");
    let err = BertConfig::from_file(&missing, &schema, &m)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("{}: ", missing.display())) && err.contains("No such file"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_config_json_the_shrink_cannot_update_names_the_key() {
    let query = prune_core::model::ShrinkOp {
        weight: "bert.encoder.layer.0.attention.self.query.weight".into(),
        axis: 0,
        keep: vec![0, 1, 2, 3],
    };
    let path = Path::new("in/config.json");
    let cases = [
        (
            serde_json::json!([1]),
            "in/config.json: expected a JSON object",
        ),
        (
            serde_json::json!({"num_attention_heads": 2}),
            "in/config.json: `hidden_size` is missing or not a whole number",
        ),
        (
            serde_json::json!({"hidden_size": 8, "num_attention_heads": 3}),
            "in/config.json: `hidden_size` 8 is not a multiple of `num_attention_heads` 3",
        ),
        (
            serde_json::json!({"hidden_size": 8, "num_attention_heads": 2, "attention_head_size": 0}),
            "in/config.json: `attention_head_size` is 0",
        ),
    ];
    for (config, want) in cases {
        let err = hf_config::updated(path, &config, std::slice::from_ref(&query))
            .unwrap_err()
            .to_string();
        assert_eq!(err, want);
    }
}

#[test]
fn tokenizer_and_corpus_files_that_cannot_be_used_are_named_with_the_reason() {
    let dir = scratch("files");
    let tok = dir.join("tokenizer.json");
    let missing = WordPiece::from_file(&tok).unwrap_err().to_string();
    assert!(
        missing.starts_with(&format!("{}: ", tok.display())) && missing.contains("No such file"),
        "{missing}"
    );
    let vocab = r#"{"[UNK]": 0, "[CLS]": 1, "[SEP]": 2}"#;
    for (text, want) in [
        ("{".to_string(), "not JSON: ".to_string()),
        (
            r#"{"model": {"type": "BPE"}}"#.to_string(),
            "model.type is \"BPE\", expected \"WordPiece\"".to_string(),
        ),
        (
            r#"{"model": {"type": "WordPiece", "vocab": [1]}}"#.to_string(),
            "model.vocab is not a map of token -> id".to_string(),
        ),
        (
            format!(r#"{{"model": {{"type": "WordPiece", "vocab": {vocab}}}}}"#),
            "vocabulary has no [PAD]".to_string(),
        ),
    ] {
        std::fs::write(&tok, &text).unwrap();
        let err = WordPiece::from_file(&tok).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("tokenizer backend: {}: {want}", tok.display())),
            "{err}\nwanted: {want}"
        );
    }
    let corpus = dir.join("corpus.tsv");
    std::fs::write(&corpus, "doc\tA sentence.\nno tab here\n").unwrap();
    assert_eq!(
        Corpus::from_file(&corpus).unwrap_err().to_string(),
        format!(
            "corpus backend: {}:2: expected document<TAB>sentence",
            corpus.display()
        )
    );
    std::fs::remove_dir_all(&dir).ok();
}
