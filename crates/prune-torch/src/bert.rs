//! BERT-family encoders over tch with Hugging Face parameter names in a [`VarStore`], a
//! `head_mask` input, and every size read from their weights: after a structured pruner shrinks
//! the variables in place, the same value runs the smaller model. A checkpoint may be bare
//! (`embeddings.*`, `encoder.layer.N.*`) or a Hugging Face task model (`bert.` / `roberta.`
//! prefix, pooler, sequence-classification head); the variables carry the file's names.

use crate::{TorchModel, TorchPruning};
use prune_core::{PruneError, Result};
use prune_io::TensorMap;
pub use prune_nlp::bert::BertConfig;
use prune_nlp::bert::{tensor, BertSchema, Head};
use std::borrow::Borrow;
use std::path::Path;
use tch::nn::{Path as VarPath, VarStore};
use tch::{Device, Kind, Tensor};

/// A BERT-family model whose parameters live in a [`VarStore`] (wrap that store in
/// [`TorchModel`](crate::TorchModel) to prune it): the encoder under the checkpoint's prefix,
/// its pooler and classification head when the checkpoint has them.
pub struct Bert {
    vars: std::collections::HashMap<String, Tensor>,
    schema: BertSchema,
}

/// Token ids and attention mask of a padded batch.
pub struct BertBatch {
    /// `[batch, seq]`, int64.
    pub ids: Tensor,
    /// `[batch, seq]`, 1.0 for tokens and 0.0 for padding.
    pub mask: Tensor,
}

impl BertBatch {
    /// A batch from row-major ids and mask of `rows` x `seq`; refused when either holds
    /// another number of values.
    pub fn new(ids: &[i64], mask: &[f32], rows: usize, seq: usize, device: Device) -> Result<Self> {
        prune_nlp::bert::check_batch(ids.len(), mask.len(), rows, seq)?;
        let shape = [rows as i64, seq as i64];
        let put = |t: std::result::Result<Tensor, tch::TchError>| {
            step(
                "batch",
                t.and_then(|t| t.f_reshape(shape))
                    .and_then(|t| t.f_to_device(device)),
            )
        };
        Ok(BertBatch {
            ids: put(Tensor::f_from_slice(ids))?,
            mask: put(Tensor::f_from_slice(mask))?,
        })
    }
}

/// The variable under a dotted name: `a.b.c` is `c` under `root / "a" / "b"`.
fn create(root: &VarPath, name: &str, value: &Tensor) -> Result<Tensor> {
    let mut segments: Vec<&str> = name.split('.').collect();
    let last = segments.pop().unwrap_or_default();
    let mut p = root.clone();
    for s in segments {
        p = &p / s;
    }
    p.f_var_copy(last, value)
        .map_err(|e| crate::backend::torch_error(format!("creating the variable `{name}`: {e}")))
}

/// Zeroes the gradient of every variable of `vs` that has one.
fn zero_grads(vs: &VarStore) -> Result<()> {
    for (name, v) in vs.variables() {
        let zeroed = v.f_grad().and_then(|mut grad| {
            if grad.defined() {
                let _ = grad.f_detach_()?.f_zero_()?;
            }
            Ok(())
        });
        zeroed.map_err(|e| {
            crate::backend::torch_error(format!("zeroing the gradient of `{name}`: {e}"))
        })?;
    }
    Ok(())
}

impl Bert {
    /// Creates the model's variables in `vs` from Hugging Face tensors (e.g. from
    /// [`prune_io::read_f32`]), bare or under a task prefix: every tensor of the schema
    /// ([`BertSchema::read`]: embeddings, layers, pooler and head when present) becomes a
    /// trainable variable with the same name. Fails naming the first missing tensor, wrong
    /// rank or misfitting shape.
    pub fn from_tensors(vs: &VarStore, tensors: &TensorMap) -> Result<Bert> {
        let schema = BertSchema::read(tensors)?;
        let root = vs.root();
        let mut vars = std::collections::HashMap::new();
        for (name, _) in schema.tensors() {
            let t = tensor(tensors, &name)?;
            let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
            let value = step(
                &name,
                Tensor::from_slice(&t.data)
                    .f_reshape(&shape)
                    .and_then(|v| v.f_to_device(vs.device())),
            )?;
            let var = create(&root, &name, &value)?;
            vars.insert(name, var);
        }
        Ok(Bert { vars, schema })
    }

    /// Reads a model directory into `vs`: `model.safetensors` and, when present,
    /// `config.json` ([`prune_nlp::bert::read_dir`]); returns the model and its sizes.
    pub fn from_dir(vs: &VarStore, dir: impl AsRef<Path>) -> Result<(Bert, BertConfig)> {
        let checkpoint = prune_nlp::bert::read_dir(dir)?;
        let bert = Bert::from_tensors(vs, &checkpoint.tensors)?;
        Ok((bert, checkpoint.config))
    }

    /// The prefix of the encoder's names: `""`, `"bert."` or `"roberta."`.
    pub fn prefix(&self) -> &'static str {
        self.schema.prefix
    }

    /// What the model holds: prefix, layers, pooler, head.
    pub fn schema(&self) -> &BertSchema {
        &self.schema
    }

    /// Number of labels of the head, if there is one (read from its weight).
    pub fn labels(&self) -> Option<usize> {
        let weight = match self.schema.head {
            Head::None => return None,
            Head::Bert { .. } => "classifier.weight",
            Head::Roberta { .. } => "classifier.out_proj.weight",
        };
        Some(self.v(weight).size()[0] as usize)
    }

    /// `suffix` under the prefix.
    fn n(&self, suffix: &str) -> String {
        self.schema.name(suffix)
    }

    /// The variable `name`: every name `forward` asks for was checked when the encoder was built,
    /// and the map is never changed after.
    fn v(&self, name: &str) -> &Tensor {
        self.vars.get(name).expect("checked when built")
    }

    fn linear(&self, x: &Tensor, stem: &str) -> Result<Tensor> {
        let w = self.v(&format!("{stem}.weight"));
        let b = self.v(&format!("{stem}.bias"));
        step(stem, x.f_linear(w, Some(b)))
    }

    fn norm(&self, x: &Tensor, stem: &str, eps: f64) -> Result<Tensor> {
        let w = self.v(&format!("{stem}.weight"));
        let b = self.v(&format!("{stem}.bias"));
        step(
            stem,
            x.f_layer_norm([w.size()[0]], Some(w), Some(b), eps, false),
        )
    }

    /// Attention heads per layer, read from the query weights.
    pub fn heads(&self, config: &BertConfig) -> Vec<usize> {
        (0..self.schema.layers)
            .map(|l| {
                self.v(&self.schema.layer_name(l, "attention.self.query.weight"))
                    .size()[0] as usize
                    / config.head_dim.max(1)
            })
            .collect()
    }

    /// FFN units per layer.
    pub fn ffn(&self) -> Vec<usize> {
        (0..self.schema.layers)
            .map(|l| {
                self.v(&self.schema.layer_name(l, "intermediate.dense.weight"))
                    .size()[0] as usize
            })
            .collect()
    }

    /// Token embeddings `[batch, seq, hidden]`. `head_mask`, if given, is `[layers, heads]` and
    /// multiplies each head's attention probabilities. Token `i` reads position row
    /// `config.position_offset + i`. A batch that does not fit the position table, a token id
    /// outside the vocabulary, query rows that are not whole heads of `config.head_dim`, or a
    /// head mask of another layer count is an error.
    pub fn forward(
        &self,
        batch: &BertBatch,
        head_mask: Option<&Tensor>,
        config: &BertConfig,
    ) -> Result<Tensor> {
        let eps = config.layer_norm_eps;
        let dims =
            |t: &Tensor| -> Vec<usize> { t.size().iter().map(|&d| d.max(0) as usize).collect() };
        let table = |name: &str| -> [usize; 2] {
            match dims(self.v(&self.n(name)))[..] {
                [rows, cols] => [rows, cols],
                // Every table is checked 2-D when the encoder is built.
                _ => [0, 0],
            }
        };
        let layers = self.schema.layers;
        let queries: Vec<[usize; 2]> = (0..layers)
            .map(|l| table(&format!("encoder.layer.{l}.attention.self.query.weight")))
            .collect();
        let (ids, mask) = (dims(&batch.ids), dims(&batch.mask));
        let head_mask_dims = head_mask.map(dims);
        let [b, s] = prune_nlp::bert::check_forward(
            &prune_nlp::bert::ForwardShapes {
                ids: &ids,
                mask: &mask,
                words: table("embeddings.word_embeddings.weight"),
                positions: table("embeddings.position_embeddings.weight"),
                queries: &queries,
                head_mask: head_mask_dims.as_deref(),
            },
            config,
            |suffix| self.n(suffix),
            || {
                let extreme = |t: std::result::Result<Tensor, tch::TchError>| {
                    step("token ids", t.and_then(|t| t.f_int64_value(&[])))
                };
                Ok((extreme(batch.ids.f_min())?, extreme(batch.ids.f_max())?))
            },
        )?;
        let (b, s) = (b as i64, s as i64);
        let position_table = self.n("embeddings.position_embeddings.weight");
        let offset = config.position_offset as i64;
        let word_table = self.n("embeddings.word_embeddings.weight");
        let vocab = self.v(&word_table);
        let words = vocab
            .f_index_select(0, &step("token ids", batch.ids.f_reshape([b * s]))?)
            .map_err(|e| PruneError::Shape {
                weight: word_table.clone(),
                shape: vocab.size().iter().map(|&d| d as usize).collect(),
                reason: format!("a token id is outside the vocabulary: {e}"),
            })?;
        let hidden = words.size()[1];
        let words = step("embeddings", words.f_reshape([b, s, hidden]))?;
        let positions = step(
            "embeddings.position_embeddings",
            self.v(&position_table)
                .f_narrow(0, offset, s)
                .and_then(|t| t.f_unsqueeze(0)),
        )?;
        let types = step(
            "embeddings.token_type_embeddings",
            self.v(&self.n("embeddings.token_type_embeddings.weight"))
                .f_narrow(0, 0, 1)
                .and_then(|t| t.f_unsqueeze(0)),
        )?;
        let summed = step(
            "embeddings",
            words.f_add(&positions).and_then(|t| t.f_add(&types)),
        )?;
        let mut x = self.norm(&summed, &self.n("embeddings.LayerNorm"), eps)?;
        let mask_bias = step(
            "attention mask",
            batch
                .mask
                .f_sub_scalar(1.0)
                .and_then(|t| t.f_mul_scalar(1e9))
                .and_then(|t| t.f_reshape([b, 1, 1, s])),
        )?;
        let dh = config.head_dim as i64;
        for l in 0..layers {
            let p = self.n(&format!("encoder.layer.{l}"));
            let attention = format!("{p}.attention.self");
            let q = self.linear(&x, &format!("{attention}.query"))?;
            let heads = q.size()[2] / dh;
            let split = |t: Tensor| {
                step(
                    &attention,
                    t.f_reshape([b, s, heads, dh])
                        .and_then(|t| t.f_transpose(1, 2)),
                )
            };
            let q = split(q)?;
            let k = split(self.linear(&x, &format!("{attention}.key"))?)?;
            let v = split(self.linear(&x, &format!("{attention}.value"))?)?;
            let probs = step(
                &attention,
                k.f_transpose(2, 3)
                    .and_then(|kt| q.f_matmul(&kt))
                    .and_then(|t| t.f_div_scalar((dh as f64).sqrt()))
                    .and_then(|t| t.f_add(&mask_bias))
                    .and_then(|t| t.f_softmax(3, Kind::Float)),
            )?;
            let probs = match head_mask {
                // A new tensor, not in place: autograd needs the softmax output.
                Some(m) => step(
                    "head_mask",
                    m.f_get(l as i64)
                        .and_then(|r| r.f_reshape([1, heads, 1, 1]))
                        .and_then(|r| probs.f_mul(&r)),
                )?,
                None => probs,
            };
            let ctx = step(
                &attention,
                probs
                    .f_matmul(&v)
                    .and_then(|t| t.f_transpose(1, 2))
                    .and_then(|t| t.f_reshape([b, s, heads * dh])),
            )?;
            let output = format!("{p}.attention.output");
            let attn = self.linear(&ctx, &format!("{output}.dense"))?;
            let attn = step(&output, attn.f_add(&x))?;
            x = self.norm(&attn, &format!("{output}.LayerNorm"), eps)?;
            let intermediate = format!("{p}.intermediate.dense");
            let inner = step(
                &intermediate,
                self.linear(&x, &intermediate)?.f_gelu("none"),
            )?;
            let out = self.linear(&inner, &format!("{p}.output.dense"))?;
            let out = step(&format!("{p}.output"), out.f_add(&x))?;
            x = self.norm(&out, &format!("{p}.output.LayerNorm"), eps)?;
        }
        Ok(x)
    }

    /// Sentence embeddings `[batch, hidden]`: mean over real tokens, L2-normalised (an error
    /// as [`forward`](Self::forward)).
    pub fn embed(
        &self,
        batch: &BertBatch,
        head_mask: Option<&Tensor>,
        config: &BertConfig,
    ) -> Result<Tensor> {
        let tokens = self.forward(batch, head_mask, config)?;
        step(
            "mean pooling",
            batch.mask.f_unsqueeze(2).and_then(|mask| {
                let summed = tokens
                    .f_mul(&mask)?
                    .f_sum_dim_intlist(1, false, Kind::Float)?;
                let counts = mask
                    .f_sum_dim_intlist(1, false, Kind::Float)?
                    .f_clamp_min(1e-9)?;
                let mean = summed.f_div(&counts)?;
                let norm = mean
                    .f_pow_tensor_scalar(2)?
                    .f_sum_dim_intlist(1, true, Kind::Float)?
                    .f_sqrt()?
                    .f_clamp_min(1e-12)?;
                mean.f_div(&norm)
            }),
        )
    }

    /// The first token of each row, `[batch, hidden]`.
    fn first_token(tokens: &Tensor) -> Result<Tensor> {
        step("first token", tokens.f_select(1, 0))
    }

    /// The pooled output `[batch, hidden]`: tanh(pooler(first token)) (an error as
    /// [`forward`](Self::forward), or when the model has no pooler).
    pub fn pooled(
        &self,
        batch: &BertBatch,
        head_mask: Option<&Tensor>,
        config: &BertConfig,
    ) -> Result<Tensor> {
        if !self.schema.pooler {
            return Err(PruneError::UnknownWeight {
                weight: self.n("pooler.dense.weight"),
                candidates: Vec::new(),
            });
        }
        let first = Self::first_token(&self.forward(batch, head_mask, config)?)?;
        let stem = self.n("pooler.dense");
        step(&stem, self.linear(&first, &stem)?.f_tanh())
    }

    /// Classification logits `[batch, labels]`: BERT's `classifier` on tanh(pooler(first
    /// token)), or RoBERTa's `classifier.dense`, tanh, `classifier.out_proj` on the first
    /// token. An error as [`forward`](Self::forward), or when the model has no head.
    pub fn logits(
        &self,
        batch: &BertBatch,
        head_mask: Option<&Tensor>,
        config: &BertConfig,
    ) -> Result<Tensor> {
        match self.schema.head {
            Head::None => Err(PruneError::UnknownWeight {
                weight: "classifier.weight".into(),
                candidates: Vec::new(),
            }),
            Head::Bert { .. } => {
                let pooled = self.pooled(batch, head_mask, config)?;
                self.linear(&pooled, "classifier")
            }
            Head::Roberta { .. } => {
                let first = Self::first_token(&self.forward(batch, head_mask, config)?)?;
                let dense = step(
                    "classifier.dense",
                    self.linear(&first, "classifier.dense")?.f_tanh(),
                )?;
                self.linear(&dense, "classifier.out_proj")
            }
        }
    }
}

/// A tch result as ours, naming the part of the encoder that failed.
fn step<T>(part: &str, r: std::result::Result<T, tch::TchError>) -> Result<T> {
    r.map_err(|e| crate::backend::torch_error(format!("BERT forward, {part}: {e}")))
}

/// One importance step of a sentence-embedding encoder under a pruning session, with no weight
/// update: an in-batch contrastive loss (`a[i]` must match `b[i]` among all of `b`; cosine
/// scores scaled by 20), the `head_mask` gradient handed to the session, the weight gradients
/// through `on_before_optimizer_step`. Returns the loss.
pub fn contrastive_importance_step<V: Borrow<VarStore>>(
    pruning: &mut TorchPruning,
    model: &mut TorchModel<V>,
    bert: &Bert,
    a: &BertBatch,
    b: &BertBatch,
    config: &BertConfig,
) -> Result<f32> {
    let rows = |t: &Tensor| t.size().first().map_or(0, |&r| r.max(0) as usize);
    prune_nlp::bert::check_pair(rows(&a.ids), rows(&b.ids))?;
    pruning.on_step_begin(model)?;
    zero_grads(model.var_store())?;
    let device = a.ids.device();
    let (head_mask, layers, h) = importance_head_mask(&bert.heads(config), device)?;
    let ea = bert.embed(a, Some(&head_mask), config)?;
    let eb = bert.embed(b, Some(&head_mask), config)?;
    let loss = step(
        "contrastive loss",
        Tensor::f_arange(ea.size()[0], (Kind::Int64, device)).and_then(|targets| {
            ea.f_matmul(&eb.f_tr()?)?
                .f_mul_scalar(20.0)?
                .f_log_softmax(-1, Kind::Float)?
                .f_nll_loss(&targets, None::<Tensor>, tch::Reduction::Mean, -100)
        }),
    )?;
    finish_importance_step(pruning, model, &loss, &head_mask, layers, h)
}

/// One importance step of a sequence classifier under a pruning session, with no weight
/// update: the cross-entropy of the head's logits against `labels` (one per row of `batch`,
/// each below the head's label count), the `head_mask` gradient handed to the session, the
/// weight gradients through `on_before_optimizer_step`. Returns the loss.
pub fn classification_importance_step<V: Borrow<VarStore>>(
    pruning: &mut TorchPruning,
    model: &mut TorchModel<V>,
    bert: &Bert,
    batch: &BertBatch,
    labels: &[i64],
    config: &BertConfig,
) -> Result<f32> {
    let classes = bert.labels().ok_or_else(|| PruneError::UnknownWeight {
        weight: "classifier.weight".into(),
        candidates: Vec::new(),
    })?;
    let rows = batch.ids.size().first().copied().unwrap_or(0) as usize;
    prune_nlp::bert::check_labels(labels, rows, classes)?;
    pruning.on_step_begin(model)?;
    zero_grads(model.var_store())?;
    let (head_mask, layers, h) = importance_head_mask(&bert.heads(config), batch.ids.device())?;
    let logits = bert.logits(batch, Some(&head_mask), config)?;
    let loss = step(
        "classification loss",
        Tensor::from_slice(labels)
            .f_to_device(batch.ids.device())
            .and_then(|targets| {
                logits.f_log_softmax(-1, Kind::Float)?.f_nll_loss(
                    &targets,
                    None::<Tensor>,
                    tch::Reduction::Mean,
                    -100,
                )
            }),
    )?;
    finish_importance_step(pruning, model, &loss, &head_mask, layers, h)
}

/// A `[layers, heads]` head mask of ones that records its gradient, for a model whose layers
/// all have the same number of heads ([`prune_nlp::bert::uniform_heads`]).
fn importance_head_mask(heads: &[usize], device: Device) -> Result<(Tensor, usize, usize)> {
    let (layers, h) = prune_nlp::bert::uniform_heads(heads)?;
    let mask = step(
        "head_mask",
        Tensor::f_ones([layers as i64, h as i64], (Kind::Float, device))
            .and_then(|m| m.f_set_requires_grad(true)),
    )?;
    Ok((mask, layers, h))
}

/// The session's side of an importance step after the loss: backward, the `head_mask`
/// gradient recorded, the weight gradients through `on_before_optimizer_step`, no weight
/// update. Returns the loss.
fn finish_importance_step<V: Borrow<VarStore>>(
    pruning: &mut TorchPruning,
    model: &mut TorchModel<V>,
    loss: &Tensor,
    head_mask: &Tensor,
    layers: usize,
    heads: usize,
) -> Result<f32> {
    step("loss, backward", loss.f_backward())?;
    if pruning.reads_input("head_mask") {
        let g = crate::backend::host_f32(&step("head_mask, gradient", head_mask.f_grad())?)?;
        pruning.record_input_gradient("head_mask", &[layers, heads], &g)?;
    }
    pruning.on_before_optimizer_step(model)?;
    pruning.on_step_end(model)?;
    Ok(crate::backend::host_f32(loss)?[0])
}
