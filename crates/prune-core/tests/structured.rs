//! Structured gradient_sensitivity on the reference backend: importance by hand, shrinking with
//! coupled weights, and the errors a user meets.

use prune_core::testing::reference::{RefModel, RefTensor};
use prune_core::{Layout, Model, Pruning, Reference};

const HIDDEN: usize = 4;
const FFN: usize = 6;

/// One BERT layer with hidden 4 (2 heads of 2) and FFN 6; value `k` at canonical index `k`
/// plus an offset per weight, so every slice is recognisable.
fn bert_layer(layout: Layout) -> RefModel {
    let mut m = RefModel::default();
    let p = "encoder.layer.0.";
    let shapes: [(&str, Vec<usize>); 12] = [
        ("attention.self.query.weight", vec![HIDDEN, HIDDEN]),
        ("attention.self.query.bias", vec![HIDDEN]),
        ("attention.self.key.weight", vec![HIDDEN, HIDDEN]),
        ("attention.self.key.bias", vec![HIDDEN]),
        ("attention.self.value.weight", vec![HIDDEN, HIDDEN]),
        ("attention.self.value.bias", vec![HIDDEN]),
        ("attention.output.dense.weight", vec![HIDDEN, HIDDEN]),
        ("attention.output.dense.bias", vec![HIDDEN]),
        ("intermediate.dense.weight", vec![FFN, HIDDEN]),
        ("intermediate.dense.bias", vec![FFN]),
        ("output.dense.weight", vec![HIDDEN, FFN]),
        ("output.dense.bias", vec![HIDDEN]),
    ];
    for (i, (name, shape)) in shapes.iter().enumerate() {
        let n: usize = shape.iter().product();
        let values = (0..n).map(|k| (100 * i + k) as f32).collect();
        let layout = if shape.len() == 2 {
            layout
        } else {
            Layout::Canonical
        };
        m.push(&format!("{p}{name}"), shape, values, layout);
    }
    m
}

const CONFIG: &str = "
pruning:
  approach:
    weight_compression:
      start_epoch: 0
      end_epoch: 0
      pruners:
        - !Pruner
            prune_type: gradient_sensitivity
            names: ['encoder.layer.*.attention.self.query.weight',
                    'encoder.layer.*.attention.self.key.weight',
                    'encoder.layer.*.attention.self.value.weight']
            parameters: {target: 1, stride: 2, normalize: True, transpose: False,
                         importance_inputs: ['head_mask'], importance_metric: abs_gradient}
        - !Pruner
            prune_type: gradient_sensitivity
            names: ['encoder.layer.*.intermediate.dense.weight']
            parameters: {target: 4, stride: 1, normalize: False,
                         importance_inputs: ['encoder.layer.*.intermediate.dense.weight'],
                         importance_metric: weighted_gradient}
";

fn canonical(m: &RefModel, name: &str) -> (Vec<usize>, Vec<f32>) {
    let info = m
        .weights()
        .unwrap()
        .into_iter()
        .find(|w| w.name == name)
        .unwrap();
    let t = m.weight(name).unwrap();
    (
        info.shape.clone(),
        prune_core::model::layout::to_canonical(t.data, info.layout, &info.shape),
    )
}

fn set_grad(m: &mut RefModel, name: &str, canonical_grad: Vec<f32>) {
    let info = m
        .weights()
        .unwrap()
        .into_iter()
        .find(|w| w.name == name)
        .unwrap();
    let stored = prune_core::model::layout::to_stored(canonical_grad, info.layout, &info.shape);
    let shape = info.layout.stored_shape(&info.shape);
    m.set_gradients(vec![(
        m.weight_id(name).unwrap(),
        RefTensor {
            data: stored,
            shape,
        },
    )])
    .unwrap();
}

/// One step of importance: a head_mask gradient and a constant FFN weight gradient.
fn importance_step(p: &mut Pruning<Reference>, m: &mut RefModel, head_grad: [f32; 2]) {
    p.record_input_gradient("head_mask", &[1, 2], &head_grad)
        .unwrap();
    set_grad(
        m,
        "encoder.layer.0.intermediate.dense.weight",
        vec![0.5; FFN * HIDDEN],
    );
    p.on_before_optimizer_step(m).unwrap();
}

/// A fresh folder for one test and the state file in it.
fn state_file(test: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("prune-structured-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.json");
    (dir, path)
}

/// Rows of a canonical [r, c] matrix.
fn rows(data: &[f32], c: usize, keep: &[usize]) -> Vec<f32> {
    keep.iter()
        .flat_map(|&r| data[r * c..(r + 1) * c].to_vec())
        .collect()
}

/// Columns of a canonical [r, c] matrix.
fn cols(data: &[f32], r: usize, c: usize, keep: &[usize]) -> Vec<f32> {
    (0..r)
        .flat_map(|i| keep.iter().map(move |&j| data[i * c + j]))
        .collect()
}

fn run(layout: Layout) {
    let mut m = bert_layer(layout);
    type Named = (String, (Vec<usize>, Vec<f32>));
    let before: Vec<Named> = m
        .weights()
        .unwrap()
        .into_iter()
        .map(|w| (w.name.clone(), canonical(&m, &w.name)))
        .collect();
    let mut p: Pruning<Reference> = Pruning::from_yaml(CONFIG).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    // Two steps. Head importance: |0.1| + |0.2| = 0.3 for head 0, |-0.5| + |0.1| = 0.6 for head 1.
    // FFN row importance, weighted_gradient: |sum_j g[r, j] * w[r, j]| per step, summed.
    let head_grads = [[0.1f32, -0.5], [0.2, 0.1]];
    // Gradients of intermediate.dense.weight [6, 4]: row r gets value sign_r * (step + 1) on
    // column 0 only, so the row's step importance is |g * w[r, 0]| = (step + 1) * w[r, 0],
    // with w[r, 0] = 800 + 4r (weight index 8).
    let signs = [1.0f32, -1.0, 0.0, 1.0, 0.0, -1.0];
    for (step, hg) in head_grads.iter().enumerate() {
        p.on_step_begin(&mut m).unwrap();
        p.record_input_gradient("head_mask", &[1, 2], hg).unwrap();
        let mut g = vec![0.0f32; FFN * HIDDEN];
        for r in 0..FFN {
            g[r * HIDDEN] = signs[r] * (step as f32 + 1.0);
        }
        set_grad(&mut m, "encoder.layer.0.intermediate.dense.weight", g);
        p.on_before_optimizer_step(&mut m).unwrap();
        p.on_step_end(&mut m).unwrap();
    }
    let outcome = p.structured_outcome();
    assert_eq!(outcome.len(), 2);
    let heads = &outcome[0];
    let norm = (0.3f64 * 0.3 + 0.6 * 0.6).sqrt();
    let expect = [0.3 / norm, 0.6 / norm];
    for (got, want) in heads.importance.iter().zip(expect) {
        assert!(
            (got - want).abs() < 1e-6,
            "head importance {:?}",
            heads.importance
        );
    }
    let ffn = &outcome[1];
    for (r, sign) in signs.iter().enumerate() {
        let want = 3.0 * (800.0 + 4.0 * r as f64) * f64::from(sign.abs());
        assert!(
            (ffn.importance[r] - want).abs() < 1e-3,
            "row {r}: {:?}",
            ffn.importance
        );
    }
    assert!(heads.kept.is_none(), "shrunk before on_epoch_end");

    p.on_epoch_end(&mut m).unwrap();
    let outcome = p.structured_outcome();
    assert_eq!(outcome[0].kept.as_deref(), Some(&[1usize][..]));
    // Rows 0, 1, 3, 5 have importance > 0; rows 2 and 4 (zero) go.
    assert_eq!(outcome[1].kept.as_deref(), Some(&[0usize, 1, 3, 5][..]));

    let old = |n: &str| {
        before
            .iter()
            .find(|(name, _)| name == &format!("encoder.layer.0.{n}"))
            .unwrap()
            .1
             .1
            .clone()
    };
    let now = |n: &str| canonical(&m, &format!("encoder.layer.0.{n}"));
    let head_rows = [2usize, 3];
    for w in ["query", "key", "value"] {
        let (shape, data) = now(&format!("attention.self.{w}.weight"));
        assert_eq!(shape, vec![2, HIDDEN], "{w}");
        assert_eq!(
            data,
            rows(
                &old(&format!("attention.self.{w}.weight")),
                HIDDEN,
                &head_rows
            )
        );
        let (bshape, bias) = now(&format!("attention.self.{w}.bias"));
        assert_eq!(bshape, vec![2]);
        assert_eq!(
            bias,
            rows(&old(&format!("attention.self.{w}.bias")), 1, &head_rows)
        );
    }
    let (oshape, o) = now("attention.output.dense.weight");
    assert_eq!(
        oshape,
        vec![HIDDEN, 2],
        "attention output follows the heads"
    );
    assert_eq!(
        o,
        cols(
            &old("attention.output.dense.weight"),
            HIDDEN,
            HIDDEN,
            &head_rows
        )
    );
    assert_eq!(
        now("attention.output.dense.bias").1,
        old("attention.output.dense.bias")
    );
    let ffn_rows = [0usize, 1, 3, 5];
    let (ishape, i) = now("intermediate.dense.weight");
    assert_eq!(ishape, vec![4, HIDDEN]);
    assert_eq!(
        i,
        rows(&old("intermediate.dense.weight"), HIDDEN, &ffn_rows)
    );
    assert_eq!(
        now("intermediate.dense.bias").1,
        rows(&old("intermediate.dense.bias"), 1, &ffn_rows)
    );
    let (fshape, f) = now("output.dense.weight");
    assert_eq!(fshape, vec![HIDDEN, 4], "FFN output follows the FFN rows");
    assert_eq!(f, cols(&old("output.dense.weight"), HIDDEN, FFN, &ffn_rows));
    p.on_train_end(&mut m).unwrap();
}

#[test]
fn hand_computed_importance_decides_kept_heads_and_rows_canonical() {
    run(Layout::Canonical);
}

#[test]
fn hand_computed_importance_decides_kept_heads_and_rows_transposed() {
    run(Layout::Transposed);
}

#[test]
fn keeping_every_group_leaves_every_weight_identical() {
    let yaml = CONFIG
        .replace("target: 1,", "target: 2,")
        .replace("target: 4,", "target: 6,");
    let mut m = bert_layer(Layout::Transposed);
    let before = m.clone();
    let mut p: Pruning<Reference> = Pruning::from_yaml(&yaml).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    importance_step(&mut p, &mut m, [0.5, 0.1]);
    p.on_epoch_end(&mut m).unwrap();
    for (a, b) in before.params.iter().zip(&m.params) {
        assert_eq!(a.info, b.info);
        assert_eq!(a.value.data, b.value.data, "{}", a.info.name);
    }
}

#[test]
fn missing_importance_is_an_error_that_changes_nothing() {
    let mut m = bert_layer(Layout::Canonical);
    let before = m.clone();
    let mut p: Pruning<Reference> = Pruning::from_yaml(CONFIG).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    let err = p.on_epoch_end(&mut m).unwrap_err().to_string();
    assert!(
        err.contains("record_input_gradient") && err.contains("head_mask"),
        "{err}"
    );
    for (a, b) in before.params.iter().zip(&m.params) {
        assert_eq!(a.value.data, b.value.data);
    }
}

#[test]
fn wrong_input_shapes_and_names_are_refused() {
    let mut m = bert_layer(Layout::Canonical);
    let mut p: Pruning<Reference> = Pruning::from_yaml(CONFIG).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    let err = p
        .record_input_gradient("head_mask", &[1, 3], &[0.0; 3])
        .unwrap_err()
        .to_string();
    assert!(err.contains("[1, 3]") && err.contains("2 groups"), "{err}");
    let err = p
        .record_input_gradient("head_mask", &[1, 2], &[0.0; 3])
        .unwrap_err()
        .to_string();
    assert!(err.contains("3"), "{err}");
    let err = p
        .record_input_gradient("attention_mask", &[1, 2], &[0.0; 2])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("attention_mask") && err.contains("head_mask"),
        "{err}"
    );
}

#[test]
fn configuration_problems_name_the_pruner_and_sizes() {
    let m = bert_layer(Layout::Canonical);
    let cases = [
        (
            CONFIG.replace("target: 1,", "target: 3,"),
            "target 3 is more than the 2 groups",
        ),
        (
            CONFIG.replace("stride: 2,", "stride: 3,"),
            "not a multiple of stride 3",
        ),
        (
            CONFIG.replace(
                "importance_metric: abs_gradient",
                "importance_metric: weighted_gradient",
            ),
            "use abs_gradient for inputs",
        ),
        (
            CONFIG.replace("target: 4, stride: 1", "target: 4, stride: 4"),
            "not a multiple of stride 4",
        ),
    ];
    for (yaml, want) in cases {
        let mut m = m.clone();
        let mut p: Pruning<Reference> = Pruning::from_yaml(&yaml).unwrap();
        let err = p.on_epoch_begin(&mut m, 0).unwrap_err().to_string();
        assert!(
            err.contains(want) && err.contains("pruner"),
            "{err}\nwanted: {want}"
        );
    }
}

#[test]
fn importance_survives_save_and_load() {
    let (dir, path) = state_file("before");
    let mut m = bert_layer(Layout::Canonical);
    let mut p: Pruning<Reference> = Pruning::from_yaml(CONFIG).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    importance_step(&mut p, &mut m, [0.7, 0.1]);
    p.save_state(&path).unwrap();
    let mut q: Pruning<Reference> = Pruning::from_yaml(CONFIG).unwrap();
    let mut m2 = bert_layer(Layout::Canonical);
    q.load_state(&mut m2, &path).unwrap();
    assert_eq!(q.structured_outcome(), p.structured_outcome());
    q.on_epoch_end(&mut m2).unwrap();
    assert_eq!(
        q.structured_outcome()[0].kept.as_deref(),
        Some(&[0usize][..])
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn without_a_star_index_picks_the_row_of_the_input() {
    let yaml = "
pruning:
  approach:
    weight_compression:
      start_epoch: 0
      end_epoch: 0
      pruners:
        - !Pruner
            prune_type: gradient_sensitivity
            names: ['encoder.layer.0.attention.self.query.weight']
            parameters: {target: 1, stride: 2, index: 1, importance_inputs: ['head_mask']}
";
    let mut m = bert_layer(Layout::Canonical);
    let mut p: Pruning<Reference> = Pruning::from_yaml(yaml).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    // Row 0 favours head 1, row 1 (the one `index` names) favours head 0.
    p.record_input_gradient("head_mask", &[2, 2], &[0.0, 9.0, 0.5, 0.1])
        .unwrap();
    p.on_epoch_end(&mut m).unwrap();
    let outcome = p.structured_outcome();
    assert_eq!(outcome[0].layer, 1);
    assert_eq!(outcome[0].kept.as_deref(), Some(&[0usize][..]));
    assert_eq!(
        canonical(&m, "encoder.layer.0.attention.self.key.weight").0,
        vec![2, HIDDEN]
    );
}

#[test]
fn a_weight_both_masked_and_shrunk_is_refused() {
    let yaml = format!(
        "{CONFIG}        - !Pruner
            prune_type: basic_magnitude
            target_sparsity: 0.5
            names: ['encoder.layer.0.attention.self.key.weight']
"
    );
    let mut m = bert_layer(Layout::Canonical);
    let mut p: Pruning<Reference> = Pruning::from_yaml(&yaml).unwrap();
    let err = p.on_epoch_begin(&mut m, 0).unwrap_err().to_string();
    assert!(
        err.contains("encoder.layer.0.attention.self.key.weight")
            && err.contains("pruner 0 and pruner 2"),
        "{err}"
    );
}

#[test]
fn a_state_saved_after_the_shrink_resumes_on_the_shrunk_model() {
    let (dir, path) = state_file("after");
    let mut m = bert_layer(Layout::Transposed);
    let mut p: Pruning<Reference> = Pruning::from_yaml(CONFIG).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    importance_step(&mut p, &mut m, [0.2, 0.9]);
    p.on_epoch_end(&mut m).unwrap();
    p.save_state(&path).unwrap();
    let shrunk = m.clone();
    let mut q: Pruning<Reference> = Pruning::from_yaml(CONFIG).unwrap();
    q.load_state(&mut m, &path).unwrap();
    assert_eq!(q.structured_outcome(), p.structured_outcome());
    // Nothing is shrunk twice.
    q.on_epoch_begin(&mut m, 1).unwrap();
    q.on_epoch_end(&mut m).unwrap();
    q.on_train_end(&mut m).unwrap();
    for (a, b) in shrunk.params.iter().zip(&m.params) {
        assert_eq!((&a.info, &a.value.data), (&b.info, &b.value.data));
    }
    // The dense model does not match a state whose pruners have shrunk it.
    let mut dense = bert_layer(Layout::Transposed);
    let mut r: Pruning<Reference> = Pruning::from_yaml(CONFIG).unwrap();
    let err = r.load_state(&mut dense, &path).unwrap_err().to_string();
    assert!(
        err.contains("saved layer 0 with 1 groups, model has layer 0 with 2"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_state_refused_by_its_structured_part_leaves_model_and_session_untouched() {
    let yaml = format!(
        "{CONFIG}        - !Pruner
            prune_type: basic_magnitude
            target_sparsity: 0.5
            names: ['encoder.layer.0.attention.output.dense.bias']
"
    );
    let (dir, path) = state_file("atomic");
    let mut m = bert_layer(Layout::Canonical);
    let mut p: Pruning<Reference> = Pruning::from_yaml(&yaml).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    importance_step(&mut p, &mut m, [0.2, 0.9]);
    p.on_epoch_end(&mut m).unwrap();
    p.save_state(&path).unwrap();
    // The masks of the state fit the dense model; its structured part (shrunk layers) does not.
    let mut dense = bert_layer(Layout::Canonical);
    let mut r: Pruning<Reference> = Pruning::from_yaml(&yaml).unwrap();
    let err = r.load_state(&mut dense, &path).unwrap_err().to_string();
    assert!(err.contains("groups"), "{err}");
    for (a, b) in bert_layer(Layout::Canonical)
        .params
        .iter()
        .zip(&dense.params)
    {
        assert_eq!(
            (&a.info, &a.value.data),
            (&b.info, &b.value.data),
            "{}",
            a.info.name
        );
    }
    // The same session then restores the state into the model it was saved from.
    r.load_state(&mut m, &path).unwrap();
    assert_eq!(r.mask_counts(), p.mask_counts());
    std::fs::remove_dir_all(&dir).ok();
}

/// INC's BERT examples list a layer's bias beside its weight in `importance_inputs`.
const FFN_WITH_BIAS: &str = "
pruning:
  approach:
    weight_compression:
      start_epoch: 0
      end_epoch: 0
      pruners:
        - !Pruner
            prune_type: gradient_sensitivity
            names: ['encoder.layer.*.intermediate.dense.weight']
            parameters: {target: 4, stride: 1, normalize: False,
                         importance_inputs: ['encoder.layer.*.intermediate.dense.weight',
                                             'encoder.layer.*.intermediate.dense.bias'],
                         importance_metric: weighted_gradient}
";

/// Kept FFN rows after one step with the weight gradient 0.5 everywhere and the given bias
/// gradient.
fn kept_ffn_rows(yaml: &str, bias_grad: Vec<f32>) -> Vec<usize> {
    let mut m = bert_layer(Layout::Canonical);
    let mut p: Pruning<Reference> = Pruning::from_yaml(yaml).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    set_grad(
        &mut m,
        "encoder.layer.0.intermediate.dense.weight",
        vec![0.5; FFN * HIDDEN],
    );
    set_grad(&mut m, "encoder.layer.0.intermediate.dense.bias", bias_grad);
    p.on_before_optimizer_step(&mut m).unwrap();
    p.on_step_end(&mut m).unwrap();
    p.on_epoch_end(&mut m).unwrap();
    assert_eq!(
        canonical(&m, "encoder.layer.0.intermediate.dense.bias").0,
        vec![4],
        "the bias follows the shrunk rows"
    );
    p.structured_outcome()[0]
        .kept
        .clone()
        .expect("shrunk at the end epoch")
}

#[test]
fn a_bias_in_importance_inputs_adds_its_rows_gradient_times_value() {
    // Row r of the weight holds 800 + 4r .. 800 + 4r + 3: |sum(0.5 * w)| = 1603 + 8r, so the weight
    // alone keeps rows 2..5. The bias holds 900 + r; a gradient of 10 on row 0 adds
    // |10 * 900| = 9000 to it, and row 0 is kept instead of row 2.
    let weight_only = FFN_WITH_BIAS.replace(
        ",\n                                             'encoder.layer.*.intermediate.dense.bias'",
        "",
    );
    assert_ne!(weight_only, FFN_WITH_BIAS);
    let mut bias_grad = vec![0.0; FFN];
    bias_grad[0] = 10.0;
    assert_eq!(
        kept_ffn_rows(&weight_only, bias_grad.clone()),
        vec![2, 3, 4, 5]
    );
    assert_eq!(kept_ffn_rows(FFN_WITH_BIAS, bias_grad), vec![0, 3, 4, 5]);
}

#[test]
fn an_importance_input_of_another_size_names_both_sizes() {
    let yaml = FFN_WITH_BIAS.replace(
        "'encoder.layer.*.intermediate.dense.bias'",
        "'encoder.layer.*.output.dense.bias'",
    );
    let mut m = bert_layer(Layout::Canonical);
    let mut p: Pruning<Reference> = Pruning::from_yaml(&yaml).unwrap();
    let err = p.on_epoch_begin(&mut m, 0).unwrap_err().to_string();
    assert!(
        err.contains(
            "importance input `encoder.layer.0.output.dense.bias` of shape [4] has 4 rows (4 groups of 1); the pruned weights have 6 groups of 1 (6 rows)"
        ),
        "{err}"
    );
}

/// A conv layer `[4 filters, 2 channels, 3, 3]` and its bias: filter 0 has many small values
/// (the largest L1 norm), filter 1 one large value (the largest L2 norm), filters 2 and 3 are
/// between. A second conv `[3, 4, 3, 3]` consumes its 4 channels; a Linear `[5, 3 * 2 * 2]`
/// after a flatten of 2 x 2 pixels consumes conv2's.
fn conv_layer() -> RefModel {
    let mut w = vec![0.0f32; 4 * 18];
    w[..18].fill(1.0); // L1 18, L2 4.24
    w[18] = 10.0; // L1 10, L2 10
    w[36..45].fill(1.5); // L1 13.5, L2 4.5
    w[54..58].fill(-2.5); // L1 10, L2 5
    let mut m = RefModel::default();
    m.push("conv1.weight", &[4, 2, 3, 3], w, Layout::Canonical);
    m.push(
        "conv1.bias",
        &[4],
        vec![0.1, 0.2, 0.3, 0.4],
        Layout::Canonical,
    );
    m.push(
        "conv2.weight",
        &[3, 4, 3, 3],
        (0..108).map(|v| v as f32).collect(),
        Layout::Canonical,
    );
    m.push(
        "fc.weight",
        &[5, 12],
        (0..60).map(|v| v as f32).collect(),
        Layout::Canonical,
    );
    m
}

/// Norms of each filter of conv1 (the oracle): `p` = 1 or 2.
fn filter_norms(m: &RefModel, p: i32) -> Vec<f64> {
    let (shape, w) = canonical(m, "conv1.weight");
    let per = shape[1..].iter().product::<usize>();
    w.chunks(per)
        .map(|f| {
            let s: f64 = f.iter().map(|v| f64::from(v.abs()).powi(p)).sum();
            if p == 2 {
                s.sqrt()
            } else {
                s
            }
        })
        .collect()
}

/// conv1's filters by `metric`, with conv2's matching input channels when `consumer`.
fn filters_config(metric: &str, consumer: bool) -> String {
    let mut yaml = format!(
        "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      \
         pruners:\n        - !Pruner\n            prune_type: gradient_sensitivity\n            \
         names: ['conv1.weight', 'conv1.bias']\n            parameters: {{target: 2, stride: 1, \
         importance_metric: {metric}}}\n"
    );
    if consumer {
        yaml += &format!(
            "        - !Pruner\n            prune_type: gradient_sensitivity\n            \
             names: ['conv2.weight']\n            parameters: {{target: 2, stride: 1, transpose: True, \
             importance_inputs: ['conv1.weight'], importance_metric: {metric}}}\n"
        );
    }
    yaml
}

fn run_to_the_shrink(pruning: &mut Pruning<Reference>, m: &mut RefModel) -> prune_core::Result<()> {
    pruning.on_train_begin(m)?;
    pruning.on_epoch_begin(m, 0)?;
    pruning.on_epoch_end(m)
}

/// A model of `(name, shape)` weights, each holding 0, 1, 2, ... in canonical order.
fn ascending(weights: &[(&str, Vec<usize>)]) -> RefModel {
    let mut m = RefModel::default();
    for (name, shape) in weights {
        let n = shape.iter().product::<usize>();
        m.push(
            name,
            shape,
            (0..n).map(|v| v as f32).collect(),
            Layout::Canonical,
        );
    }
    m
}

/// Runs `yaml` to its shrink, which must fail; checks that `m` is unchanged; the error.
fn refused(m: &mut RefModel, yaml: &str) -> String {
    let before = m.weights().unwrap();
    let mut pruning: Pruning<Reference> = Pruning::from_yaml(yaml).unwrap();
    let err = run_to_the_shrink(&mut pruning, m).unwrap_err().to_string();
    assert_eq!(m.weights().unwrap(), before, "changed on error: {err}");
    err
}

#[test]
fn l1_and_l2_norms_keep_filters_from_the_weights_alone_with_no_step() {
    for (metric, p) in [("l1_norm", 1), ("l2_norm", 2)] {
        let mut m = conv_layer();
        let norms = filter_norms(&m, p);
        let mut order: Vec<usize> = (0..4).collect();
        order.sort_by(|a, b| norms[*b].partial_cmp(&norms[*a]).unwrap().then(a.cmp(b)));
        let mut keep = order[..2].to_vec();
        keep.sort();
        let (_, before) = canonical(&m, "conv1.weight");
        let (_, conv2) = canonical(&m, "conv2.weight");
        let mut pruning: Pruning<Reference> =
            Pruning::from_yaml(&filters_config(metric, true)).unwrap();
        run_to_the_shrink(&mut pruning, &mut m).unwrap();
        let (shape, after) = canonical(&m, "conv1.weight");
        assert_eq!(shape, vec![2, 2, 3, 3], "{metric}");
        assert_eq!(after, rows(&before, 18, &keep), "{metric}: kept {keep:?}");
        let (_, bias) = canonical(&m, "conv1.bias");
        assert_eq!(
            bias,
            keep.iter()
                .map(|&k| 0.1 * (k + 1) as f32)
                .collect::<Vec<_>>()
        );
        let (shape, after) = canonical(&m, "conv2.weight");
        assert_eq!(shape, vec![3, 2, 3, 3], "{metric}");
        let expected: Vec<f32> = conv2
            .chunks(36)
            .flat_map(|filter| {
                keep.iter()
                    .flat_map(move |&c| filter[c * 9..(c + 1) * 9].to_vec())
            })
            .collect();
        assert_eq!(after, expected, "{metric}");
        let kept = &pruning.structured_outcome()[0].kept;
        assert_eq!(kept.as_deref(), Some(&keep[..]), "{metric}");
    }
    // The two norms disagree on this layer, so each case above can fail.
    let m = conv_layer();
    assert_eq!(
        filter_norms(&m, 1)[0] > filter_norms(&m, 1)[1],
        filter_norms(&m, 2)[0] < filter_norms(&m, 2)[1]
    );
}

#[test]
fn a_convs_consumer_follows_it_from_the_chain() {
    // Only conv1 is named: the chain recogniser takes conv2's input channels along.
    let mut m = conv_layer();
    let (_, conv2) = canonical(&m, "conv2.weight");
    let mut pruning: Pruning<Reference> =
        Pruning::from_yaml(&filters_config("l1_norm", false)).unwrap();
    run_to_the_shrink(&mut pruning, &mut m).unwrap();
    assert_eq!(canonical(&m, "conv1.weight").0, vec![2, 2, 3, 3]);
    let keep = pruning.structured_outcome()[0].kept.clone().unwrap();
    let (shape, after) = canonical(&m, "conv2.weight");
    assert_eq!(shape, vec![3, 2, 3, 3]);
    let expected: Vec<f32> = conv2
        .chunks(36)
        .flat_map(|f| {
            keep.iter()
                .flat_map(move |&c| f[c * 9..(c + 1) * 9].to_vec())
        })
        .collect();
    assert_eq!(after, expected);
    assert_eq!(canonical(&m, "fc.weight").0, vec![5, 12]);
}

#[test]
fn a_conv_whose_consumer_is_not_recognised_is_refused_and_changes_nothing() {
    // The same layers, with the consumer renamed out of the chain's reach.
    let mut m = ascending(&[
        ("conv1.weight", vec![4, 2, 3, 3]),
        ("conv1.bias", vec![4]),
        ("head.weight", vec![3, 4, 3, 3]),
        ("fc.weight", vec![5, 12]),
    ]);
    let err = refused(&mut m, &filters_config("l2_norm", false));
    assert!(
        err.contains("`conv1.weight` would keep 2 of its 4 output rows")
            && err.contains("matching input columns"),
        "{err}"
    );
}

/// conv-BN blocks: conv1 [4, 2, 3, 3] -> bn1 -> conv2 [3, 4, 3, 3] -> bn2 -> flatten of
/// 2 x 2 -> fc1 [5, 12] -> fc2 [2, 5]. Every value distinct.
fn conv_bn_chain() -> RefModel {
    let mut m = RefModel::default();
    let mut next = 0.0f32;
    for (name, shape) in [
        ("conv1.weight", vec![4, 2, 3, 3]),
        ("bn1.weight", vec![4]),
        ("bn1.bias", vec![4]),
        ("bn1.running_mean", vec![4]),
        ("bn1.running_var", vec![4]),
        ("conv2.weight", vec![3, 4, 3, 3]),
        ("bn2.weight", vec![3]),
        ("bn2.bias", vec![3]),
        ("bn2.running_mean", vec![3]),
        ("bn2.running_var", vec![3]),
        ("fc1.weight", vec![5, 12]),
        ("fc1.bias", vec![5]),
        ("fc2.weight", vec![2, 5]),
    ] {
        let n = shape.iter().product::<usize>();
        let values = (0..n).map(|i| next + i as f32).collect();
        next += n as f32;
        m.push(name, &shape, values, Layout::Canonical);
    }
    m
}

fn one_pruner(names: &str, params: &str) -> String {
    format!(
        "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      \
         pruners:\n        - !Pruner\n            prune_type: gradient_sensitivity\n            \
         names: [{names}]\n            parameters: {{{params}}}\n"
    )
}

#[test]
fn a_batch_norm_and_its_running_statistics_follow_the_conv_before_it() {
    let mut m = conv_bn_chain();
    let before: Vec<(String, Vec<f32>)> = [
        "bn2.weight",
        "bn2.bias",
        "bn2.running_mean",
        "bn2.running_var",
    ]
    .iter()
    .map(|n| (n.to_string(), canonical(&m, n).1))
    .collect();
    let (_, fc1) = canonical(&m, "fc1.weight");
    let yaml = one_pruner(
        "'conv2.weight'",
        "target: 2, stride: 1, importance_metric: l1_norm",
    );
    let mut pruning: Pruning<Reference> = Pruning::from_yaml(&yaml).unwrap();
    run_to_the_shrink(&mut pruning, &mut m).unwrap();
    // Values grow with the index: filters 1 and 2 have the largest L1 norms.
    assert_eq!(
        pruning.structured_outcome()[0].kept.as_deref(),
        Some(&[1, 2][..])
    );
    for (name, values) in before {
        assert_eq!(canonical(&m, &name).1, values[1..].to_vec(), "{name}");
    }
    assert_eq!(canonical(&m, "conv2.weight").0, vec![2, 4, 3, 3]);
    let (shape, after) = canonical(&m, "fc1.weight");
    assert_eq!(shape, vec![5, 8]);
    let expected: Vec<f32> = fc1.chunks(12).flat_map(|r| r[4..].to_vec()).collect();
    assert_eq!(after, expected);
    assert_eq!(canonical(&m, "bn1.running_var").0, vec![4]);
    assert_eq!(canonical(&m, "fc2.weight").0, vec![2, 5]);
}

#[test]
fn a_flatten_consumer_named_by_columns_must_keep_whole_blocks() {
    let mut m = conv_bn_chain();
    let yaml = one_pruner(
        "'fc1.weight'",
        "target: 6, stride: 1, transpose: True, importance_metric: l1_norm",
    );
    let err = refused(&mut m, &yaml);
    assert!(
        err.contains("`fc1.weight` axis 1 takes its channels in blocks of 4"),
        "{err}"
    );
}

/// A ResNet with torchvision names and one BasicBlock: stem conv1/bn1, layer1.0, fc.
fn tiny_resnet() -> RefModel {
    let mut m = RefModel::default();
    let mut shapes: Vec<(String, Vec<usize>)> = vec![("conv1.weight".into(), vec![4, 3, 3, 3])];
    let bn = |p: &str, c: usize| {
        ["weight", "bias", "running_mean", "running_var"].map(|s| (format!("{p}.{s}"), vec![c]))
    };
    shapes.extend(bn("bn1", 4));
    shapes.push(("layer1.0.conv1.weight".into(), vec![4, 4, 3, 3]));
    shapes.extend(bn("layer1.0.bn1", 4));
    shapes.push(("layer1.0.conv2.weight".into(), vec![4, 4, 3, 3]));
    shapes.extend(bn("layer1.0.bn2", 4));
    shapes.push(("fc.weight".into(), vec![2, 4]));
    for (name, shape) in shapes {
        let n = shape.iter().product::<usize>();
        m.push(
            &name,
            &shape,
            (0..n).map(|v| v as f32).collect(),
            Layout::Canonical,
        );
    }
    m
}

#[test]
fn a_residual_blocks_inner_channels_shrink_with_its_second_conv() {
    let mut m = tiny_resnet();
    let yaml = one_pruner(
        "'layer1.0.conv1.weight'",
        "target: 2, stride: 1, importance_metric: l2_norm",
    );
    let mut pruning: Pruning<Reference> = Pruning::from_yaml(&yaml).unwrap();
    run_to_the_shrink(&mut pruning, &mut m).unwrap();
    assert_eq!(canonical(&m, "layer1.0.conv1.weight").0, vec![2, 4, 3, 3]);
    assert_eq!(canonical(&m, "layer1.0.bn1.running_mean").0, vec![2]);
    assert_eq!(canonical(&m, "layer1.0.conv2.weight").0, vec![4, 2, 3, 3]);
    assert_eq!(canonical(&m, "layer1.0.bn2.weight").0, vec![4]);
}

#[test]
fn channels_of_a_residual_sum_are_refused_naming_the_sum_and_change_nothing() {
    // The first pruner's shrink is valid and planned; the second writes into the sum.
    let mut m = tiny_resnet();
    let yaml = one_pruner(
        "'layer1.0.conv1.weight'",
        "target: 2, stride: 1, importance_metric: l2_norm",
    ) + "        - !Pruner\n            prune_type: gradient_sensitivity\n            \
         names: ['layer1.0.conv2.weight']\n            parameters: {target: 2, stride: 1, importance_metric: l2_norm}\n";
    let err = refused(&mut m, &yaml);
    assert!(
        err.contains("`layer1.0.conv2.weight` axis 0 cannot be shrunk")
            && err.contains("residual sum of stage `layer1`"),
        "{err}"
    );
}

#[test]
fn a_depthwise_consumer_is_refused_naming_it() {
    let mut m = ascending(&[
        ("conv1.weight", vec![4, 2, 3, 3]),
        ("conv2.weight", vec![4, 1, 3, 3]),
        ("conv3.weight", vec![6, 4, 1, 1]),
    ]);
    let yaml = one_pruner(
        "'conv1.weight'",
        "target: 2, stride: 1, importance_metric: l1_norm",
    );
    let err = refused(&mut m, &yaml);
    assert!(
        err.contains("`conv2.weight` takes 1 input channels per group")
            && err.contains("depthwise"),
        "{err}"
    );
}

#[test]
fn a_linear_after_a_flatten_loses_whole_blocks_of_columns() {
    // conv2's 3 filters feed fc in blocks of 4 columns (2 x 2 pixels each): keeping 2 filters
    // keeps 8 columns.
    let yaml = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      \
        pruners:\n        - !Pruner\n            prune_type: gradient_sensitivity\n            \
        names: ['conv2.weight']\n            parameters: {target: 2, stride: 1, importance_metric: l1_norm}\n        \
        - !Pruner\n            prune_type: gradient_sensitivity\n            names: ['fc.weight']\n            \
        parameters: {target: 2, stride: 4, transpose: True, importance_inputs: ['conv2.weight'], importance_metric: l1_norm}\n";
    let mut m = conv_layer();
    let (_, fc) = canonical(&m, "fc.weight");
    let mut pruning: Pruning<Reference> = Pruning::from_yaml(yaml).unwrap();
    run_to_the_shrink(&mut pruning, &mut m).unwrap();
    // conv2's values grow with the index: filters 1 and 2 have the largest L1 norms.
    let (shape, after) = canonical(&m, "fc.weight");
    assert_eq!(shape, vec![5, 8]);
    let expected: Vec<f32> = fc.chunks(12).flat_map(|row| row[4..12].to_vec()).collect();
    assert_eq!(after, expected);
    assert_eq!(canonical(&m, "conv2.weight").0, vec![2, 4, 3, 3]);
}

#[test]
fn transpose_keeps_a_convs_input_channels() {
    // conv1's two input channels come from a stem conv of 2 filters; filter 1 has the larger
    // L1 norm, so channel 1 is kept.
    let mut m = conv_layer();
    m.push(
        "stem.weight",
        &[2, 1, 3, 3],
        (0..18).map(|v| if v < 9 { 0.5 } else { 1.0 }).collect(),
        Layout::Canonical,
    );
    let (_, before) = canonical(&m, "conv1.weight");
    let yaml = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      \
        pruners:\n        - !Pruner\n            prune_type: gradient_sensitivity\n            \
        names: ['stem.weight']\n            parameters: {target: 1, stride: 1, importance_metric: l1_norm}\n        \
        - !Pruner\n            prune_type: gradient_sensitivity\n            names: ['conv1.weight']\n            \
        parameters: {target: 1, stride: 1, transpose: True, importance_inputs: ['stem.weight'], importance_metric: l1_norm}\n";
    let mut pruning: Pruning<Reference> = Pruning::from_yaml(yaml).unwrap();
    run_to_the_shrink(&mut pruning, &mut m).unwrap();
    let (shape, after) = canonical(&m, "conv1.weight");
    assert_eq!(shape, vec![4, 1, 3, 3]);
    let expected: Vec<f32> = before
        .chunks(9)
        .skip(1)
        .step_by(2)
        .flatten()
        .copied()
        .collect();
    assert_eq!(after, expected);
}

#[test]
fn a_weight_only_metric_on_an_input_is_refused_naming_it() {
    let yaml = filters_config("l2_norm", true).replacen(
        "importance_metric: l2_norm",
        "importance_metric: l2_norm, importance_inputs: ['head_mask']",
        1,
    );
    let mut m = conv_layer();
    let mut pruning: Pruning<Reference> = Pruning::from_yaml(&yaml).unwrap();
    let err = pruning.on_train_begin(&mut m).unwrap_err().to_string();
    assert!(
        err.contains("l2_norm measures weights") && err.contains("`head_mask`"),
        "{err}"
    );
}

#[test]
fn a_conv_losing_filters_and_input_channels_at_once_composes_both() {
    // conv1 and conv2 each keep their two filters of largest L1 norm (the last two, as values
    // ascend); conv2 also loses the input channels of conv1's dropped filters.
    let mut m = conv_bn_chain();
    let (_, conv2) = canonical(&m, "conv2.weight");
    let mut yaml = one_pruner(
        "'conv1.weight'",
        "target: 2, stride: 1, importance_metric: l1_norm",
    );
    yaml += "        - !Pruner\n            prune_type: gradient_sensitivity\n            \
             names: ['conv2.weight']\n            parameters: {target: 2, stride: 1, importance_metric: l1_norm}\n";
    let mut pruning: Pruning<Reference> = Pruning::from_yaml(&yaml).unwrap();
    run_to_the_shrink(&mut pruning, &mut m).unwrap();
    let (shape, after) = canonical(&m, "conv2.weight");
    assert_eq!(shape, vec![2, 2, 3, 3]);
    let filter = |o: usize, i: usize| conv2[(o * 4 + i) * 9..(o * 4 + i + 1) * 9].to_vec();
    let expected: Vec<f32> = [(1, 2), (1, 3), (2, 2), (2, 3)]
        .iter()
        .flat_map(|&(o, i)| filter(o, i))
        .collect();
    assert_eq!(after, expected);
    assert_eq!(canonical(&m, "bn1.running_var").0, vec![2]);
    assert_eq!(canonical(&m, "bn2.running_var").0, vec![2]);
    assert_eq!(canonical(&m, "fc1.weight").0, vec![5, 8]);
}

/// `encoder.proj` (3 -> 4) feeding `decoder.mix` (4 -> 2): two modules no recogniser links.
fn encoder_decoder() -> RefModel {
    ascending(&[
        ("encoder.proj.weight", vec![4, 3]),
        ("encoder.proj.bias", vec![4]),
        ("decoder.mix.weight", vec![2, 4]),
    ])
}

const SHRINK_PROJ: &str = "'encoder.proj.weight'";
const KEEP_TWO: &str = "target: 2, stride: 1, importance_metric: l1_norm";

#[test]
fn a_coupling_group_declared_in_the_yaml_links_what_no_recogniser_knows() {
    let err = refused(&mut encoder_decoder(), &one_pruner(SHRINK_PROJ, KEEP_TWO));
    assert!(err.contains("encoder.proj.weight"), "{err}");

    let mut m = encoder_decoder();
    let (_, mix) = canonical(&m, "decoder.mix.weight");
    let yaml = one_pruner(SHRINK_PROJ, KEEP_TWO).replace(
        "      pruners:",
        "      coupling:\n        - - {weight: encoder.proj.weight, axis: 0}\n          \
         - {weight: decoder.mix.weight, axis: 1}\n      pruners:",
    );
    let mut pruning: Pruning<Reference> = Pruning::from_yaml(&yaml).unwrap();
    run_to_the_shrink(&mut pruning, &mut m).unwrap();
    // Rows of ascending values: the last two have the largest L1 norms.
    assert_eq!(canonical(&m, "encoder.proj.weight").0, vec![2, 3]);
    assert_eq!(canonical(&m, "encoder.proj.bias").1, vec![2.0, 3.0]);
    let (shape, after) = canonical(&m, "decoder.mix.weight");
    assert_eq!(shape, vec![2, 2]);
    assert_eq!(after, vec![mix[2], mix[3], mix[6], mix[7]]);
}

#[test]
fn a_declared_group_that_does_not_fit_the_model_is_refused_at_bind_with_every_path() {
    let yaml = one_pruner(SHRINK_PROJ, KEEP_TWO).replace(
        "      pruners:",
        "      coupling:\n        - - {weight: encoder.proj.weight, axis: 0}\n          \
         - {weight: decoder.mx.weight, axis: 1}\n        \
         - - {weight: encoder.proj.weight, axis: 2}\n          \
         - {weight: decoder.mix.weight, axis: 0}\n      pruners:",
    );
    let mut m = encoder_decoder();
    let mut pruning: Pruning<Reference> = Pruning::from_yaml(&yaml).unwrap();
    let err = pruning.on_train_begin(&mut m).unwrap_err().to_string();
    let path = "pruning.approach.weight_compression.coupling";
    for want in [
        format!("{path}[0][1].weight: no weight `decoder.mx.weight` in the model; close: decoder.mix.weight"),
        format!("{path}[1][0].axis: `encoder.proj.weight` has shape [4, 3]: no axis 2"),
    ] {
        assert!(err.contains(&want), "{want}\nin: {err}");
    }
    // A group whose slices have different channel counts.
    let yaml = one_pruner(SHRINK_PROJ, KEEP_TWO).replace(
        "      pruners:",
        "      coupling:\n        - - {weight: encoder.proj.weight, axis: 0}\n          \
         - {weight: decoder.mix.weight, axis: 0}\n      pruners:",
    );
    let mut pruning: Pruning<Reference> = Pruning::from_yaml(&yaml).unwrap();
    let err = pruning.on_train_begin(&mut m).unwrap_err().to_string();
    assert!(
        err.contains("[0][1].weight: `decoder.mix.weight` axis 0 has 2 channels, but `encoder.proj.weight` axis 0 (the group's first slice) has 4"),
        "{err}"
    );
}

#[test]
fn a_coupling_section_is_read_with_its_defaults_and_its_mistakes_named() {
    let yaml = one_pruner(SHRINK_PROJ, KEEP_TWO).replace(
        "      pruners:",
        "      coupling:\n        - - {weight: a.weight}\n          - {weight: b.weight, axis: 1, block: 4}\n      pruners:",
    );
    let config = prune_core::PruningConfig::from_yaml(&yaml).unwrap();
    let group = &config.weight_compression.coupling[0];
    assert_eq!((group[0].axis, group[0].block), (0, 1));
    assert_eq!(
        (group[1].weight.as_str(), group[1].axis, group[1].block),
        ("b.weight", 1, 4)
    );
    let bad = one_pruner(SHRINK_PROJ, KEEP_TWO).replace(
        "      pruners:",
        "      coupling:\n        - - {weight: a.weight, axes: 1}\n          - {axis: 1, block: 0}\n        - a.weight\n      pruners:",
    );
    let err = prune_core::PruningConfig::from_yaml(&bad)
        .unwrap_err()
        .to_string();
    let path = "pruning.approach.weight_compression.coupling";
    for want in [
        format!("{path}[0][0].axes: unknown key; did you mean `axis`?"),
        format!("{path}[0][1].weight: missing"),
        format!("{path}[0][1].block: must be at least 1"),
        format!("{path}[1]: expected a list"),
    ] {
        assert!(err.contains(&want), "{want}\nin: {err}");
    }
}
