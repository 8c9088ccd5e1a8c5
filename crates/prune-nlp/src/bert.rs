//! BERT-style encoders in Hugging Face names: the sizes a checkpoint does not carry, and the one
//! checkpoint schema every backend's encoder is built from.

use prune_core::{PruneError, Result};
use prune_io::TensorMap;

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

/// Encoder layers in Hugging Face tensors: `encoder.layer.0`, `encoder.layer.1`, ... up to the
/// first missing query weight.
pub fn layer_count(tensors: &TensorMap) -> usize {
    (0..)
        .take_while(|l| {
            tensors.contains_key(&format!("encoder.layer.{l}.attention.self.query.weight"))
        })
        .count()
}

/// Checks a checkpoint against the schema: at least one layer, every tensor of every layer and
/// of the embeddings present with its rank. Returns the number of layers; fails naming the
/// first missing tensor or wrong rank.
pub fn check_checkpoint(tensors: &TensorMap) -> Result<usize> {
    let layers = layer_count(tensors);
    if layers == 0 {
        return Err(PruneError::UnknownWeight {
            weight: "encoder.layer.0.attention.self.query.weight".into(),
            candidates: tensors.keys().take(3).cloned().collect(),
        });
    }
    let per_layer = (0..layers).flat_map(|l| {
        LAYER_TENSORS
            .iter()
            .map(move |(suffix, rank)| (format!("encoder.layer.{l}.{suffix}"), *rank))
    });
    let embeddings = EMBEDDING_TENSORS.iter().map(|(n, r)| (n.to_string(), *r));
    for (name, rank) in embeddings.chain(per_layer) {
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
    Ok(layers)
}

/// Checks that `ids` and `mask` each hold `rows` x `seq` values, a padded batch in row-major order.
pub fn check_batch(ids: usize, mask: usize, rows: usize, seq: usize) -> Result<()> {
    for (what, len) in [("token ids", ids), ("attention mask", mask)] {
        if len != rows * seq {
            return Err(PruneError::Shape {
                weight: "batch".into(),
                shape: vec![rows, seq],
                reason: format!("{len} {what} for a batch of {rows} x {seq}"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prune_io::HostTensor;

    fn checkpoint(layers: usize) -> TensorMap {
        let mut m = TensorMap::new();
        let t = |rank: usize| HostTensor {
            shape: vec![2; rank],
            data: vec![0.0; 1 << rank],
        };
        for (n, r) in EMBEDDING_TENSORS {
            m.insert(n.into(), t(r));
        }
        for l in 0..layers {
            for (s, r) in LAYER_TENSORS {
                m.insert(format!("encoder.layer.{l}.{s}"), t(r));
            }
        }
        m
    }

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
}
