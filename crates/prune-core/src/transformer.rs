//! Framework-free facts about BERT-style encoders shared by the backends' implementations.

use crate::safetensors::TensorMap;

/// Sizes a BERT checkpoint does not carry in its weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BertConfig {
    /// Width of one attention head (hidden size / heads of the original model).
    pub head_dim: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
}

impl BertConfig {
    /// sentence-transformers all-MiniLM-L6-v2: heads of 32, eps 1e-12.
    pub fn minilm() -> Self {
        BertConfig {
            head_dim: 32,
            layer_norm_eps: 1e-12,
        }
    }
}

/// Encoder layers in Hugging Face tensors: `encoder.layer.0`, `encoder.layer.1`, ... up to the
/// first missing query weight.
pub fn layer_count(tensors: &TensorMap) -> usize {
    (0..)
        .take_while(|l| {
            tensors.contains_key(&format!("encoder.layer.{l}.attention.self.query.weight"))
        })
        .count()
}
