//! The BERT-family recogniser: Hugging Face encoder names, any prefix.

use crate::model::{Coupling, CouplingGroup, WeightInfo};

/// Coupling groups of a BERT-style encoder (Hugging Face names, any prefix): per layer, the
/// heads of query / key / value (weights and biases) with the input columns of
/// `attention.output.dense.weight`, and the rows of `intermediate.dense` with the input columns
/// of `output.dense.weight`. Only weights present in the model are listed.
pub fn bert_coupling(weights: &[WeightInfo]) -> Coupling {
    const QUERY: &str = "attention.self.query.weight";
    const INTERMEDIATE: &str = "intermediate.dense.weight";
    let present = |n: &str| weights.iter().any(|w| w.name == n);
    let mut groups = Vec::new();
    for w in weights {
        let (layer, members): (&str, &[(&str, usize)]) =
            if let Some(layer) = w.name.strip_suffix(QUERY) {
                (
                    layer,
                    &[
                        ("attention.self.query.weight", 0),
                        ("attention.self.query.bias", 0),
                        ("attention.self.key.weight", 0),
                        ("attention.self.key.bias", 0),
                        ("attention.self.value.weight", 0),
                        ("attention.self.value.bias", 0),
                        ("attention.output.dense.weight", 1),
                    ],
                )
            } else if let Some(layer) = w.name.strip_suffix(INTERMEDIATE) {
                (
                    layer,
                    &[
                        ("intermediate.dense.weight", 0),
                        ("intermediate.dense.bias", 0),
                        ("output.dense.weight", 1),
                    ],
                )
            } else {
                continue;
            };
        let members: Vec<(String, usize)> = members
            .iter()
            .map(|(suffix, axis)| (format!("{layer}{suffix}"), *axis))
            .filter(|(name, _)| present(name))
            .collect();
        groups.push(CouplingGroup::of(members));
    }
    Coupling {
        groups,
        fixed: Vec::new(),
    }
}
