//! BERT-family encoders in Hugging Face names: the one checkpoint schema every backend's encoder
//! is built from (bare, or under a task prefix `bert.` / `roberta.` with its pooler and
//! sequence-classification head), the sizes a checkpoint does not carry in its weights, and
//! the reading of a checkpoint directory (`model.safetensors` and an optional `config.json`).

use prune_core::error::{ConfigProblem, ConfigProblems};
use prune_core::suggest::closest;
use prune_core::{PruneError, Result};
use prune_io::{HostTensor, TensorMap};
use std::path::Path;

/// Width of an attention head when no `config.json` says otherwise: 64, the convention of the
/// BERT family (BERT base and large, RoBERTa, DistilBERT, ...).
pub const DEFAULT_HEAD_DIM: usize = 64;

/// Sizes a BERT checkpoint does not carry in its weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BertConfig {
    /// Width of one attention head (hidden size / heads of the original model).
    pub head_dim: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Row of the position table that the first token reads: 0 for BERT, `pad_token_id + 1`
    /// for RoBERTa.
    pub position_offset: usize,
}

impl BertConfig {
    /// sentence-transformers all-MiniLM-L6-v2: heads of 32, eps 1e-12.
    pub fn minilm() -> Self {
        BertConfig {
            head_dim: 32,
            layer_norm_eps: 1e-12,
            position_offset: 0,
        }
    }

    /// The sizes of a checkpoint without `config.json`: heads of [`DEFAULT_HEAD_DIM`], and the
    /// family's defaults for the rest (BERT: eps 1e-12, positions from 0; RoBERTa, the
    /// `roberta.` prefix: eps 1e-5, positions from 2, after the padding id 1).
    pub fn from_weights(schema: &BertSchema) -> Self {
        match schema.family() {
            Family::Bert => BertConfig {
                head_dim: DEFAULT_HEAD_DIM,
                layer_norm_eps: 1e-12,
                position_offset: 0,
            },
            Family::Roberta => BertConfig {
                head_dim: DEFAULT_HEAD_DIM,
                layer_norm_eps: 1e-5,
                position_offset: ROBERTA_PAD + 1,
            },
        }
    }

    /// The sizes of a Hugging Face `config.json` (its text; `source` names it in errors),
    /// checked against the checkpoint it describes. Read: `model_type`, `hidden_size`,
    /// `num_attention_heads` (head_dim = hidden_size / num_attention_heads, or
    /// `attention_head_size` when present: a model whose hidden size was pruned), `layer_norm_eps`,
    /// `pad_token_id` (RoBERTa positions start at `pad_token_id + 1`); checked against the
    /// weights when present: `num_hidden_layers`, `vocab_size`, `max_position_embeddings`,
    /// `type_vocab_size`, `intermediate_size` (a layer may have fewer units, a pruned one),
    /// `id2label`, `hidden_act` (`gelu`) and `position_embedding_type` (`absolute`). Every
    /// disagreement is reported at once, each naming the key, the tensor and both sizes.
    pub fn from_json(
        text: &str,
        source: &str,
        schema: &BertSchema,
        tensors: &TensorMap,
    ) -> Result<Self> {
        let fail = |problems: Vec<ConfigProblem>| PruneError::Config {
            source_name: source.to_string(),
            problems: ConfigProblems(problems),
        };
        let json: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| fail(vec![problem("", format!("not JSON: {e}"))]))?;
        let obj = json
            .as_object()
            .ok_or_else(|| fail(vec![problem("", "not a JSON object")]))?;
        let mut problems = Vec::new();
        let uint = |key: &str, problems: &mut Vec<ConfigProblem>| -> Option<usize> {
            let v = obj.get(key)?;
            match v.as_u64() {
                Some(n) => Some(n as usize),
                None => {
                    problems.push(problem(
                        key,
                        format!("expected a non-negative integer, found {v}"),
                    ));
                    None
                }
            }
        };
        let sizes = schema.sizes(tensors);
        let word = schema.name("embeddings.word_embeddings.weight");

        let family = match obj.get("model_type") {
            None => schema.family(),
            Some(v) => match v.as_str().and_then(Family::of_model_type) {
                Some(f) => {
                    if !schema.prefix.is_empty() && f.prefix() != schema.prefix {
                        problems.push(problem(
                            "model_type",
                            format!(
                                "{v} keeps its encoder under `{}`, but the checkpoint's tensors are \
                                 under `{}` (`{word}`)",
                                f.prefix(),
                                schema.prefix
                            ),
                        ));
                    }
                    f
                }
                None => {
                    problems.push(problem(
                        "model_type",
                        format!(
                            "{v} is not a BERT-family encoder these models run (bert, roberta, \
                             xlm-roberta, camembert)"
                        ),
                    ));
                    schema.family()
                }
            },
        };
        let mut config = BertConfig::from_weights(&BertSchema {
            prefix: family.prefix(),
            ..schema.clone()
        });

        let missing = |key: &str| {
            problem(
                key,
                "missing: a Hugging Face model config.json has hidden_size and \
                 num_attention_heads (a sentence-transformers pooling config.json is not one)",
            )
        };
        let hidden = uint("hidden_size", &mut problems);
        match hidden {
            None if !obj.contains_key("hidden_size") => problems.push(missing("hidden_size")),
            Some(h) if h != schema.hidden => problems.push(problem(
                "hidden_size",
                format!(
                    "{h}, but `{word}` is {:?}: {} wide",
                    sizes.word, schema.hidden
                ),
            )),
            _ => {}
        }
        let heads = uint("num_attention_heads", &mut problems);
        // A model whose hidden size was pruned keeps its heads' width apart from hidden_size.
        let head_size = match uint("attention_head_size", &mut problems) {
            Some(0) => {
                problems.push(problem("attention_head_size", "must be at least 1"));
                None
            }
            other => other,
        };
        match (heads, hidden) {
            (None, _) if !obj.contains_key("num_attention_heads") => {
                problems.push(missing("num_attention_heads"))
            }
            (Some(0), _) => problems.push(problem("num_attention_heads", "must be at least 1")),
            (Some(n), Some(h)) if head_size.is_none() && !h.is_multiple_of(n) => {
                problems.push(problem(
                    "num_attention_heads",
                    format!("{n} heads do not divide hidden_size {h}"),
                ))
            }
            (Some(n), Some(h)) => {
                config.head_dim = head_size.unwrap_or(h / n);
                let width = match head_size {
                    Some(d) => format!("attention_head_size {d}"),
                    None => format!("hidden_size {h} / {n}"),
                };
                for (l, &rows) in sizes.attention.iter().enumerate() {
                    let q = schema.layer_name(l, "attention.self.query.weight");
                    if !rows.is_multiple_of(config.head_dim) || rows / config.head_dim > n {
                        problems.push(problem(
                            "num_attention_heads",
                            format!(
                                "{n} heads of {} ({width}), but `{q}` has {rows} rows",
                                config.head_dim
                            ),
                        ));
                    }
                }
                if let Some(v) = obj.get("pruned_heads") {
                    check_pruned_heads(v, n, config.head_dim, schema, &sizes, &mut problems);
                }
            }
            _ => {}
        }
        if let Some(n) = uint("num_hidden_layers", &mut problems) {
            if n != schema.layers {
                let last = schema.layers.saturating_sub(1);
                problems.push(problem(
                    "num_hidden_layers",
                    format!(
                        "{n}, but the checkpoint has {} layers: `{}` to `{}`, and no `{}`",
                        schema.layers,
                        schema.layer_name(0, "attention.self.query.weight"),
                        schema.layer_name(last, "attention.self.query.weight"),
                        schema.layer_name(schema.layers, "attention.self.query.weight"),
                    ),
                ));
            }
        }
        if let Some(n) = uint("intermediate_size", &mut problems) {
            for (l, &units) in sizes.ffn.iter().enumerate() {
                if units > n {
                    problems.push(problem(
                        "intermediate_size",
                        format!(
                            "{n}, but `{}` has {units} rows",
                            schema.layer_name(l, "intermediate.dense.weight")
                        ),
                    ));
                }
            }
        }
        for (key, tensor, shape) in [
            (
                "vocab_size",
                "embeddings.word_embeddings.weight",
                &sizes.word,
            ),
            (
                "max_position_embeddings",
                "embeddings.position_embeddings.weight",
                &sizes.positions,
            ),
            (
                "type_vocab_size",
                "embeddings.token_type_embeddings.weight",
                &sizes.types,
            ),
        ] {
            if let Some(n) = uint(key, &mut problems) {
                if n != shape[0] {
                    problems.push(problem(
                        key,
                        format!(
                            "{n}, but `{}` is {shape:?}: {} rows",
                            schema.name(tensor),
                            shape[0]
                        ),
                    ));
                }
            }
        }
        if let Some(v) = obj.get("layer_norm_eps") {
            match v.as_f64() {
                Some(eps) if eps > 0.0 && eps.is_finite() => config.layer_norm_eps = eps,
                _ => problems.push(problem(
                    "layer_norm_eps",
                    format!("expected a positive number, found {v}"),
                )),
            }
        }
        if let Some(pad) = uint("pad_token_id", &mut problems) {
            if family == Family::Roberta {
                config.position_offset = pad + 1;
            }
        }
        if family == Family::Roberta && config.position_offset >= sizes.positions[0] {
            problems.push(problem(
                "pad_token_id",
                format!(
                    "RoBERTa positions start at pad_token_id + 1 = {}, past the {} rows of `{}`",
                    config.position_offset,
                    sizes.positions[0],
                    schema.name("embeddings.position_embeddings.weight")
                ),
            ));
        }
        for (key, wanted, why) in [
            (
                "hidden_act",
                "gelu",
                "the encoders compute the exact (erf) gelu",
            ),
            (
                "position_embedding_type",
                "absolute",
                "the encoders add absolute position embeddings",
            ),
        ] {
            if let Some(v) = obj.get(key) {
                if v.as_str() != Some(wanted) {
                    problems.push(problem(key, format!("{v} is not supported: {why}")));
                }
            }
        }
        if let Some(labels) = schema.head.labels() {
            let tensor = schema.head.output_weight();
            let counted = [
                ("num_labels", uint("num_labels", &mut problems)),
                (
                    "id2label",
                    obj.get("id2label")
                        .and_then(|v| v.as_object())
                        .map(|m| m.len()),
                ),
            ];
            for (key, n) in counted {
                if let Some(n) = n.filter(|&n| n != labels) {
                    problems.push(problem(
                        key,
                        format!("{n} labels, but `{tensor}` has {labels} rows"),
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(fail(problems))
        }
    }

    /// Reads `config.json` at `path` ([`from_json`](Self::from_json)).
    pub fn from_file(
        path: impl AsRef<Path>,
        schema: &BertSchema,
        tensors: &TensorMap,
    ) -> Result<Self> {
        let path = path.as_ref();
        let text = crate::read_text(path)?;
        Self::from_json(&text, &path.display().to_string(), schema, tensors)
    }

    /// Checks that these sizes fit the checkpoint: every layer's query rows are whole heads of
    /// `head_dim`, and the position table holds at least one row from `position_offset`.
    pub fn check(&self, schema: &BertSchema, tensors: &TensorMap) -> Result<()> {
        let sizes = schema.sizes(tensors);
        if self.head_dim == 0 {
            return Err(PruneError::Shape {
                weight: schema.layer_name(0, "attention.self.query.weight"),
                shape: vec![sizes.attention.first().copied().unwrap_or(0), schema.hidden],
                reason: "head_dim 0 gives no heads".into(),
            });
        }
        for (l, &rows) in sizes.attention.iter().enumerate() {
            if !rows.is_multiple_of(self.head_dim) {
                return Err(PruneError::Shape {
                    weight: schema.layer_name(l, "attention.self.query.weight"),
                    shape: vec![rows, schema.hidden],
                    reason: format!(
                        "{rows} rows are not whole heads of head_dim {} (without config.json \
                         heads are taken as {DEFAULT_HEAD_DIM} wide, the BERT-family default)",
                        self.head_dim
                    ),
                });
            }
        }
        if self.position_offset >= sizes.positions[0] {
            return Err(PruneError::Shape {
                weight: schema.name("embeddings.position_embeddings.weight"),
                shape: sizes.positions.clone(),
                reason: format!(
                    "positions start at row {}, past the table",
                    self.position_offset
                ),
            });
        }
        Ok(())
    }
}

/// Hugging Face's `pruned_heads` (`{"layer": [head, ...]}`): each listed layer keeps
/// `heads` less its pruned heads and every other layer all `heads`, as the query weights must
/// show.
fn check_pruned_heads(
    value: &serde_json::Value,
    heads: usize,
    head_dim: usize,
    schema: &BertSchema,
    sizes: &Sizes,
    problems: &mut Vec<ConfigProblem>,
) {
    let Some(map) = value.as_object() else {
        problems.push(problem(
            "pruned_heads",
            format!("expected a map of layer -> pruned heads, found {value}"),
        ));
        return;
    };
    for (key, list) in map {
        let path = format!("pruned_heads.{key}");
        let layer = key.parse::<usize>().ok().filter(|&l| l < schema.layers);
        let pruned: Option<std::collections::BTreeSet<u64>> = list
            .as_array()
            .and_then(|a| a.iter().map(|h| h.as_u64()).collect());
        match (layer, pruned) {
            (None, _) => problems.push(problem(
                &path,
                format!(
                    "not a layer of the checkpoint (0 to {})",
                    schema.layers.saturating_sub(1)
                ),
            )),
            (_, None) => problems.push(problem(
                &path,
                format!("expected a list of head numbers, found {list}"),
            )),
            (Some(l), Some(pruned)) => {
                let rows = sizes.attention[l];
                let left = heads.saturating_sub(pruned.len());
                if rows != left * head_dim {
                    problems.push(problem(
                        &path,
                        format!(
                            "{heads} heads less {} pruned leave {left} of {head_dim}, but `{}` \
                             has {rows} rows",
                            pruned.len(),
                            schema.layer_name(l, "attention.self.query.weight")
                        ),
                    ));
                }
            }
        }
    }
    for (l, &rows) in sizes.attention.iter().enumerate() {
        if !map.contains_key(&l.to_string()) && rows != heads * head_dim {
            problems.push(problem(
                "pruned_heads",
                format!(
                    "layer {l} is not listed, so it keeps all {heads} heads of {head_dim}, but \
                     `{}` has {rows} rows",
                    schema.layer_name(l, "attention.self.query.weight")
                ),
            ));
        }
    }
}

fn problem(path: &str, reason: impl Into<String>) -> ConfigProblem {
    ConfigProblem {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// RoBERTa's padding token id, the default of its `pad_token_id`.
const ROBERTA_PAD: usize = 1;

/// A model family sharing the BERT encoder layout; it decides the task prefix and how positions
/// are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// BERT (`model_type` `bert`): positions from 0, tensors under `bert.`.
    Bert,
    /// RoBERTa (`roberta`, `xlm-roberta`, `camembert`): positions after the padding id,
    /// tensors under `roberta.`.
    Roberta,
}

impl Family {
    /// The family of a `config.json` `model_type`, if it is one of these.
    pub fn of_model_type(model_type: &str) -> Option<Family> {
        match model_type {
            "bert" => Some(Family::Bert),
            "roberta" | "xlm-roberta" | "camembert" => Some(Family::Roberta),
            _ => None,
        }
    }

    /// The task prefix of its Hugging Face task models (`bert.`, `roberta.`).
    pub fn prefix(self) -> &'static str {
        match self {
            Family::Bert => "bert.",
            Family::Roberta => "roberta.",
        }
    }
}

/// Prefixes an encoder's tensors may have: none (a bare `BertModel`), or a task model's.
pub const PREFIXES: [&str; 3] = ["", "bert.", "roberta."];

/// A sequence-classification head (its tensors are named without the task prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// No head.
    None,
    /// BertForSequenceClassification: `classifier.weight` `[labels, hidden]` and its bias,
    /// applied to tanh(pooler(first token)).
    Bert {
        /// Number of labels.
        labels: usize,
    },
    /// RobertaForSequenceClassification: `classifier.dense` `[hidden, hidden]`, tanh, then
    /// `classifier.out_proj` `[labels, hidden]`, on the first token (no pooler).
    Roberta {
        /// Number of labels.
        labels: usize,
    },
}

impl Head {
    /// Number of labels, if there is a head.
    pub fn labels(self) -> Option<usize> {
        match self {
            Head::None => None,
            Head::Bert { labels } | Head::Roberta { labels } => Some(labels),
        }
    }

    /// The head's tensors with their ranks.
    pub fn tensors(self) -> &'static [(&'static str, usize)] {
        match self {
            Head::None => &[],
            Head::Bert { .. } => &BERT_HEAD_TENSORS,
            Head::Roberta { .. } => &ROBERTA_HEAD_TENSORS,
        }
    }

    /// The weight whose rows are the labels.
    fn output_weight(self) -> &'static str {
        match self {
            Head::Roberta { .. } => "classifier.out_proj.weight",
            _ => "classifier.weight",
        }
    }
}

/// Tensors of every encoder layer: the name after `encoder.layer.N.`, and the rank.
pub const LAYER_TENSORS: [(&str, usize); 16] = [
    ("attention.self.query.weight", 2),
    ("attention.self.query.bias", 1),
    ("attention.self.key.weight", 2),
    ("attention.self.key.bias", 1),
    ("attention.self.value.weight", 2),
    ("attention.self.value.bias", 1),
    ("attention.output.dense.weight", 2),
    ("attention.output.dense.bias", 1),
    ("attention.output.LayerNorm.weight", 1),
    ("attention.output.LayerNorm.bias", 1),
    ("intermediate.dense.weight", 2),
    ("intermediate.dense.bias", 1),
    ("output.dense.weight", 2),
    ("output.dense.bias", 1),
    ("output.LayerNorm.weight", 1),
    ("output.LayerNorm.bias", 1),
];

/// Tensors of the embeddings, with their ranks.
pub const EMBEDDING_TENSORS: [(&str, usize); 5] = [
    ("embeddings.word_embeddings.weight", 2),
    ("embeddings.position_embeddings.weight", 2),
    ("embeddings.token_type_embeddings.weight", 2),
    ("embeddings.LayerNorm.weight", 1),
    ("embeddings.LayerNorm.bias", 1),
];

/// Tensors of the pooler (under the prefix), with their ranks.
pub const POOLER_TENSORS: [(&str, usize); 2] =
    [("pooler.dense.weight", 2), ("pooler.dense.bias", 1)];

/// Tensors of BERT's classification head, with their ranks.
pub const BERT_HEAD_TENSORS: [(&str, usize); 2] =
    [("classifier.weight", 2), ("classifier.bias", 1)];

/// Tensors of RoBERTa's classification head, with their ranks.
pub const ROBERTA_HEAD_TENSORS: [(&str, usize); 4] = [
    ("classifier.dense.weight", 2),
    ("classifier.dense.bias", 1),
    ("classifier.out_proj.weight", 2),
    ("classifier.out_proj.bias", 1),
];

/// What a checkpoint holds of a BERT-family model, read from its tensor names and checked
/// against their shapes ([`read`](Self::read)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BertSchema {
    /// What every encoder tensor name starts with: one of [`PREFIXES`].
    pub prefix: &'static str,
    /// Encoder layers.
    pub layers: usize,
    /// Hidden size (the width of the word embeddings).
    pub hidden: usize,
    /// Whether `<prefix>pooler.dense.*` is present.
    pub pooler: bool,
    /// The classification head.
    pub head: Head,
}

/// Shapes the schema's checks and `config.json` compare.
struct Sizes {
    word: Vec<usize>,
    positions: Vec<usize>,
    types: Vec<usize>,
    /// Query rows per layer.
    attention: Vec<usize>,
    /// Intermediate rows per layer.
    ffn: Vec<usize>,
}

impl BertSchema {
    /// Reads the schema of a checkpoint: the prefix (from where the word embeddings are), the
    /// layers (`encoder.layer.0`, `1`, ... up to the first missing query weight), the pooler
    /// and the head when present (`classifier.dense.weight`: RoBERTa's; `classifier.weight`:
    /// BERT's, which needs the pooler). Every tensor of the schema must be present with its
    /// rank and a shape that fits the others (hidden size, heads and FFN units of each layer,
    /// labels); the first one that is not is named with its shape and what was expected.
    pub fn read(tensors: &TensorMap) -> Result<BertSchema> {
        let found: Vec<&'static str> = PREFIXES
            .iter()
            .copied()
            .filter(|p| tensors.contains_key(&format!("{p}embeddings.word_embeddings.weight")))
            .collect();
        let prefix = match found[..] {
            [p] => p,
            [] => {
                let names: Vec<String> = tensors.keys().cloned().collect();
                return Err(PruneError::UnknownWeight {
                    weight: "embeddings.word_embeddings.weight (bare, or under `bert.` or \
                             `roberta.`)"
                        .into(),
                    candidates: closest("embeddings.word_embeddings.weight", &names, 3),
                });
            }
            [a, b, ..] => {
                let name = format!("{b}embeddings.word_embeddings.weight");
                return Err(PruneError::Shape {
                    shape: tensors[&name].shape.clone(),
                    weight: name,
                    reason: format!(
                        "the checkpoint also has `{a}embeddings.word_embeddings.weight`: two \
                         encoders in one file"
                    ),
                });
            }
        };
        let layers = layer_count_under(tensors, prefix);
        if layers == 0 {
            let names: Vec<String> = tensors.keys().cloned().collect();
            let wanted = format!("{prefix}encoder.layer.0.attention.self.query.weight");
            return Err(PruneError::UnknownWeight {
                candidates: closest(&wanted, &names, 3),
                weight: wanted,
            });
        }
        let pooler = tensors.contains_key(&format!("{prefix}pooler.dense.weight"));
        let labels = |name: &str| {
            tensors
                .get(name)
                .and_then(|t| t.shape.first().copied())
                .unwrap_or(0)
        };
        let head = if tensors.contains_key("classifier.dense.weight") {
            Head::Roberta {
                labels: labels("classifier.out_proj.weight"),
            }
        } else if tensors.contains_key("classifier.weight") {
            Head::Bert {
                labels: labels("classifier.weight"),
            }
        } else {
            Head::None
        };
        let mut schema = BertSchema {
            prefix,
            layers,
            hidden: 0,
            pooler: pooler || matches!(head, Head::Bert { .. }),
            head,
        };
        for (name, rank) in schema.tensors() {
            let t = tensors
                .get(&name)
                .ok_or_else(|| PruneError::UnknownWeight {
                    weight: name.clone(),
                    candidates: Vec::new(),
                })?;
            if t.shape.len() != rank {
                return Err(PruneError::Shape {
                    weight: name,
                    shape: t.shape.clone(),
                    reason: format!("expected a rank-{rank} tensor"),
                });
            }
        }
        schema.hidden = tensors[&schema.name("embeddings.word_embeddings.weight")].shape[1];
        schema.check_shapes(tensors)?;
        Ok(schema)
    }

    /// `suffix` under the prefix: `embeddings.LayerNorm.weight` -> `bert.embeddings.LayerNorm.weight`.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// The tensor `suffix` of layer `layer`: `<prefix>encoder.layer.<layer>.<suffix>`.
    pub fn layer_name(&self, layer: usize, suffix: &str) -> String {
        format!("{}encoder.layer.{layer}.{suffix}", self.prefix)
    }

    /// The family the prefix implies (`roberta.`: RoBERTa; otherwise BERT).
    pub fn family(&self) -> Family {
        if self.prefix == Family::Roberta.prefix() {
            Family::Roberta
        } else {
            Family::Bert
        }
    }

    /// Every tensor of the model, named as in the checkpoint, with its rank: embeddings,
    /// layers, pooler, head.
    pub fn tensors(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = EMBEDDING_TENSORS
            .iter()
            .map(|(n, r)| (self.name(n), *r))
            .collect();
        for l in 0..self.layers {
            out.extend(
                LAYER_TENSORS
                    .iter()
                    .map(|(n, r)| (self.layer_name(l, n), *r)),
            );
        }
        if self.pooler {
            out.extend(POOLER_TENSORS.iter().map(|(n, r)| (self.name(n), *r)));
        }
        out.extend(self.head.tensors().iter().map(|(n, r)| (n.to_string(), *r)));
        out
    }

    /// Shapes of a checkpoint this schema was read from.
    fn sizes(&self, tensors: &TensorMap) -> Sizes {
        let shape = |name: String| {
            tensors
                .get(&name)
                .map(|t| t.shape.clone())
                .unwrap_or_default()
        };
        let rows = |l: usize, suffix: &str| {
            shape(self.layer_name(l, suffix))
                .first()
                .copied()
                .unwrap_or(0)
        };
        Sizes {
            word: shape(self.name("embeddings.word_embeddings.weight")),
            positions: shape(self.name("embeddings.position_embeddings.weight")),
            types: shape(self.name("embeddings.token_type_embeddings.weight")),
            attention: (0..self.layers)
                .map(|l| rows(l, "attention.self.query.weight"))
                .collect(),
            ffn: (0..self.layers)
                .map(|l| rows(l, "intermediate.dense.weight"))
                .collect(),
        }
    }

    /// Every tensor's shape against the hidden size and its layer's heads and units.
    fn check_shapes(&self, tensors: &TensorMap) -> Result<()> {
        let h = self.hidden;
        let word = self.name("embeddings.word_embeddings.weight");
        let check = |name: String, want: Vec<usize>, why: String| -> Result<()> {
            let got = &tensors[&name].shape;
            if *got == want {
                Ok(())
            } else {
                Err(PruneError::Shape {
                    weight: name,
                    shape: got.clone(),
                    reason: format!("expected {want:?}: {why}"),
                })
            }
        };
        let hidden = || format!("the hidden size is {h}, the width of `{word}`");
        let rows = |name: &str| tensors[name].shape[0];
        for (suffix, _) in &EMBEDDING_TENSORS[1..] {
            let name = self.name(suffix);
            let want = if name.ends_with("LayerNorm.weight") || name.ends_with("LayerNorm.bias") {
                vec![h]
            } else {
                vec![rows(&name), h]
            };
            check(name, want, hidden())?;
        }
        for l in 0..self.layers {
            let q = self.layer_name(l, "attention.self.query.weight");
            let ffn = self.layer_name(l, "intermediate.dense.weight");
            let (a, f) = (rows(&q), rows(&ffn));
            let heads = || format!("{}; `{q}` has {a} rows", hidden());
            let units = || format!("{}; `{ffn}` has {f} rows", hidden());
            let n = |suffix: &str| self.layer_name(l, suffix);
            for w in ["key", "value"] {
                check(
                    n(&format!("attention.self.{w}.weight")),
                    vec![a, h],
                    heads(),
                )?;
            }
            for w in ["query", "key", "value"] {
                check(n(&format!("attention.self.{w}.bias")), vec![a], heads())?;
            }
            check(n("attention.output.dense.weight"), vec![h, a], heads())?;
            check(n("intermediate.dense.bias"), vec![f], units())?;
            check(n("output.dense.weight"), vec![h, f], units())?;
            for suffix in [
                "attention.output.dense.bias",
                "attention.output.LayerNorm.weight",
                "attention.output.LayerNorm.bias",
                "output.dense.bias",
                "output.LayerNorm.weight",
                "output.LayerNorm.bias",
            ] {
                check(n(suffix), vec![h], hidden())?;
            }
        }
        if self.pooler {
            check(self.name("pooler.dense.weight"), vec![h, h], hidden())?;
            check(self.name("pooler.dense.bias"), vec![h], hidden())?;
        }
        let labels = self.head.labels().unwrap_or(0);
        let why = || format!("{}; {labels} labels", hidden());
        match self.head {
            Head::None => {}
            Head::Bert { .. } => {
                check("classifier.weight".into(), vec![labels, h], why())?;
                check("classifier.bias".into(), vec![labels], why())?;
            }
            Head::Roberta { .. } => {
                check("classifier.dense.weight".into(), vec![h, h], hidden())?;
                check("classifier.dense.bias".into(), vec![h], hidden())?;
                check("classifier.out_proj.weight".into(), vec![labels, h], why())?;
                check("classifier.out_proj.bias".into(), vec![labels], why())?;
            }
        }
        Ok(())
    }
}

fn layer_count_under(tensors: &TensorMap, prefix: &str) -> usize {
    (0..)
        .take_while(|l| {
            tensors.contains_key(&format!(
                "{prefix}encoder.layer.{l}.attention.self.query.weight"
            ))
        })
        .count()
}

/// Encoder layers in bare Hugging Face tensors: `encoder.layer.0`, `encoder.layer.1`, ... up
/// to the first missing query weight.
pub fn layer_count(tensors: &TensorMap) -> usize {
    layer_count_under(tensors, "")
}

/// Checks a checkpoint against the schema ([`BertSchema::read`]) and returns its number of
/// layers; fails naming the first missing tensor, wrong rank or misfitting shape.
pub fn check_checkpoint(tensors: &TensorMap) -> Result<usize> {
    BertSchema::read(tensors).map(|s| s.layers)
}

/// A checkpoint directory read by [`read_dir`].
#[derive(Debug, Clone)]
pub struct BertCheckpoint {
    /// Every float tensor of `model.safetensors`, by its name in the file.
    pub tensors: TensorMap,
    /// What the tensors hold.
    pub schema: BertSchema,
    /// Sizes from `config.json`, or from the weights without one ([`BertConfig::from_weights`]).
    pub config: BertConfig,
}

/// Reads a Hugging Face model directory: `model.safetensors` (through
/// [`prune_io::read_f32`]; non-float tensors such as `position_ids` are skipped), its schema,
/// and `config.json` when it is there ([`BertConfig::from_json`]), else sizes from the weights
/// with heads of [`DEFAULT_HEAD_DIM`]; the sizes are then checked against the weights
/// ([`BertConfig::check`]).
pub fn read_dir(dir: impl AsRef<Path>) -> Result<BertCheckpoint> {
    let dir = dir.as_ref();
    let weights = dir.join("model.safetensors");
    if !weights.is_file() {
        let reason = if dir.join("pytorch_model.bin").exists() {
            "no model.safetensors, only pytorch_model.bin: save the model with \
             `save_pretrained(..., safe_serialization=True)`"
        } else {
            "no model.safetensors in this directory"
        };
        return Err(PruneError::Io {
            path: weights.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, reason),
        });
    }
    let (tensors, _) = prune_io::read_f32(&weights)?;
    let schema = BertSchema::read(&tensors)?;
    let json = dir.join("config.json");
    let config = if json.is_file() {
        BertConfig::from_file(&json, &schema, &tensors)?
    } else {
        BertConfig::from_weights(&schema)
    };
    config.check(&schema, &tensors)?;
    Ok(BertCheckpoint {
        tensors,
        schema,
        config,
    })
}

/// A host tensor of the checkpoint by name, or an error naming it.
pub fn tensor<'t>(tensors: &'t TensorMap, name: &str) -> Result<&'t HostTensor> {
    tensors.get(name).ok_or_else(|| PruneError::UnknownWeight {
        weight: name.into(),
        candidates: Vec::new(),
    })
}

/// The `[layers, heads]` shape of a head mask for a model with `heads[l]` attention heads in
/// layer `l`; refused when the layers do not all have the same number.
pub fn uniform_heads(heads: &[usize]) -> Result<(usize, usize)> {
    let (layers, h) = (heads.len(), heads.first().copied().unwrap_or(0));
    if heads.iter().any(|&n| n != h) {
        return Err(PruneError::Shape {
            weight: "head_mask".into(),
            shape: heads.to_vec(),
            reason: "a head mask needs the same number of heads in every layer".into(),
        });
    }
    Ok((layers, h))
}

/// What a BERT forward pass checks before it runs, read from one backend's tensors. Weights
/// are named as in a bare checkpoint; [`check_forward`]'s `name` puts them under the model's
/// prefix.
#[derive(Debug, Clone, Copy)]
pub struct ForwardShapes<'a> {
    /// The token ids' shape, `[batch, seq]`.
    pub ids: &'a [usize],
    /// The attention mask's shape, the same as the ids'.
    pub mask: &'a [usize],
    /// `embeddings.word_embeddings.weight`, `[vocab, hidden]`.
    pub words: [usize; 2],
    /// `embeddings.position_embeddings.weight`, `[positions, hidden]`.
    pub positions: [usize; 2],
    /// Each layer's `attention.self.query.weight`, canonical `[heads * head_dim, hidden]`.
    pub queries: &'a [[usize; 2]],
    /// The head mask's shape when one is given, `[layers, heads]`.
    pub head_mask: Option<&'a [usize]>,
}

/// Checks the inputs of a BERT forward pass against the encoder: token ids `[batch, seq]` with
/// a mask of the same shape, at least one token, a batch that fits the position table from
/// `config.position_offset`, token ids inside the vocabulary (`id_range` gives the smallest and
/// the largest; it is called only for a batch that passed the checks before), query rows that
/// are whole heads of `config.head_dim`, and a head mask of one row per layer and one column per
/// head of every layer. Each error names the weight (through `name`) and its shape. Returns
/// `[batch, seq]`.
pub fn check_forward(
    shapes: &ForwardShapes<'_>,
    config: &BertConfig,
    name: impl Fn(&str) -> String,
    id_range: impl FnOnce() -> Result<(i64, i64)>,
) -> Result<[usize; 2]> {
    let shape_error = |weight: String, shape: &[usize], reason: String| PruneError::Shape {
        weight,
        shape: shape.to_vec(),
        reason,
    };
    let &[b, s] = shapes.ids else {
        return Err(batch_shape_error(shapes));
    };
    if shapes.mask != shapes.ids {
        return Err(batch_shape_error(shapes));
    }
    if b == 0 || s == 0 {
        return Err(shape_error(
            "batch".into(),
            shapes.ids,
            "an empty batch: a forward pass needs at least one row of one token".into(),
        ));
    }
    let positions = shapes.positions[0];
    let offset = config.position_offset;
    if s.checked_add(offset).is_none_or(|end| end > positions) {
        return Err(shape_error(
            name("embeddings.position_embeddings.weight"),
            &shapes.positions,
            if offset == 0 {
                format!("a batch of {s} tokens is longer than its {positions} positions")
            } else {
                format!(
                    "a batch of {s} tokens from position {offset} does not fit its {positions} \
                     positions"
                )
            },
        ));
    }
    let (lowest, highest) = id_range()?;
    if lowest < 0 || highest >= shapes.words[0] as i64 {
        return Err(shape_error(
            name("embeddings.word_embeddings.weight"),
            &shapes.words,
            "a token id is outside the vocabulary".into(),
        ));
    }
    let layers = shapes.queries.len();
    if let Some(m) = shapes.head_mask {
        if m.len() != 2 || m[0] != layers {
            return Err(shape_error(
                "head_mask".into(),
                m,
                format!("the encoder has {layers} layers"),
            ));
        }
    }
    for (l, query) in shapes.queries.iter().enumerate() {
        let rows = query[0];
        if config.head_dim == 0 || !rows.is_multiple_of(config.head_dim) {
            return Err(shape_error(
                name(&format!("encoder.layer.{l}.attention.self.query.weight")),
                query,
                format!("{rows} rows are not whole heads of {}", config.head_dim),
            ));
        }
        if let Some(m) = shapes.head_mask.filter(|m| m[1] != rows / config.head_dim) {
            return Err(shape_error(
                "head_mask".into(),
                m,
                format!("layer {l} has {} heads", rows / config.head_dim),
            ));
        }
    }
    Ok([b, s])
}

fn batch_shape_error(shapes: &ForwardShapes<'_>) -> PruneError {
    PruneError::Shape {
        weight: "batch".into(),
        shape: shapes.ids.to_vec(),
        reason: format!(
            "token ids must be [batch, seq] with a mask of the same shape, the mask is {:?}",
            shapes.mask
        ),
    }
}

/// Checks that `ids` and `mask` each hold `rows` x `seq` values, a padded batch in row-major order.
pub fn check_batch(ids: usize, mask: usize, rows: usize, seq: usize) -> Result<()> {
    for (what, len) in [("token ids", ids), ("attention mask", mask)] {
        if rows.checked_mul(seq) != Some(len) {
            return Err(PruneError::Shape {
                weight: "batch".into(),
                shape: vec![rows, seq],
                reason: format!("{len} {what} for a batch of {rows} x {seq}"),
            });
        }
    }
    Ok(())
}

/// Checks the two batches of a contrastive step by their row counts: as many rows in `b` as in
/// `a` (row `i` of `a` matches row `i` of `b`), and at least one.
pub fn check_pair(a_rows: usize, b_rows: usize) -> Result<()> {
    if a_rows != b_rows || a_rows == 0 {
        return Err(PruneError::Shape {
            weight: "batch b".into(),
            shape: vec![b_rows],
            reason: format!(
                "a contrastive step pairs row i of batch a with row i of batch b: batch a has \
                 {a_rows} rows, batch b {b_rows}; both need the same number, at least one"
            ),
        });
    }
    Ok(())
}

/// Checks classification labels: one per row of the batch, each below `classes`.
pub fn check_labels(labels: &[i64], rows: usize, classes: usize) -> Result<()> {
    if labels.len() != rows {
        return Err(PruneError::Shape {
            weight: "labels".into(),
            shape: vec![labels.len()],
            reason: format!("{} labels for a batch of {rows} rows", labels.len()),
        });
    }
    if let Some(bad) = labels.iter().find(|&&y| y < 0 || y as usize >= classes) {
        return Err(PruneError::Shape {
            weight: "labels".into(),
            shape: vec![labels.len()],
            reason: format!("label {bad} is outside the head's {classes} classes"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prune_io::HostTensor;

    fn t(shape: Vec<usize>) -> HostTensor {
        let n = shape.iter().product();
        HostTensor {
            shape,
            data: vec![0.0; n],
        }
    }

    fn checkpoint(layers: usize) -> TensorMap {
        let mut m = TensorMap::new();
        for (n, r) in EMBEDDING_TENSORS {
            m.insert(n.into(), t(vec![2; r]));
        }
        for l in 0..layers {
            for (s, r) in LAYER_TENSORS {
                m.insert(format!("encoder.layer.{l}.{s}"), t(vec![2; r]));
            }
        }
        m
    }

    /// A task checkpoint of hidden 8, heads of 4 (2 per layer), FFN 6, vocab 10, 12 positions.
    fn task(prefix: &str, head: Head) -> TensorMap {
        let (h, a, f) = (8, 8, 6);
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
        match head {
            Head::None => {}
            Head::Bert { labels } => {
                put(format!("{prefix}pooler.dense.weight"), vec![h, h]);
                put(format!("{prefix}pooler.dense.bias"), vec![h]);
                put("classifier.weight".into(), vec![labels, h]);
                put("classifier.bias".into(), vec![labels]);
            }
            Head::Roberta { labels } => {
                put("classifier.dense.weight".into(), vec![h, h]);
                put("classifier.dense.bias".into(), vec![h]);
                put("classifier.out_proj.weight".into(), vec![labels, h]);
                put("classifier.out_proj.bias".into(), vec![labels]);
            }
        }
        m
    }

    const BERT_JSON: &str = r#"{"model_type": "bert", "hidden_size": 8, "num_attention_heads": 2,
        "num_hidden_layers": 2, "intermediate_size": 6, "vocab_size": 10,
        "max_position_embeddings": 12, "type_vocab_size": 2, "layer_norm_eps": 1e-7,
        "pad_token_id": 0, "hidden_act": "gelu", "id2label": {"0": "NO", "1": "YES", "2": "MAYBE"}}"#;

    #[test]
    fn a_complete_checkpoint_passes_and_counts_layers() {
        assert_eq!(check_checkpoint(&checkpoint(3)).unwrap(), 3);
    }

    #[test]
    fn a_missing_or_misshapen_tensor_is_named() {
        let mut m = checkpoint(2);
        m.remove("encoder.layer.1.output.LayerNorm.bias");
        let err = check_checkpoint(&m).unwrap_err().to_string();
        assert!(
            err.contains("encoder.layer.1.output.LayerNorm.bias"),
            "{err}"
        );
        let mut m = checkpoint(1);
        m.get_mut("embeddings.word_embeddings.weight")
            .unwrap()
            .shape = vec![4];
        let err = check_checkpoint(&m).unwrap_err().to_string();
        assert!(err.contains("rank-2"), "{err}");
        assert!(check_checkpoint(&TensorMap::new()).is_err());
    }

    #[test]
    fn prefixes_pooler_and_heads_are_read_from_the_names() {
        let s = BertSchema::read(&task("", Head::None)).unwrap();
        assert_eq!(
            (s.prefix, s.layers, s.hidden, s.pooler, s.head),
            ("", 2, 8, false, Head::None)
        );
        let s = BertSchema::read(&task("bert.", Head::Bert { labels: 3 })).unwrap();
        assert_eq!(
            (s.prefix, s.pooler, s.head),
            ("bert.", true, Head::Bert { labels: 3 })
        );
        assert_eq!(s.family(), Family::Bert);
        let names: Vec<String> = s.tensors().into_iter().map(|(n, _)| n).collect();
        let file: Vec<String> = task("bert.", Head::Bert { labels: 3 })
            .into_keys()
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, file, "the schema names every tensor of the file");
        let s = BertSchema::read(&task("roberta.", Head::Roberta { labels: 2 })).unwrap();
        assert_eq!(
            (s.prefix, s.pooler, s.head),
            ("roberta.", false, Head::Roberta { labels: 2 })
        );
        assert_eq!(s.family(), Family::Roberta);
    }

    #[test]
    fn a_head_without_its_pooler_or_a_misfitting_shape_is_named() {
        let mut m = task("bert.", Head::Bert { labels: 2 });
        m.remove("bert.pooler.dense.weight");
        let err = BertSchema::read(&m).unwrap_err().to_string();
        assert!(err.contains("bert.pooler.dense.weight"), "{err}");

        let mut m = task("bert.", Head::Bert { labels: 2 });
        m.insert(
            "bert.encoder.layer.1.attention.self.key.weight".into(),
            t(vec![4, 8]),
        );
        let err = BertSchema::read(&m).unwrap_err().to_string();
        assert!(
            err.contains("bert.encoder.layer.1.attention.self.key.weight")
                && err.contains("expected [8, 8]")
                && err.contains("[4, 8]"),
            "{err}"
        );

        let mut m = task("roberta.", Head::Roberta { labels: 2 });
        m.insert("classifier.out_proj.bias".into(), t(vec![3]));
        let err = BertSchema::read(&m).unwrap_err().to_string();
        assert!(
            err.contains("classifier.out_proj.bias") && err.contains("2 labels"),
            "{err}"
        );

        let mut m = task("bert.", Head::None);
        m.extend(task("", Head::None));
        let err = BertSchema::read(&m).unwrap_err().to_string();
        assert!(err.contains("two encoders"), "{err}");
    }

    /// `m` with `rows` attention rows in layer `l` of a `bert.` checkpoint of hidden 8.
    fn with_attention_rows(m: &TensorMap, l: usize, rows: usize) -> TensorMap {
        let mut m = m.clone();
        let p = format!("bert.encoder.layer.{l}.");
        for w in ["query", "key", "value"] {
            m.insert(format!("{p}attention.self.{w}.weight"), t(vec![rows, 8]));
            m.insert(format!("{p}attention.self.{w}.bias"), t(vec![rows]));
        }
        m.insert(
            format!("{p}attention.output.dense.weight"),
            t(vec![8, rows]),
        );
        m
    }

    #[test]
    fn attention_head_size_gives_the_head_width_of_a_hidden_pruned_model() {
        let m = task("bert.", Head::Bert { labels: 3 });
        let s = BertSchema::read(&m).unwrap();
        // 8 query rows read as 4 heads of 2 because the config says so, not as 2 of 4.
        let json = BERT_JSON.replace(
            "\"num_attention_heads\": 2",
            "\"num_attention_heads\": 4, \"attention_head_size\": 2",
        );
        let c = BertConfig::from_json(&json, "config.json", &s, &m).unwrap();
        assert_eq!(c.head_dim, 2);
        // A width the query rows are not whole heads of is named.
        let json = BERT_JSON.replace(
            "\"num_attention_heads\": 2",
            "\"num_attention_heads\": 2, \"attention_head_size\": 3",
        );
        let err = BertConfig::from_json(&json, "config.json", &s, &m)
            .unwrap_err()
            .to_string();
        assert!(err.contains("attention_head_size 3"), "{err}");
    }

    #[test]
    fn config_json_gives_head_dim_eps_and_positions() {
        let m = task("bert.", Head::Bert { labels: 3 });
        let s = BertSchema::read(&m).unwrap();
        let c = BertConfig::from_json(BERT_JSON, "config.json", &s, &m).unwrap();
        assert_eq!(
            c,
            BertConfig {
                head_dim: 4,
                layer_norm_eps: 1e-7,
                position_offset: 0
            }
        );
        // A checkpoint Hugging Face pruned: layer 1 keeps one head of two.
        let m1 = with_attention_rows(&m, 1, 4);
        let s1 = BertSchema::read(&m1).unwrap();
        let json = BERT_JSON.replace(
            "\"hidden_act\"",
            "\"pruned_heads\": {\"1\": [1]}, \"hidden_act\"",
        );
        assert_eq!(
            BertConfig::from_json(&json, "c", &s1, &m1)
                .unwrap()
                .head_dim,
            4
        );
        let m = task("roberta.", Head::Roberta { labels: 3 });
        let s = BertSchema::read(&m).unwrap();
        let json = BERT_JSON
            .replace("\"bert\"", "\"roberta\"")
            .replace("\"pad_token_id\": 0", "\"pad_token_id\": 3");
        let c = BertConfig::from_json(&json, "config.json", &s, &m).unwrap();
        assert_eq!((c.head_dim, c.position_offset), (4, 4));
        assert_eq!(
            BertConfig::from_weights(&s),
            BertConfig {
                head_dim: 64,
                layer_norm_eps: 1e-5,
                position_offset: 2
            }
        );
    }

    #[test]
    fn a_config_json_that_disagrees_with_the_weights_names_key_tensor_and_sizes() {
        let m = task("bert.", Head::Bert { labels: 3 });
        let s = BertSchema::read(&m).unwrap();
        let json = BERT_JSON
            .replace("\"hidden_size\": 8", "\"hidden_size\": 16")
            .replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3")
            .replace("\"vocab_size\": 10", "\"vocab_size\": 11")
            .replace("\"gelu\"", "\"relu\"");
        let err = BertConfig::from_json(&json, "dir/config.json", &s, &m)
            .unwrap_err()
            .to_string();
        for part in [
            "dir/config.json",
            "hidden_size: 16, but `bert.embeddings.word_embeddings.weight` is [10, 8]: 8 wide",
            "num_hidden_layers: 3, but the checkpoint has 2 layers",
            "no `bert.encoder.layer.2.attention.self.query.weight`",
            "vocab_size: 11, but `bert.embeddings.word_embeddings.weight` is [10, 8]: 10 rows",
            "hidden_act: \"relu\" is not supported",
        ] {
            assert!(err.contains(part), "{part} not in: {err}");
        }
        let json = BERT_JSON.replace("\"bert\"", "\"roberta\"");
        let err = BertConfig::from_json(&json, "c", &s, &m)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model_type") && err.contains("`roberta.`"),
            "{err}"
        );
        let json = BERT_JSON.replace("\"num_attention_heads\": 2", "\"num_attention_heads\": 3");
        let err = BertConfig::from_json(&json, "c", &s, &m)
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 heads do not divide hidden_size 8"), "{err}");
        // Layer 1 with 6 attention rows: not whole heads of 4.
        let m6 = with_attention_rows(&m, 1, 6);
        let s6 = BertSchema::read(&m6).unwrap();
        let err = BertConfig::from_json(BERT_JSON, "c", &s6, &m6)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "num_attention_heads: 2 heads of 4 (hidden_size 8 / 2), but \
                 `bert.encoder.layer.1.attention.self.query.weight` has 6 rows"
            ),
            "{err}"
        );
        // Layer 1 of 6 rows cannot be 2 heads of 4 less one pruned head.
        let json = BERT_JSON.replace(
            "\"hidden_act\"",
            "\"pruned_heads\": {\"1\": [0]}, \"hidden_act\"",
        );
        let err = BertConfig::from_json(&json, "c", &s, &m)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "pruned_heads.1: 2 heads less 1 pruned leave 1 of 4, but \
                 `bert.encoder.layer.1.attention.self.query.weight` has 8 rows"
            ),
            "{err}"
        );
        let pooling = r#"{"word_embedding_dimension": 8, "pooling_mode_mean_tokens": true}"#;
        let err = BertConfig::from_json(pooling, "c", &s, &m)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hidden_size: missing"), "{err}");
        let json = BERT_JSON.replace("\"1\": \"YES\", ", "");
        let err = BertConfig::from_json(&json, "c", &s, &m)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("id2label: 2 labels, but `classifier.weight` has 3 rows"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_is_read_with_or_without_config_json() {
        let dir = std::env::temp_dir().join(format!("prune-nlp-bert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = read_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("model.safetensors"), "{err}");
        let mut m = task("bert.", Head::Bert { labels: 3 });
        prune_io::write_f32(dir.join("model.safetensors"), &m, &Default::default()).unwrap();
        // Without config.json heads are 64 wide, which 8 query rows are not.
        let err = read_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("not whole heads of head_dim 64"), "{err}");
        std::fs::write(dir.join("config.json"), BERT_JSON).unwrap();
        let c = read_dir(&dir).unwrap();
        assert_eq!(
            (c.schema.head, c.config.head_dim),
            (Head::Bert { labels: 3 }, 4)
        );
        for (name, _) in c.schema.tensors() {
            assert!(c.tensors.contains_key(&name), "{name}");
        }
        std::fs::remove_file(dir.join("config.json")).unwrap();
        for t in m.values_mut() {
            t.shape = t
                .shape
                .iter()
                .map(|&d| if d == 8 { 128 } else { d })
                .collect();
            t.data = vec![0.0; t.shape.iter().product()];
        }
        prune_io::write_f32(dir.join("model.safetensors"), &m, &Default::default()).unwrap();
        let c = read_dir(&dir).unwrap();
        assert_eq!(c.config, BertConfig::from_weights(&c.schema));
        assert_eq!(c.config.head_dim, 64);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_batch_of_the_wrong_length_is_named() {
        assert!(check_batch(6, 6, 2, 3).is_ok());
        let err = check_batch(6, 5, 2, 3).unwrap_err().to_string();
        assert!(
            err.contains("5 attention mask for a batch of 2 x 3"),
            "{err}"
        );
        let err = check_batch(7, 6, 2, 3).unwrap_err().to_string();
        assert!(err.contains("7 token ids"), "{err}");
    }

    #[test]
    fn labels_are_checked_against_the_batch_and_the_head() {
        assert!(check_labels(&[0, 1], 2, 2).is_ok());
        assert!(check_labels(&[0], 2, 2)
            .unwrap_err()
            .to_string()
            .contains("1 labels"));
        let err = check_labels(&[0, 2], 2, 2).unwrap_err().to_string();
        assert!(
            err.contains("label 2 is outside the head's 2 classes"),
            "{err}"
        );
        assert!(check_labels(&[-1, 0], 2, 2).is_err());
    }

    #[test]
    fn contrastive_batches_pair_row_for_row() {
        assert!(check_pair(3, 3).is_ok());
        let err = check_pair(3, 2).unwrap_err().to_string();
        assert!(
            err.contains("batch a has 3 rows, batch b 2") && err.contains("`batch b`"),
            "{err}"
        );
        assert!(check_pair(0, 0).is_err());
        assert!(
            check_batch(0, 0, usize::MAX, 2).is_err(),
            "an overflow is a mismatch"
        );
    }

    #[test]
    fn a_head_mask_needs_the_same_heads_in_every_layer() {
        assert_eq!(uniform_heads(&[2, 2, 2]).unwrap(), (3, 2));
        assert_eq!(uniform_heads(&[]).unwrap(), (0, 0));
        let err = uniform_heads(&[2, 1]).unwrap_err().to_string();
        assert!(
            err.contains("weight `head_mask`: a head mask needs the same number of heads in every layer (shape [2, 1])"),
            "{err}"
        );
    }

    #[test]
    fn forward_inputs_are_checked_against_the_encoder() {
        let config = BertConfig {
            head_dim: 4,
            layer_norm_eps: 1e-12,
            position_offset: 0,
        };
        let queries = [[8, 8], [8, 8]];
        let good = ForwardShapes {
            ids: &[2, 3],
            mask: &[2, 3],
            words: [10, 8],
            positions: [12, 8],
            queries: &queries,
            head_mask: Some(&[2, 2]),
        };
        let prefixed = |s: &str| format!("bert.{s}");
        let check = |shapes: ForwardShapes<'_>, config: &BertConfig, range: (i64, i64)| {
            check_forward(&shapes, config, prefixed, || Ok(range)).map_err(|e| e.to_string())
        };
        assert_eq!(check(good, &config, (0, 9)), Ok([2, 3]));
        let cases: Vec<(ForwardShapes<'_>, BertConfig, (i64, i64), &str)> = vec![
            (
                ForwardShapes { ids: &[6], ..good },
                config,
                (0, 1),
                "weight `batch`: token ids must be [batch, seq] with a mask of the same shape, the mask is [2, 3] (shape [6])",
            ),
            (
                ForwardShapes { mask: &[3, 2], ..good },
                config,
                (0, 1),
                "the mask is [3, 2] (shape [2, 3])",
            ),
            (
                ForwardShapes { ids: &[0, 3], mask: &[0, 3], ..good },
                config,
                (0, 1),
                "weight `batch`: an empty batch: a forward pass needs at least one row of one token",
            ),
            (
                ForwardShapes { ids: &[1, 13], mask: &[1, 13], ..good },
                config,
                (0, 1),
                "weight `bert.embeddings.position_embeddings.weight`: a batch of 13 tokens is longer than its 12 positions (shape [12, 8])",
            ),
            (
                good,
                BertConfig { position_offset: 10, ..config },
                (0, 1),
                "a batch of 3 tokens from position 10 does not fit its 12 positions",
            ),
            (
                good,
                config,
                (0, 10),
                "weight `bert.embeddings.word_embeddings.weight`: a token id is outside the vocabulary (shape [10, 8])",
            ),
            (good, config, (-1, 0), "a token id is outside the vocabulary"),
            (
                ForwardShapes { head_mask: Some(&[3, 2]), ..good },
                config,
                (0, 1),
                "weight `head_mask`: the encoder has 2 layers (shape [3, 2])",
            ),
            (
                ForwardShapes { head_mask: Some(&[2]), ..good },
                config,
                (0, 1),
                "the encoder has 2 layers (shape [2])",
            ),
            (
                ForwardShapes { head_mask: Some(&[2, 3]), ..good },
                config,
                (0, 1),
                "weight `head_mask`: layer 0 has 2 heads (shape [2, 3])",
            ),
            (
                ForwardShapes { queries: &[[8, 8], [6, 8]], head_mask: None, ..good },
                config,
                (0, 1),
                "weight `bert.encoder.layer.1.attention.self.query.weight`: 6 rows are not whole heads of 4 (shape [6, 8])",
            ),
            (
                good,
                BertConfig { head_dim: 0, ..config },
                (0, 1),
                "8 rows are not whole heads of 0",
            ),
        ];
        for (shapes, config, range, want) in cases {
            let err = check(shapes, &config, range).unwrap_err();
            assert!(err.contains(want), "{want}\nin: {err}");
        }
        // The ids are read only for a batch of the right shape.
        let unread = check_forward(
            &ForwardShapes {
                ids: &[0, 3],
                mask: &[0, 3],
                ..good
            },
            &config,
            prefixed,
            || panic!("the ids of an empty batch are not read"),
        );
        assert!(unread.is_err());
    }
}
