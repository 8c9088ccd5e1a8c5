//! A BERT encoder in burn with Hugging Face parameter names (`encoder.layer.0.attention.self.
//! query.weight`, ...), a `head_mask` input, and every size read from its weights: after a
//! structured pruner removes heads or FFN units, the same module runs the smaller model.

use crate::{BurnModel, BurnPruning};
use burn::module::{Module, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::Linear;
use burn::optim::GradientsParams;
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use prune_core::{PruneError, Result};
use prune_io::{HostTensor, TensorMap};
use prune_nlp::bert::check_checkpoint;
pub use prune_nlp::bert::BertConfig;

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

/// A BERT encoder.
#[derive(Module, Debug)]
pub struct Bert {
    /// Embeddings.
    pub embeddings: Embeddings,
    /// Encoder layers.
    pub encoder: Encoder,
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
        self.attention.self_.query.weight.dims()[1] / head_dim
    }

    /// FFN units of this layer.
    pub fn ffn(&self) -> usize {
        self.intermediate.dense.weight.dims()[1]
    }
}

impl Bert {
    /// Token embeddings of a batch, `[batch, seq, hidden]`. `head_mask`, if given, is
    /// `[layers, heads]` and multiplies each head's attention probabilities (every layer must
    /// then have the same number of heads). A batch longer than the position table, or a
    /// head mask of another layer count, is an error.
    pub fn forward(
        &self,
        batch: &BertBatch,
        head_mask: Option<Tensor<2>>,
        config: &BertConfig,
    ) -> Result<Tensor<3>> {
        let [b, s] = batch.ids.dims();
        let e = &self.embeddings;
        let hidden = e.word_embeddings.weight.dims()[1];
        let positions = e.position_embeddings.weight.dims()[0];
        if s > positions {
            return Err(PruneError::Shape {
                weight: "embeddings.position_embeddings.weight".into(),
                shape: vec![positions, hidden],
                reason: format!("a batch of {s} tokens is longer than its {positions} positions"),
            });
        }
        let vocab = e.word_embeddings.weight.dims()[0];
        let top = batch.ids.clone().max().into_scalar::<i64>();
        if top >= vocab as i64 || batch.ids.clone().min().into_scalar::<i64>() < 0 {
            return Err(PruneError::Shape {
                weight: "embeddings.word_embeddings.weight".into(),
                shape: vec![vocab, hidden],
                reason: "a token id is outside the vocabulary".into(),
            });
        }
        if let Some(m) = &head_mask {
            let layers = self.encoder.layer.len();
            if m.dims()[0] != layers {
                return Err(PruneError::Shape {
                    weight: "head_mask".into(),
                    shape: m.dims().to_vec(),
                    reason: format!("the encoder has {layers} layers"),
                });
            }
        }
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
            .narrow(0, 0, s)
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

    /// Builds the encoder from Hugging Face tensors (canonical `[out, in]` Linear weights), e.g.
    /// from [`prune_io::read_f32`]. Fails naming the first missing tensor or
    /// wrong rank ([`check_checkpoint`]).
    pub fn from_tensors(tensors: &TensorMap, device: &Device) -> Result<Bert> {
        let layers = check_checkpoint(tensors)?;
        let get = |name: &str| -> Result<&HostTensor> {
            tensors.get(name).ok_or_else(|| PruneError::UnknownWeight {
                weight: name.into(),
                candidates: Vec::new(),
            })
        };
        let param2 = |name: &str| -> Result<Param<Tensor<2>>> {
            let t = get(name)?;
            Ok(Param::from_tensor(Tensor::from_data(
                TensorData::new(t.data.clone(), [t.shape[0], t.shape[1]]),
                device,
            )))
        };
        let param1 = |name: &str| -> Result<Param<Tensor<1>>> {
            let t = get(name)?;
            Ok(Param::from_tensor(Tensor::from_data(
                TensorData::new(t.data.clone(), [t.shape[0]]),
                device,
            )))
        };
        let linear = |stem: &str| -> Result<Linear> {
            let t = get(&format!("{stem}.weight"))?;
            let stored = prune_core::model::layout::transpose(&t.data, t.shape[0], t.shape[1]);
            Ok(Linear {
                weight: Param::from_tensor(Tensor::from_data(
                    TensorData::new(stored, [t.shape[1], t.shape[0]]),
                    device,
                )),
                bias: Some(param1(&format!("{stem}.bias"))?),
            })
        };
        let norm = |stem: &str| -> Result<Norm> {
            Ok(Norm {
                weight: param1(&format!("{stem}.weight"))?,
                bias: param1(&format!("{stem}.bias"))?,
            })
        };
        let mut layer = Vec::with_capacity(layers);
        for l in 0..layers {
            let p = format!("encoder.layer.{l}");
            layer.push(Layer {
                attention: Attention {
                    self_: SelfAttention {
                        query: linear(&format!("{p}.attention.self.query"))?,
                        key: linear(&format!("{p}.attention.self.key"))?,
                        value: linear(&format!("{p}.attention.self.value"))?,
                    },
                    output: Output {
                        dense: linear(&format!("{p}.attention.output.dense"))?,
                        LayerNorm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                    },
                },
                intermediate: Intermediate {
                    dense: linear(&format!("{p}.intermediate.dense"))?,
                },
                output: Output {
                    dense: linear(&format!("{p}.output.dense"))?,
                    LayerNorm: norm(&format!("{p}.output.LayerNorm"))?,
                },
            });
        }
        Ok(Bert {
            embeddings: Embeddings {
                word_embeddings: Table {
                    weight: param2("embeddings.word_embeddings.weight")?,
                },
                position_embeddings: Table {
                    weight: param2("embeddings.position_embeddings.weight")?,
                },
                token_type_embeddings: Table {
                    weight: param2("embeddings.token_type_embeddings.weight")?,
                },
                LayerNorm: norm("embeddings.LayerNorm")?,
            },
            encoder: Encoder { layer },
        })
    }
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
    pruning.on_step_begin(model)?;
    let device = a.ids.device();
    let heads = model.module().heads(config);
    let (layers, h) = (heads.len(), heads.first().copied().unwrap_or(0));
    let head_mask = Tensor::<2>::ones([layers, h], &device).require_grad();
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
    let value = crate::backend::host_f32(&loss.clone().inner().reshape([1]))?[0];
    let grads = loss.backward();
    let g = head_mask
        .grad(&grads)
        .ok_or_else(|| crate::backend::backend_error("head_mask has no gradient"))?;
    let g = crate::backend::host_f32(&g.reshape([layers * h]))?;
    pruning.record_input_gradient("head_mask", &[layers, h], &g)?;
    model.set_grads(GradientsParams::from_grads(grads, model.module()));
    pruning.on_before_optimizer_step(model)?;
    model.take_grads();
    pruning.on_step_end(model)?;
    Ok(value)
}
