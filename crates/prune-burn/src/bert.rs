//! BERT-family encoders in burn with Hugging Face parameter names, a `head_mask` input, and
//! every size read from their weights: after a structured pruner removes heads or FFN units,
//! the same module runs the smaller model.
//!
//! - [`Bert`]: a bare encoder (`embeddings.*`, `encoder.layer.N.*`, and `pooler.dense.*` when
//!   the checkpoint has it).
//! - [`BertModel`]: any Hugging Face BERT-family checkpoint, bare or a task model
//!   (`bert.` / `roberta.` prefix, pooler, sequence-classification head), its parameters named
//!   exactly as in the file; [`BertModel::from_dir`] reads `model.safetensors` and
//!   `config.json`.

use crate::{BurnModel, BurnPruning};
use burn::module::{
    Content, Devices, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor,
    Param,
};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::Linear;
use burn::optim::GradientsParams;
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use prune_core::{PruneError, Result};
use prune_io::TensorMap;
pub use prune_nlp::bert::BertConfig;
use prune_nlp::bert::{tensor, BertSchema, Head};
use std::path::Path;

/// An embedding table: `weight` `[rows, hidden]`.
#[derive(Module, Debug)]
pub struct Table {
    /// The table.
    pub weight: Param<Tensor<2>>,
}

/// LayerNorm with Hugging Face names (`weight`, `bias`).
#[derive(Module, Debug)]
pub struct Norm {
    /// Scale.
    pub weight: Param<Tensor<1>>,
    /// Shift.
    pub bias: Param<Tensor<1>>,
}

impl Norm {
    fn forward(&self, x: Tensor<3>, eps: f64) -> Tensor<3> {
        let mean = x.clone().mean_dim(2);
        let centered = x - mean;
        let var = centered.clone().powi_scalar(2).mean_dim(2);
        let normed = centered / (var + eps).sqrt();
        normed * self.weight.val().unsqueeze::<3>() + self.bias.val().unsqueeze::<3>()
    }
}

/// Word, position and token-type embeddings, then LayerNorm.
#[derive(Module, Debug)]
#[allow(non_snake_case)]
pub struct Embeddings {
    /// `[vocab, hidden]`.
    pub word_embeddings: Table,
    /// `[positions, hidden]`.
    pub position_embeddings: Table,
    /// `[types, hidden]`; every token has type 0.
    pub token_type_embeddings: Table,
    /// Normalisation of the sum.
    pub LayerNorm: Norm,
}

/// Query, key and value projections (`attention.self`; the burn field `self_` is reported as
/// `self`).
#[derive(Module, Debug)]
pub struct SelfAttention {
    /// Query `[heads * head_dim, hidden]` (canonical).
    pub query: Linear,
    /// Key.
    pub key: Linear,
    /// Value.
    pub value: Linear,
}

/// A projection back to the hidden size, a residual and LayerNorm.
#[derive(Module, Debug)]
#[allow(non_snake_case)]
pub struct Output {
    /// `[hidden, in]` (canonical).
    pub dense: Linear,
    /// Normalisation after the residual.
    pub LayerNorm: Norm,
}

/// Self-attention and its output projection.
#[derive(Module, Debug)]
pub struct Attention {
    /// Q, K, V.
    pub self_: SelfAttention,
    /// Output projection.
    pub output: Output,
}

/// The FFN's first projection.
#[derive(Module, Debug)]
pub struct Intermediate {
    /// `[ffn, hidden]` (canonical).
    pub dense: Linear,
}

/// One encoder layer.
#[derive(Module, Debug)]
pub struct Layer {
    /// Attention block.
    pub attention: Attention,
    /// FFN in.
    pub intermediate: Intermediate,
    /// FFN out.
    pub output: Output,
}

/// The encoder's layers.
#[derive(Module, Debug)]
pub struct Encoder {
    /// Layers in order.
    pub layer: Vec<Layer>,
}

/// The pooler: `dense` `[hidden, hidden]` (canonical), then tanh, on the first token.
#[derive(Module, Debug)]
pub struct Pooler {
    /// The projection.
    pub dense: Linear,
}

/// A BERT encoder.
#[derive(Module, Debug)]
pub struct Bert {
    /// Embeddings.
    pub embeddings: Embeddings,
    /// Encoder layers.
    pub encoder: Encoder,
    /// The pooler, when the checkpoint has one.
    pub pooler: Option<Pooler>,
}

/// Token ids and attention mask of a padded batch.
#[derive(Debug, Clone)]
pub struct BertBatch {
    /// `[batch, seq]`.
    pub ids: Tensor<2, Int>,
    /// `[batch, seq]`, 1.0 for tokens and 0.0 for padding.
    pub mask: Tensor<2>,
}

impl BertBatch {
    /// A batch from row-major ids and mask of `rows` x `seq`; refused when either holds
    /// another number of values.
    pub fn new(
        ids: &[i64],
        mask: &[f32],
        rows: usize,
        seq: usize,
        device: &Device,
    ) -> Result<Self> {
        prune_nlp::bert::check_batch(ids.len(), mask.len(), rows, seq)?;
        Ok(BertBatch {
            ids: Tensor::from_data(TensorData::new(ids.to_vec(), [rows, seq]), device),
            mask: Tensor::from_data(TensorData::new(mask.to_vec(), [rows, seq]), device),
        })
    }
}

impl SelfAttention {
    fn forward(
        &self,
        x: Tensor<3>,
        mask_bias: Tensor<4>,
        head_mask: Option<Tensor<1>>,
        head_dim: usize,
    ) -> Tensor<3> {
        let [b, s, _] = x.dims();
        let q = self.query.forward(x.clone());
        let heads = q.dims()[2] / head_dim;
        let split = |t: Tensor<3>| t.reshape([b, s, heads, head_dim]).swap_dims(1, 2);
        let q = split(q);
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x));
        let scores = q.matmul(k.swap_dims(2, 3)) / (head_dim as f64).sqrt() + mask_bias;
        let mut probs = softmax(scores, 3);
        if let Some(m) = head_mask {
            probs = probs * m.reshape([1, heads, 1, 1]);
        }
        probs
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, s, heads * head_dim])
    }
}

impl Output {
    fn forward(&self, x: Tensor<3>, residual: Tensor<3>, eps: f64) -> Tensor<3> {
        self.LayerNorm
            .forward(self.dense.forward(x) + residual, eps)
    }
}

impl Layer {
    fn forward(
        &self,
        x: Tensor<3>,
        mask_bias: Tensor<4>,
        head_mask: Option<Tensor<1>>,
        config: &BertConfig,
    ) -> Tensor<3> {
        let eps = config.layer_norm_eps;
        let ctx = self
            .attention
            .self_
            .forward(x.clone(), mask_bias, head_mask, config.head_dim);
        let x = self.attention.output.forward(ctx, x, eps);
        let inner = gelu(self.intermediate.dense.forward(x.clone()));
        self.output.forward(inner, x, eps)
    }

    /// Attention heads of this layer, read from the query weight.
    pub fn heads(&self, head_dim: usize) -> usize {
        self.attention.self_.query.weight.dims()[1] / head_dim.max(1)
    }

    /// FFN units of this layer.
    pub fn ffn(&self) -> usize {
        self.intermediate.dense.weight.dims()[1]
    }
}

/// The first token of each row, `[batch, hidden]`.
fn first_token(tokens: Tensor<3>) -> Tensor<2> {
    let [b, _, h] = tokens.dims();
    tokens.narrow(1, 0, 1).reshape([b, h])
}

impl Bert {
    /// Token embeddings of a batch, `[batch, seq, hidden]`. `head_mask`, if given, is
    /// `[layers, heads]` and multiplies each head's attention probabilities (every layer must
    /// then have the same number of heads). Token `i` reads position row
    /// `config.position_offset + i`. A batch that does not fit the position table, a token id
    /// outside the vocabulary, query rows that are not whole heads of `config.head_dim`, or a
    /// head mask of another shape is an error.
    pub fn forward(
        &self,
        batch: &BertBatch,
        head_mask: Option<Tensor<2>>,
        config: &BertConfig,
    ) -> Result<Tensor<3>> {
        let e = &self.embeddings;
        let queries: Vec<[usize; 2]> = self
            .encoder
            .layer
            .iter()
            .map(|layer| {
                let [hidden, rows] = layer.attention.self_.query.weight.dims();
                [rows, hidden]
            })
            .collect();
        let (ids, mask) = (batch.ids.dims(), batch.mask.dims());
        let head_mask_dims = head_mask.as_ref().map(|m| m.dims());
        let [b, s] = prune_nlp::bert::check_forward(
            &prune_nlp::bert::ForwardShapes {
                ids: &ids,
                mask: &mask,
                words: e.word_embeddings.weight.dims(),
                positions: e.position_embeddings.weight.dims(),
                queries: &queries,
                head_mask: head_mask_dims.as_ref().map(|d| &d[..]),
            },
            config,
            str::to_string,
            || {
                Ok((
                    batch.ids.clone().min().into_scalar::<i64>(),
                    batch.ids.clone().max().into_scalar::<i64>(),
                ))
            },
        )?;
        let hidden = e.word_embeddings.weight.dims()[1];
        let offset = config.position_offset;
        let words = e
            .word_embeddings
            .weight
            .val()
            .select(0, batch.ids.clone().reshape([b * s]))
            .reshape([b, s, hidden]);
        let positions = e
            .position_embeddings
            .weight
            .val()
            .narrow(0, offset, s)
            .unsqueeze::<3>();
        let types = e
            .token_type_embeddings
            .weight
            .val()
            .narrow(0, 0, 1)
            .unsqueeze::<3>();
        let mut x = e
            .LayerNorm
            .forward(words + positions + types, config.layer_norm_eps);
        // 0 where attended, a large negative number on padding.
        let mask_bias = (batch.mask.clone() - 1.0)
            .mul_scalar(1e9)
            .reshape([b, 1, 1, s]);
        for (l, layer) in self.encoder.layer.iter().enumerate() {
            let row = head_mask.as_ref().map(|m| {
                let heads = m.dims()[1];
                m.clone().narrow(0, l, 1).reshape([heads])
            });
            x = layer.forward(x, mask_bias.clone(), row, config);
        }
        Ok(x)
    }

    /// Sentence embeddings `[batch, hidden]` (an error as [`forward`](Self::forward)): the mean of the token embeddings over real tokens,
    /// L2-normalised (sentence-transformers' pooling for all-MiniLM-L6-v2).
    pub fn embed(
        &self,
        batch: &BertBatch,
        head_mask: Option<Tensor<2>>,
        config: &BertConfig,
    ) -> Result<Tensor<2>> {
        let tokens = self.forward(batch, head_mask, config)?;
        let [b, s, h] = tokens.dims();
        let mask = batch.mask.clone().reshape([b, s, 1]);
        let summed = (tokens * mask.clone()).sum_dim(1).reshape([b, h]);
        let counts = mask.sum_dim(1).reshape([b, 1]).clamp_min(1e-9);
        let mean = summed / counts;
        let norm = mean
            .clone()
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12);
        Ok(mean / norm)
    }

    /// The pooled output `[batch, hidden]`: tanh(pooler(first token)) (an error as
    /// [`forward`](Self::forward), or when the encoder has no pooler).
    pub fn pooled(
        &self,
        batch: &BertBatch,
        head_mask: Option<Tensor<2>>,
        config: &BertConfig,
    ) -> Result<Tensor<2>> {
        let pooler = self
            .pooler
            .as_ref()
            .ok_or_else(|| PruneError::UnknownWeight {
                weight: "pooler.dense.weight".into(),
                candidates: Vec::new(),
            })?;
        let tokens = self.forward(batch, head_mask, config)?;
        Ok(pooler.dense.forward(first_token(tokens)).tanh())
    }

    /// Heads per layer, read from the weights.
    pub fn heads(&self, config: &BertConfig) -> Vec<usize> {
        self.encoder
            .layer
            .iter()
            .map(|l| l.heads(config.head_dim))
            .collect()
    }

    /// FFN units per layer, read from the weights.
    pub fn ffn(&self) -> Vec<usize> {
        self.encoder.layer.iter().map(Layer::ffn).collect()
    }

    /// Builds the encoder from bare Hugging Face tensors (canonical `[out, in]` Linear
    /// weights), e.g. from [`prune_io::read_f32`]; the pooler is loaded when present. Fails
    /// naming the first missing tensor, wrong rank or misfitting shape
    /// ([`BertSchema::read`]); a task checkpoint (`bert.`, `roberta.`) is loaded by
    /// [`BertModel::from_tensors`].
    pub fn from_tensors(tensors: &TensorMap, device: &Device) -> Result<Bert> {
        let schema = BertSchema::read(tensors)?;
        if !schema.prefix.is_empty() {
            return Err(crate::backend::backend_error(format!(
                "the checkpoint's encoder is under `{}`: load it with BertModel::from_tensors, \
                 which keeps its names",
                schema.prefix
            )));
        }
        Loader { tensors, device }.encoder(&schema)
    }
}

/// Builds burn parameters from host tensors.
struct Loader<'a> {
    tensors: &'a TensorMap,
    device: &'a Device,
}

impl Loader<'_> {
    fn param2(&self, name: &str) -> Result<Param<Tensor<2>>> {
        let t = tensor(self.tensors, name)?;
        Ok(Param::from_tensor(Tensor::from_data(
            TensorData::new(t.data.clone(), [t.shape[0], t.shape[1]]),
            self.device,
        )))
    }

    fn param1(&self, name: &str) -> Result<Param<Tensor<1>>> {
        let t = tensor(self.tensors, name)?;
        Ok(Param::from_tensor(Tensor::from_data(
            TensorData::new(t.data.clone(), [t.shape[0]]),
            self.device,
        )))
    }

    /// burn's `Linear` (stored `[in, out]`) from `<stem>.weight` (`[out, in]`) and `<stem>.bias`.
    fn linear(&self, stem: &str) -> Result<Linear> {
        let t = tensor(self.tensors, &format!("{stem}.weight"))?;
        let stored = prune_core::model::layout::transpose(&t.data, t.shape[0], t.shape[1]);
        Ok(Linear {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(stored, [t.shape[1], t.shape[0]]),
                self.device,
            )),
            bias: Some(self.param1(&format!("{stem}.bias"))?),
        })
    }

    fn norm(&self, stem: &str) -> Result<Norm> {
        Ok(Norm {
            weight: self.param1(&format!("{stem}.weight"))?,
            bias: self.param1(&format!("{stem}.bias"))?,
        })
    }

    fn table(&self, name: &str) -> Result<Table> {
        Ok(Table {
            weight: self.param2(name)?,
        })
    }

    /// The encoder under the schema's prefix.
    fn encoder(&self, schema: &BertSchema) -> Result<Bert> {
        let n = |suffix: &str| schema.name(suffix);
        let mut layer = Vec::with_capacity(schema.layers);
        for l in 0..schema.layers {
            let p = |suffix: &str| schema.layer_name(l, suffix);
            layer.push(Layer {
                attention: Attention {
                    self_: SelfAttention {
                        query: self.linear(&p("attention.self.query"))?,
                        key: self.linear(&p("attention.self.key"))?,
                        value: self.linear(&p("attention.self.value"))?,
                    },
                    output: Output {
                        dense: self.linear(&p("attention.output.dense"))?,
                        LayerNorm: self.norm(&p("attention.output.LayerNorm"))?,
                    },
                },
                intermediate: Intermediate {
                    dense: self.linear(&p("intermediate.dense"))?,
                },
                output: Output {
                    dense: self.linear(&p("output.dense"))?,
                    LayerNorm: self.norm(&p("output.LayerNorm"))?,
                },
            });
        }
        let pooler = if schema.pooler {
            Some(Pooler {
                dense: self.linear(&n("pooler.dense"))?,
            })
        } else {
            None
        };
        Ok(Bert {
            embeddings: Embeddings {
                word_embeddings: self.table(&n("embeddings.word_embeddings.weight"))?,
                position_embeddings: self.table(&n("embeddings.position_embeddings.weight"))?,
                token_type_embeddings: self.table(&n("embeddings.token_type_embeddings.weight"))?,
                LayerNorm: self.norm(&n("embeddings.LayerNorm"))?,
            },
            encoder: Encoder { layer },
            pooler,
        })
    }

    fn classifier(&self, head: Head) -> Result<Option<Classifier>> {
        Ok(match head {
            Head::None => None,
            Head::Bert { .. } => Some(Classifier::Bert(self.linear("classifier")?)),
            Head::Roberta { .. } => Some(Classifier::Roberta(RobertaHead {
                dense: self.linear("classifier.dense")?,
                out_proj: self.linear("classifier.out_proj")?,
            })),
        })
    }
}

/// RoBERTa's classification head: `dense` `[hidden, hidden]`, tanh, `out_proj`
/// `[labels, hidden]` (canonical).
#[derive(Module, Debug)]
pub struct RobertaHead {
    /// The first projection.
    pub dense: Linear,
    /// The projection to the labels.
    pub out_proj: Linear,
}

/// A sequence-classification head, named `classifier.*` as in Hugging Face (the variant adds
/// no segment to the names).
#[derive(Debug, Clone)]
pub enum Classifier {
    /// BertForSequenceClassification's `classifier` `[labels, hidden]` (canonical), on the
    /// pooled output.
    Bert(Linear),
    /// RobertaForSequenceClassification's head, on the first token.
    Roberta(RobertaHead),
}

impl Classifier {
    /// Number of labels.
    pub fn labels(&self) -> usize {
        match self {
            Classifier::Bert(l) => l.weight.dims()[1],
            Classifier::Roberta(h) => h.out_proj.weight.dims()[1],
        }
    }
}

impl Module for Classifier {
    fn collect_devices(&self, devices: Devices) -> Devices {
        match self {
            Classifier::Bert(l) => l.collect_devices(devices),
            Classifier::Roberta(h) => h.collect_devices(devices),
        }
    }
    fn fork(self, device: &Device) -> Self {
        match self {
            Classifier::Bert(l) => Classifier::Bert(l.fork(device)),
            Classifier::Roberta(h) => Classifier::Roberta(h.fork(device)),
        }
    }
    fn to_device(self, device: &Device) -> Self {
        match self {
            Classifier::Bert(l) => Classifier::Bert(l.to_device(device)),
            Classifier::Roberta(h) => Classifier::Roberta(h.to_device(device)),
        }
    }
    fn train(self) -> Self {
        match self {
            Classifier::Bert(l) => Classifier::Bert(l.train()),
            Classifier::Roberta(h) => Classifier::Roberta(h.train()),
        }
    }
    fn valid(&self) -> Self {
        match self {
            Classifier::Bert(l) => Classifier::Bert(l.valid()),
            Classifier::Roberta(h) => Classifier::Roberta(h.valid()),
        }
    }
    fn materialize(self) -> Self {
        match self {
            Classifier::Bert(l) => Classifier::Bert(l.materialize()),
            Classifier::Roberta(h) => Classifier::Roberta(h.materialize()),
        }
    }
    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        match self {
            Classifier::Bert(l) => l.visit(visitor),
            Classifier::Roberta(h) => h.visit(visitor),
        }
    }
    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        match self {
            Classifier::Bert(l) => Classifier::Bert(l.map(mapper)),
            Classifier::Roberta(h) => Classifier::Roberta(h.map(mapper)),
        }
    }
}

impl ModuleDisplayDefault for Classifier {
    fn content(&self, content: Content) -> Option<Content> {
        match self {
            Classifier::Bert(l) => content.add_single(l).optional(),
            Classifier::Roberta(h) => content.add_single(h).optional(),
        }
    }
}

impl ModuleDisplay for Classifier {}

/// A Hugging Face BERT-family checkpoint as one module: the encoder under the checkpoint's
/// prefix (none, `bert.` or `roberta.`), its pooler and its classification head when present.
/// Its parameters are named exactly as the file's tensors
/// (`bert.encoder.layer.0.attention.self.query.weight`, `classifier.weight`, ...), so INC
/// configs written for the Hugging Face model name its weights as they are.
#[derive(Debug, Clone)]
pub struct BertModel {
    prefix: &'static str,
    /// The encoder and its pooler.
    pub bert: Bert,
    /// The sequence-classification head.
    pub classifier: Option<Classifier>,
}

const BERT_MODEL: &str = "Struct:BertModel";

impl BertModel {
    /// Builds the model from Hugging Face tensors, bare or under a task prefix, with the pooler
    /// and head the tensors hold ([`BertSchema::read`]; an error names the first missing
    /// tensor, wrong rank or misfitting shape).
    pub fn from_tensors(tensors: &TensorMap, device: &Device) -> Result<BertModel> {
        let schema = BertSchema::read(tensors)?;
        let loader = Loader { tensors, device };
        Ok(BertModel {
            prefix: schema.prefix,
            bert: loader.encoder(&schema)?,
            classifier: loader.classifier(schema.head)?,
        })
    }

    /// Reads a model directory: `model.safetensors` and, when present, `config.json`
    /// ([`prune_nlp::bert::read_dir`]); returns the model and its sizes.
    pub fn from_dir(dir: impl AsRef<Path>, device: &Device) -> Result<(BertModel, BertConfig)> {
        let checkpoint = prune_nlp::bert::read_dir(dir)?;
        let model = BertModel::from_tensors(&checkpoint.tensors, device)?;
        Ok((model, checkpoint.config))
    }

    /// The prefix of the encoder's names: `""`, `"bert."` or `"roberta."`.
    pub fn prefix(&self) -> &'static str {
        self.prefix
    }

    /// Number of labels of the head, if there is one.
    pub fn labels(&self) -> Option<usize> {
        self.classifier.as_ref().map(Classifier::labels)
    }

    /// Token embeddings `[batch, seq, hidden]` ([`Bert::forward`]).
    pub fn forward(
        &self,
        batch: &BertBatch,
        head_mask: Option<Tensor<2>>,
        config: &BertConfig,
    ) -> Result<Tensor<3>> {
        self.bert
            .forward(batch, head_mask, config)
            .map_err(|e| self.named(e))
    }

    /// An encoder error with the weight named as in this model.
    fn named(&self, e: PruneError) -> PruneError {
        let under = |weight: String| {
            if weight.starts_with("embeddings.")
                || weight.starts_with("encoder.")
                || weight.starts_with("pooler.")
            {
                format!("{}{weight}", self.prefix)
            } else {
                weight
            }
        };
        match e {
            PruneError::UnknownWeight { weight, candidates } => PruneError::UnknownWeight {
                weight: under(weight),
                candidates,
            },
            PruneError::Shape {
                weight,
                shape,
                reason,
            } => PruneError::Shape {
                weight: under(weight),
                shape,
                reason,
            },
            e => e,
        }
    }

    /// Classification logits `[batch, labels]`: BERT's `classifier` on tanh(pooler(first
    /// token)), or RoBERTa's `classifier.dense`, tanh, `classifier.out_proj` on the first
    /// token. An error as [`Bert::forward`], or when the model has no head.
    pub fn logits(
        &self,
        batch: &BertBatch,
        head_mask: Option<Tensor<2>>,
        config: &BertConfig,
    ) -> Result<Tensor<2>> {
        match &self.classifier {
            None => Err(PruneError::UnknownWeight {
                weight: "classifier.weight".into(),
                candidates: Vec::new(),
            }),
            Some(Classifier::Bert(classifier)) => {
                let pooled = self
                    .bert
                    .pooled(batch, head_mask, config)
                    .map_err(|e| self.named(e))?;
                Ok(classifier.forward(pooled))
            }
            Some(Classifier::Roberta(head)) => {
                let first = first_token(self.forward(batch, head_mask, config)?);
                Ok(head.out_proj.forward(head.dense.forward(first).tanh()))
            }
        }
    }

    /// Heads per layer, read from the weights.
    pub fn heads(&self, config: &BertConfig) -> Vec<usize> {
        self.bert.heads(config)
    }

    /// FFN units per layer, read from the weights.
    pub fn ffn(&self) -> Vec<usize> {
        self.bert.ffn()
    }
}

impl Module for BertModel {
    fn collect_devices(&self, devices: Devices) -> Devices {
        let devices = self.bert.collect_devices(devices);
        self.classifier.collect_devices(devices)
    }
    fn fork(self, device: &Device) -> Self {
        BertModel {
            prefix: self.prefix,
            bert: self.bert.fork(device),
            classifier: self.classifier.fork(device),
        }
    }
    fn to_device(self, device: &Device) -> Self {
        BertModel {
            prefix: self.prefix,
            bert: self.bert.to_device(device),
            classifier: self.classifier.to_device(device),
        }
    }
    fn train(self) -> Self {
        BertModel {
            prefix: self.prefix,
            bert: self.bert.train(),
            classifier: self.classifier.train(),
        }
    }
    fn valid(&self) -> Self {
        BertModel {
            prefix: self.prefix,
            bert: self.bert.valid(),
            classifier: self.classifier.valid(),
        }
    }
    fn materialize(self) -> Self {
        BertModel {
            prefix: self.prefix,
            bert: self.bert.materialize(),
            classifier: self.classifier.materialize(),
        }
    }
    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        let segment = self.prefix.trim_end_matches('.');
        if segment.is_empty() {
            self.bert.visit(visitor);
        } else {
            visitor.enter_module(segment, BERT_MODEL);
            self.bert.visit(visitor);
            visitor.exit_module(segment, BERT_MODEL);
        }
        if let Some(c) = &self.classifier {
            visitor.enter_module("classifier", BERT_MODEL);
            c.visit(visitor);
            visitor.exit_module("classifier", BERT_MODEL);
        }
    }
    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        let segment = self.prefix.trim_end_matches('.');
        let bert = if segment.is_empty() {
            self.bert.map(mapper)
        } else {
            mapper.enter_module(segment, BERT_MODEL);
            let bert = self.bert.map(mapper);
            mapper.exit_module(segment, BERT_MODEL);
            bert
        };
        let classifier = self.classifier.map(|c| {
            mapper.enter_module("classifier", BERT_MODEL);
            let c = c.map(mapper);
            mapper.exit_module("classifier", BERT_MODEL);
            c
        });
        BertModel {
            prefix: self.prefix,
            bert,
            classifier,
        }
    }
}

impl ModuleDisplayDefault for BertModel {
    fn content(&self, content: Content) -> Option<Content> {
        let encoder = match self.prefix.trim_end_matches('.') {
            "" => "encoder",
            p => p,
        };
        content
            .add(encoder, &self.bert)
            .add("classifier", &self.classifier)
            .optional()
    }
}

impl ModuleDisplay for BertModel {}

/// A `[layers, heads]` head mask of ones that records its gradient, for a model whose layers
/// all have the same number of heads ([`prune_nlp::bert::uniform_heads`]).
fn importance_head_mask(heads: &[usize], device: &Device) -> Result<(Tensor<2>, usize, usize)> {
    let (layers, h) = prune_nlp::bert::uniform_heads(heads)?;
    Ok((
        Tensor::<2>::ones([layers, h], device).require_grad(),
        layers,
        h,
    ))
}

/// The session's side of an importance step after the loss: the `head_mask` gradient recorded,
/// the weight gradients through `on_before_optimizer_step`, no weight update.
fn finish_importance_step<M: Module>(
    pruning: &mut BurnPruning,
    model: &mut BurnModel<M>,
    loss: Tensor<1>,
    head_mask: &Tensor<2>,
    layers: usize,
    heads: usize,
) -> Result<f32> {
    let value = crate::backend::host_f32(&loss.clone().inner().reshape([1]))?[0];
    let grads = loss.backward();
    if pruning.reads_input("head_mask") {
        let g = head_mask
            .grad(&grads)
            .ok_or_else(|| crate::backend::backend_error("head_mask has no gradient"))?;
        let g = crate::backend::host_f32(&g.reshape([layers * heads]))?;
        pruning.record_input_gradient("head_mask", &[layers, heads], &g)?;
    }
    model.set_grads(GradientsParams::from_grads(grads, model.module()));
    pruning.on_before_optimizer_step(model)?;
    model.take_grads();
    pruning.on_step_end(model)?;
    Ok(value)
}

/// One importance step of a sentence-embedding encoder under a pruning session, with no weight
/// update: an in-batch contrastive loss (`a[i]` must match `b[i]` among all of `b`; cosine
/// scores scaled by 20), the `head_mask` gradient handed to the session, the weight gradients
/// through `on_before_optimizer_step`. Returns the loss.
pub fn contrastive_importance_step(
    pruning: &mut BurnPruning,
    model: &mut BurnModel<Bert>,
    a: &BertBatch,
    b: &BertBatch,
    config: &BertConfig,
) -> Result<f32> {
    prune_nlp::bert::check_pair(a.ids.dims()[0], b.ids.dims()[0])?;
    pruning.on_step_begin(model)?;
    let device = a.ids.device();
    let (head_mask, layers, h) = importance_head_mask(&model.module().heads(config), &device)?;
    let m = model.module();
    let ea = m.embed(a, Some(head_mask.clone()), config)?;
    let eb = m.embed(b, Some(head_mask.clone()), config)?;
    let n = a.ids.dims()[0];
    let targets = Tensor::<1, Int>::from_data(
        TensorData::new((0..n as i64).collect::<Vec<_>>(), [n]),
        &device,
    );
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(ea.matmul(eb.transpose()) * 20.0, targets);
    finish_importance_step(pruning, model, loss, &head_mask, layers, h)
}

/// One importance step of a sequence classifier under a pruning session, with no weight
/// update: the cross-entropy of the head's logits against `labels` (one per row of `batch`,
/// each below the head's label count), the `head_mask` gradient handed to the session, the
/// weight gradients through `on_before_optimizer_step`. Returns the loss.
pub fn classification_importance_step(
    pruning: &mut BurnPruning,
    model: &mut BurnModel<BertModel>,
    batch: &BertBatch,
    labels: &[i64],
    config: &BertConfig,
) -> Result<f32> {
    let classes = model
        .module()
        .labels()
        .ok_or_else(|| PruneError::UnknownWeight {
            weight: "classifier.weight".into(),
            candidates: Vec::new(),
        })?;
    let rows = batch.ids.dims()[0];
    prune_nlp::bert::check_labels(labels, rows, classes)?;
    pruning.on_step_begin(model)?;
    let device = batch.ids.device();
    let (head_mask, layers, h) = importance_head_mask(&model.module().heads(config), &device)?;
    let logits = model
        .module()
        .logits(batch, Some(head_mask.clone()), config)?;
    let targets = Tensor::<1, Int>::from_data(TensorData::new(labels.to_vec(), [rows]), &device);
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(logits, targets);
    finish_importance_step(pruning, model, loss, &head_mask, layers, h)
}
