//! The BERT encoders of burn and torch on a tiny synthetic checkpoint (no download): both load
//! it, agree with each other, refuse a checkpoint with a missing tensor by name, and run with
//! layers of different sizes, as a structurally pruned checkpoint has.

use prune::io::{HostTensor, TensorMap};

const HIDDEN: usize = 8;
const VOCAB: usize = 20;

/// One layer per entry of `layers` = (heads of 4, FFN units).
fn checkpoint(layers: &[(usize, usize)]) -> TensorMap {
    let mut m = TensorMap::new();
    let mut seed = 0u64;
    let mut put = |m: &mut TensorMap, name: String, shape: Vec<usize>, scale: f32, offset: f32| {
        seed += 1;
        let n = shape.iter().product();
        let data = prune_core::testing::conformance::values(seed, n)
            .into_iter()
            .map(|v| v * scale + offset)
            .collect();
        m.insert(name, HostTensor { shape, data });
    };
    put(
        &mut m,
        "embeddings.word_embeddings.weight".into(),
        vec![VOCAB, HIDDEN],
        1.0,
        0.0,
    );
    put(
        &mut m,
        "embeddings.position_embeddings.weight".into(),
        vec![16, HIDDEN],
        0.5,
        0.0,
    );
    put(
        &mut m,
        "embeddings.token_type_embeddings.weight".into(),
        vec![2, HIDDEN],
        0.1,
        0.0,
    );
    put(
        &mut m,
        "embeddings.LayerNorm.weight".into(),
        vec![HIDDEN],
        0.1,
        1.0,
    );
    put(
        &mut m,
        "embeddings.LayerNorm.bias".into(),
        vec![HIDDEN],
        0.1,
        0.0,
    );
    for (l, &(heads, ffn)) in layers.iter().enumerate() {
        let p = format!("encoder.layer.{l}.");
        let inner = heads * 4;
        for w in ["query", "key", "value"] {
            put(
                &mut m,
                format!("{p}attention.self.{w}.weight"),
                vec![inner, HIDDEN],
                0.5,
                0.0,
            );
            put(
                &mut m,
                format!("{p}attention.self.{w}.bias"),
                vec![inner],
                0.1,
                0.0,
            );
        }
        put(
            &mut m,
            format!("{p}attention.output.dense.weight"),
            vec![HIDDEN, inner],
            0.5,
            0.0,
        );
        put(
            &mut m,
            format!("{p}attention.output.dense.bias"),
            vec![HIDDEN],
            0.1,
            0.0,
        );
        put(
            &mut m,
            format!("{p}intermediate.dense.weight"),
            vec![ffn, HIDDEN],
            0.5,
            0.0,
        );
        put(
            &mut m,
            format!("{p}intermediate.dense.bias"),
            vec![ffn],
            0.1,
            0.0,
        );
        put(
            &mut m,
            format!("{p}output.dense.weight"),
            vec![HIDDEN, ffn],
            0.5,
            0.0,
        );
        put(
            &mut m,
            format!("{p}output.dense.bias"),
            vec![HIDDEN],
            0.1,
            0.0,
        );
        for n in ["attention.output.LayerNorm", "output.LayerNorm"] {
            put(&mut m, format!("{p}{n}.weight"), vec![HIDDEN], 0.1, 1.0);
            put(&mut m, format!("{p}{n}.bias"), vec![HIDDEN], 0.1, 0.0);
        }
    }
    m
}

/// Two sentences of 5 and 3 tokens, padded to 5.
const IDS: [i64; 10] = [1, 5, 7, 9, 2, 1, 3, 2, 0, 0];
const MASK: [f32; 10] = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0];

fn config() -> prune::nlp::bert::BertConfig {
    prune::nlp::bert::BertConfig {
        head_dim: 4,
        layer_norm_eps: 1e-12,
        position_offset: 0,
    }
}

#[cfg(feature = "burn")]
fn burn_embed(m: &TensorMap) -> prune::Result<Vec<f32>> {
    use prune::burn::bert::{Bert, BertBatch};
    let d = burn::tensor::Device::flex();
    let bert = Bert::from_tensors(m, &d)?;
    let out = bert.embed(&BertBatch::new(&IDS, &MASK, 2, 5, &d)?, None, &config())?;
    Ok(out.into_data().try_to_vec::<f32>().unwrap())
}

#[cfg(feature = "torch")]
fn torch_embed(m: &TensorMap) -> prune::Result<Vec<f32>> {
    use prune::torch::bert::{Bert, BertBatch};
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let bert = Bert::from_tensors(&vs, m)?;
    let out = tch::no_grad(|| {
        bert.embed(
            &BertBatch::new(&IDS, &MASK, 2, 5, tch::Device::Cpu)?,
            None,
            &config(),
        )
    })?;
    Ok(Vec::<f32>::try_from(out.flatten(0, -1)).unwrap())
}

fn check_embeddings(e: &[f32]) {
    assert_eq!(e.len(), 2 * HIDDEN);
    for row in e.chunks(HIDDEN) {
        let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-5,
            "embeddings are L2-normalised: {norm}"
        );
    }
    assert_ne!(e[..HIDDEN], e[HIDDEN..], "two sentences, two embeddings");
}

fn missing_tensor_is_named(embed: impl Fn(&TensorMap) -> prune::Result<Vec<f32>>) {
    let mut m = checkpoint(&[(2, 6)]);
    m.remove("encoder.layer.0.output.LayerNorm.bias");
    let err = embed(&m).unwrap_err().to_string();
    assert!(
        err.contains("encoder.layer.0.output.LayerNorm.bias"),
        "{err}"
    );
}

/// A batch of 5 tokens against a table of 4 positions, or a token id past the vocabulary, is an
/// error, not an out-of-range read.
fn out_of_range_inputs_are_refused(embed: impl Fn(&TensorMap) -> prune::Result<Vec<f32>>) {
    let mut m = checkpoint(&[(2, 6)]);
    let table = m.get_mut("embeddings.position_embeddings.weight").unwrap();
    table.shape = vec![4, HIDDEN];
    table.data.truncate(4 * HIDDEN);
    let err = embed(&m).unwrap_err().to_string();
    assert!(
        err.contains("embeddings.position_embeddings.weight") && err.contains("5 tokens"),
        "{err}"
    );
    // A vocabulary of 8 rows does not hold the batch's token id 9.
    let mut m = checkpoint(&[(2, 6)]);
    let table = m.get_mut("embeddings.word_embeddings.weight").unwrap();
    table.shape = vec![8, HIDDEN];
    table.data.truncate(8 * HIDDEN);
    let err = embed(&m).unwrap_err().to_string();
    assert!(
        err.contains("embeddings.word_embeddings.weight") && err.contains("outside the vocabulary"),
        "{err}"
    );
}

#[cfg(feature = "burn")]
#[test]
fn burn_loads_layers_of_different_sizes_and_names_a_missing_tensor() {
    check_embeddings(&burn_embed(&checkpoint(&[(2, 6), (1, 3)])).unwrap());
    missing_tensor_is_named(burn_embed);
    out_of_range_inputs_are_refused(burn_embed);
}

#[cfg(feature = "torch")]
#[test]
fn torch_loads_layers_of_different_sizes_and_names_a_missing_tensor() {
    check_embeddings(&torch_embed(&checkpoint(&[(2, 6), (1, 3)])).unwrap());
    missing_tensor_is_named(torch_embed);
    out_of_range_inputs_are_refused(torch_embed);
}

#[cfg(all(feature = "burn", feature = "torch"))]
#[test]
fn burn_and_torch_encoders_agree() {
    for layers in [vec![(2, 6)], vec![(2, 6), (1, 3)]] {
        let m = checkpoint(&layers);
        let (b, t) = (burn_embed(&m).unwrap(), torch_embed(&m).unwrap());
        for (x, y) in b.iter().zip(&t) {
            assert!((x - y).abs() < 1e-5, "{layers:?}: {x} vs {y}");
        }
    }
}
