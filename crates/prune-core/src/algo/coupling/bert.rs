//! The BERT-family recogniser: Hugging Face encoder names of BERT and RoBERTa
//! (`encoder.layer.N.attention.self.query`, ...) and DistilBERT (`transformer.layer.N.attention.q_lin`,
//! ...), under any prefix.

use crate::model::{Coupling, CouplingGroup, FixedSlice, Slice, WeightInfo};

/// The per-layer names of one naming scheme.
struct Naming {
    /// What comes between the prefix and the layer number: `encoder.layer.`.
    layers: &'static str,
    /// Query, key, value projections (their weights and biases lose whole heads).
    qkv: [&'static str; 3],
    /// The attention output projection (its input columns are the heads).
    attention_out: &'static str,
    /// The norm after attention.
    attention_norm: &'static str,
    /// The FFN's first projection (its rows are the units).
    ffn_in: &'static str,
    /// The FFN's second projection (its input columns are the units).
    ffn_out: &'static str,
    /// The norm after the FFN.
    ffn_norm: &'static str,
}

/// BERT and RoBERTa (and their relatives: XLM-RoBERTa, CamemBERT, ELECTRA's encoder, ...).
const BERT: Naming = Naming {
    layers: "encoder.layer.",
    qkv: [
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
    ],
    attention_out: "attention.output.dense",
    attention_norm: "attention.output.LayerNorm",
    ffn_in: "intermediate.dense",
    ffn_out: "output.dense",
    ffn_norm: "output.LayerNorm",
};

/// DistilBERT.
const DISTILBERT: Naming = Naming {
    layers: "transformer.layer.",
    qkv: ["attention.q_lin", "attention.k_lin", "attention.v_lin"],
    attention_out: "attention.out_lin",
    attention_norm: "sa_layer_norm",
    ffn_in: "ffn.lin1",
    ffn_out: "ffn.lin2",
    ffn_norm: "output_layer_norm",
};

/// Coupling groups of a BERT-family encoder (Hugging Face names of BERT, RoBERTa or
/// DistilBERT, any prefix). Per layer: the heads of query / key / value (weights and biases)
/// with the input columns of the attention output, and the FFN units (rows of its first
/// projection) with the input columns of its second. Per encoder: the hidden dimension
/// ([`hidden_group`]). Only weights present in the model are listed in the per-layer groups.
pub fn bert_coupling(weights: &[WeightInfo]) -> Coupling {
    let present = |n: &str| weights.iter().any(|w| w.name == n);
    let mut coupling = Coupling::default();
    for naming in [&BERT, &DISTILBERT] {
        let query = format!("{}.weight", naming.qkv[0]);
        let ffn_in = format!("{}.weight", naming.ffn_in);
        for w in weights {
            let mut members: Vec<(String, usize)> = Vec::new();
            if let Some(layer) = w.name.strip_suffix(&query) {
                for p in naming.qkv {
                    members.push((format!("{layer}{p}.weight"), 0));
                    members.push((format!("{layer}{p}.bias"), 0));
                }
                members.push((format!("{layer}{}.weight", naming.attention_out), 1));
            } else if let Some(layer) = w.name.strip_suffix(&ffn_in) {
                members.push((format!("{layer}{}.weight", naming.ffn_in), 0));
                members.push((format!("{layer}{}.bias", naming.ffn_in), 0));
                members.push((format!("{layer}{}.weight", naming.ffn_out), 1));
            } else {
                continue;
            }
            members.retain(|(name, _)| present(name));
            coupling.groups.push(CouplingGroup::of(members));
        }
    }
    for w in weights {
        let Some(prefix) = w.name.strip_suffix("embeddings.word_embeddings.weight") else {
            continue;
        };
        match hidden_group(prefix, weights) {
            Ok(Some(group)) => coupling.groups.push(group),
            Ok(None) => {}
            Err((members, missing)) => {
                let reason = format!(
                    "it is the hidden size, which runs through the whole encoder, and the \
                     coupled group is incomplete: `{missing}` is missing"
                );
                coupling
                    .fixed
                    .extend(members.into_iter().map(|m| FixedSlice {
                        weight: m.weight,
                        axis: m.axis,
                        reason: reason.clone(),
                    }));
            }
        }
    }
    coupling
}

/// The hidden dimension of the encoder whose names start with `prefix`: the word, position and
/// token-type embedding columns and the embedding LayerNorm; per layer the input columns of
/// query, key, value and the FFN's first projection, the output rows (and biases) of the
/// attention output and the FFN's second projection, and both LayerNorms; the pooler (rows and
/// columns) when present; and a sequence-classification head's input (BERT's `classifier`,
/// RoBERTa's `classifier.dense` and `classifier.out_proj`, DistilBERT's `pre_classifier` and
/// `classifier`). `None` when the model has no layers under `prefix`; `Err` with the members
/// found and the first missing tensor when a layer lacks one.
pub fn hidden_group(
    prefix: &str,
    weights: &[WeightInfo],
) -> Result<Option<CouplingGroup>, (Vec<Slice>, String)> {
    let shape = |n: &str| weights.iter().find(|w| w.name == n).map(|w| &w.shape);
    let naming = [&BERT, &DISTILBERT]
        .into_iter()
        .find(|n| shape(&format!("{prefix}{}0.{}.weight", n.layers, n.qkv[0])).is_some());
    let Some(naming) = naming else {
        return Ok(None);
    };
    let mut members: Vec<Slice> = Vec::new();
    let mut missing: Option<String> = None;
    let mut want = |name: String, axis: usize, required: bool, members: &mut Vec<Slice>| {
        if shape(&name).is_some() {
            members.push(Slice::new(name, axis));
        } else if required && missing.is_none() {
            missing = Some(name);
        }
    };
    let e = |s: &str| format!("{prefix}embeddings.{s}");
    want(e("word_embeddings.weight"), 1, true, &mut members);
    want(e("position_embeddings.weight"), 1, true, &mut members);
    want(e("token_type_embeddings.weight"), 1, false, &mut members);
    for p in ["weight", "bias"] {
        want(e(&format!("LayerNorm.{p}")), 0, true, &mut members);
    }
    let mut layer = 0;
    while shape(&format!(
        "{prefix}{}{layer}.{}.weight",
        naming.layers, naming.qkv[0]
    ))
    .is_some()
    {
        let n = |s: &str| format!("{prefix}{}{layer}.{s}", naming.layers);
        for p in naming.qkv {
            want(n(&format!("{p}.weight")), 1, true, &mut members);
        }
        want(
            n(&format!("{}.weight", naming.ffn_in)),
            1,
            true,
            &mut members,
        );
        for out in [naming.attention_out, naming.ffn_out] {
            want(n(&format!("{out}.weight")), 0, true, &mut members);
            want(n(&format!("{out}.bias")), 0, false, &mut members);
        }
        for norm in [naming.attention_norm, naming.ffn_norm] {
            for p in ["weight", "bias"] {
                want(n(&format!("{norm}.{p}")), 0, true, &mut members);
            }
        }
        layer += 1;
    }
    // Square layers on the hidden size: both axes follow it.
    for square in [
        format!("{prefix}pooler.dense"),
        "classifier.dense".to_string(),
        "pre_classifier".to_string(),
    ] {
        if shape(&format!("{square}.weight")).is_some() {
            want(format!("{square}.weight"), 0, true, &mut members);
            want(format!("{square}.weight"), 1, true, &mut members);
            want(format!("{square}.bias"), 0, false, &mut members);
        }
    }
    // The head's input columns.
    for head in ["classifier.out_proj.weight", "classifier.weight"] {
        if shape(head).is_some_and(|s| s.len() == 2) {
            want(head.to_string(), 1, true, &mut members);
            break;
        }
    }
    match missing {
        Some(name) => Err((members, name)),
        None => Ok(Some(CouplingGroup { members })),
    }
}
