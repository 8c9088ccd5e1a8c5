//! A BERT encoder over tch with Hugging Face parameter names in a [`VarStore`], a `head_mask`
//! input, and every size read from its weights: after a structured pruner shrinks the variables
//! in place, the same value runs the smaller model.

use crate::{TorchModel, TorchPruning};
use prune_core::{PruneError, Result};
use prune_io::TensorMap;
use prune_nlp::bert::check_checkpoint;
pub use prune_nlp::bert::BertConfig;
use std::borrow::Borrow;
use tch::nn::{Path, VarStore};
use tch::{Device, Kind, Tensor};

/// A BERT encoder whose parameters live in a [`VarStore`] (wrap that store in
/// [`TorchModel`](crate::TorchModel) to prune it).
pub struct Bert {
    vars: std::collections::HashMap<String, Tensor>,
    layers: usize,
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
        let put = |t: Tensor| {
            step(
                "batch",
                t.f_reshape(shape).and_then(|t| t.f_to_device(device)),
            )
        };
        Ok(BertBatch {
            ids: put(Tensor::from_slice(ids))?,
            mask: put(Tensor::from_slice(mask))?,
        })
    }
}

/// The variable under a dotted name: `a.b.c` is `c` under `root / "a" / "b"`.
fn create(root: &Path, name: &str, value: &Tensor) -> Tensor {
    let mut segments: Vec<&str> = name.split('.').collect();
    let last = segments.pop().expect("a name has a segment");
    let mut p = root.clone();
    for s in segments {
        p = &p / s;
    }
    p.var_copy(last, value)
}

impl Bert {
    /// Creates the encoder's variables in `vs` from Hugging Face tensors (e.g. from
    /// [`prune_io::read_f32`]); every `encoder.layer.N.*` and `embeddings.*`
    /// tensor of rank 1 or 2 becomes a trainable variable with the same name.
    pub fn from_tensors(vs: &VarStore, tensors: &TensorMap) -> Result<Bert> {
        let layers = check_checkpoint(tensors)?;
        let root = vs.root();
        let mut vars = std::collections::HashMap::new();
        for (name, t) in tensors {
            let wanted = name.starts_with("embeddings.")
                || (name.starts_with("encoder.layer.")
                    && (t.shape.len() == 1 || t.shape.len() == 2));
            if !wanted {
                continue;
            }
            let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
            let value = Tensor::from_slice(&t.data)
                .reshape(&shape)
                .to_device(vs.device());
            vars.insert(name.clone(), create(&root, name, &value));
        }
        let bert = Bert { vars, layers };
        Ok(bert)
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
        (0..self.layers)
            .map(|l| {
                self.v(&format!("encoder.layer.{l}.attention.self.query.weight"))
                    .size()[0] as usize
                    / config.head_dim
            })
            .collect()
    }

    /// FFN units per layer.
    pub fn ffn(&self) -> Vec<usize> {
        (0..self.layers)
            .map(|l| {
                self.v(&format!("encoder.layer.{l}.intermediate.dense.weight"))
                    .size()[0] as usize
            })
            .collect()
    }

    /// Token embeddings `[batch, seq, hidden]`. `head_mask`, if given, is `[layers, heads]` and
    /// multiplies each head's attention probabilities. A batch longer than the position table,
    /// or a head mask of another layer count, is an error.
    pub fn forward(
        &self,
        batch: &BertBatch,
        head_mask: Option<&Tensor>,
        config: &BertConfig,
    ) -> Result<Tensor> {
        let eps = config.layer_norm_eps;
        let size = batch.ids.size();
        if size.len() != 2 || batch.mask.size() != size {
            return Err(PruneError::Shape {
                weight: "batch".into(),
                shape: size.iter().map(|&d| d as usize).collect(),
                reason: format!(
                    "token ids must be [batch, seq] with a mask of the same shape, the mask is {:?}",
                    batch.mask.size()
                ),
            });
        }
        let (b, s) = (size[0], size[1]);
        let table = self.v("embeddings.position_embeddings.weight").size();
        if s > table[0] {
            return Err(PruneError::Shape {
                weight: "embeddings.position_embeddings.weight".into(),
                shape: table.iter().map(|&d| d as usize).collect(),
                reason: format!(
                    "a batch of {s} tokens is longer than its {} positions",
                    table[0]
                ),
            });
        }
        if let Some(m) = head_mask {
            if m.size().first() != Some(&(self.layers as i64)) {
                return Err(PruneError::Shape {
                    weight: "head_mask".into(),
                    shape: m.size().iter().map(|&d| d as usize).collect(),
                    reason: format!("the encoder has {} layers", self.layers),
                });
            }
        }
        let vocab = self.v("embeddings.word_embeddings.weight");
        let words = vocab
            .f_index_select(0, &step("token ids", batch.ids.f_reshape([b * s]))?)
            .map_err(|e| PruneError::Shape {
                weight: "embeddings.word_embeddings.weight".into(),
                shape: vocab.size().iter().map(|&d| d as usize).collect(),
                reason: format!("a token id is outside the vocabulary: {e}"),
            })?;
        let hidden = words.size()[1];
        let words = step("embeddings", words.f_reshape([b, s, hidden]))?;
        let positions = step(
            "embeddings.position_embeddings",
            self.v("embeddings.position_embeddings.weight")
                .f_narrow(0, 0, s)
                .and_then(|t| t.f_unsqueeze(0)),
        )?;
        let types = step(
            "embeddings.token_type_embeddings",
            self.v("embeddings.token_type_embeddings.weight")
                .f_narrow(0, 0, 1)
                .and_then(|t| t.f_unsqueeze(0)),
        )?;
        let summed = step(
            "embeddings",
            words.f_add(&positions).and_then(|t| t.f_add(&types)),
        )?;
        let mut x = self.norm(&summed, "embeddings.LayerNorm", eps)?;
        let mask_bias = step(
            "attention mask",
            batch
                .mask
                .f_sub_scalar(1.0)
                .and_then(|t| t.f_mul_scalar(1e9))
                .and_then(|t| t.f_reshape([b, 1, 1, s])),
        )?;
        let dh = config.head_dim as i64;
        for l in 0..self.layers {
            let p = format!("encoder.layer.{l}");
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
    pruning.on_step_begin(model)?;
    for (_, mut v) in model.var_store().variables() {
        v.zero_grad();
    }
    let heads = bert.heads(config);
    let (layers, h) = (heads.len(), heads.first().copied().unwrap_or(0));
    let device = a.ids.device();
    let head_mask = step(
        "head_mask",
        Tensor::f_ones([layers as i64, h as i64], (Kind::Float, device)),
    )?
    .set_requires_grad(true);
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
    step("contrastive loss, backward", loss.f_backward())?;
    let g = crate::backend::host_f32(&head_mask.grad())?;
    pruning.record_input_gradient("head_mask", &[layers, h], &g)?;
    pruning.on_before_optimizer_step(model)?;
    pruning.on_step_end(model)?;
    Ok(crate::backend::host_f32(&loss)?[0])
}
