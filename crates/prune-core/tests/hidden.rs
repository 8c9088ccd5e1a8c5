//! Hidden-size pruning of BERT-family encoders on the reference backend: one coupled group per
//! model, importance summed over the group, the coupled shrink of every member, on synthetic
//! checkpoints in BERT, RoBERTa and DistilBERT names; and the errors for bad input.

use prune_core::algo::coupling::bert_coupling;
use prune_core::model::layout::{to_canonical, to_stored};
use prune_core::rng::uniform_values;
use prune_core::testing::reference::{RefModel, RefTensor};
use prune_core::{Layout, Model, Pruning, PruningConfig, Reference, WeightInfo};

const HIDDEN: usize = 8;
/// Two heads of 2.
const ATTENTION: usize = 4;
const FFN: usize = 6;
const LAYERS: usize = 2;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Naming {
    /// A bare BertModel.
    Bert,
    /// RobertaForSequenceClassification: `roberta.` prefix, `classifier.dense`, `out_proj`.
    Roberta,
    /// DistilBertForSequenceClassification: `distilbert.`, `pre_classifier`, `classifier`.
    DistilBert,
}

/// Every tensor of a small encoder in `naming`'s names, canonical shapes.
fn tensors(naming: Naming) -> Vec<(String, Vec<usize>)> {
    let h = HIDDEN;
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let mut add = |n: String, s: &[usize]| out.push((n, s.to_vec()));
    let prefix = match naming {
        Naming::Bert => "",
        Naming::Roberta => "roberta.",
        Naming::DistilBert => "distilbert.",
    };
    add(
        format!("{prefix}embeddings.word_embeddings.weight"),
        &[10, h],
    );
    add(
        format!("{prefix}embeddings.position_embeddings.weight"),
        &[6, h],
    );
    if naming != Naming::DistilBert {
        add(
            format!("{prefix}embeddings.token_type_embeddings.weight"),
            &[2, h],
        );
    }
    add(format!("{prefix}embeddings.LayerNorm.weight"), &[h]);
    add(format!("{prefix}embeddings.LayerNorm.bias"), &[h]);
    for l in 0..LAYERS {
        let linears: [(&str, usize, usize); 6] = match naming {
            Naming::DistilBert => [
                ("attention.q_lin", ATTENTION, h),
                ("attention.k_lin", ATTENTION, h),
                ("attention.v_lin", ATTENTION, h),
                ("attention.out_lin", h, ATTENTION),
                ("ffn.lin1", FFN, h),
                ("ffn.lin2", h, FFN),
            ],
            _ => [
                ("attention.self.query", ATTENTION, h),
                ("attention.self.key", ATTENTION, h),
                ("attention.self.value", ATTENTION, h),
                ("attention.output.dense", h, ATTENTION),
                ("intermediate.dense", FFN, h),
                ("output.dense", h, FFN),
            ],
        };
        let (layers, norms) = match naming {
            Naming::DistilBert => ("transformer.layer.", ["sa_layer_norm", "output_layer_norm"]),
            _ => (
                "encoder.layer.",
                ["attention.output.LayerNorm", "output.LayerNorm"],
            ),
        };
        for (stem, rows, cols) in linears {
            add(format!("{prefix}{layers}{l}.{stem}.weight"), &[rows, cols]);
            add(format!("{prefix}{layers}{l}.{stem}.bias"), &[rows]);
        }
        for norm in norms {
            add(format!("{prefix}{layers}{l}.{norm}.weight"), &[h]);
            add(format!("{prefix}{layers}{l}.{norm}.bias"), &[h]);
        }
    }
    match naming {
        Naming::Bert => {}
        Naming::Roberta => {
            add("classifier.dense.weight".into(), &[h, h]);
            add("classifier.dense.bias".into(), &[h]);
            add("classifier.out_proj.weight".into(), &[3, h]);
            add("classifier.out_proj.bias".into(), &[3]);
        }
        Naming::DistilBert => {
            add("pre_classifier.weight".into(), &[h, h]);
            add("pre_classifier.bias".into(), &[h]);
            add("classifier.weight".into(), &[3, h]);
            add("classifier.bias".into(), &[3]);
        }
    }
    out
}

/// The model: seeded values; Linear weights stored transposed (as burn stores them) so the
/// layout maps are exercised.
fn model(naming: Naming, skip: Option<&str>) -> RefModel {
    let mut m = RefModel::default();
    for (i, (name, shape)) in tensors(naming).into_iter().enumerate() {
        if skip.is_some_and(|s| name.ends_with(s)) {
            continue;
        }
        let n = shape.iter().product();
        let layout = if shape.len() == 2 && !name.contains("embeddings") {
            Layout::Transposed
        } else {
            Layout::Canonical
        };
        m.push(&name, &shape, uniform_values(1000 + i as u64, n), layout);
    }
    m
}

fn infos(m: &RefModel) -> Vec<WeightInfo> {
    m.weights().unwrap()
}

fn canonical(m: &RefModel, name: &str) -> Vec<f32> {
    let info = infos(m).into_iter().find(|w| w.name == name).unwrap();
    to_canonical(m.weight(name).unwrap().data, info.layout, &info.shape)
}

/// The seeded gradient of weight number `index` (in the model's order) at `step`, canonical.
fn gradient(index: usize, step: u64, numel: usize) -> Vec<f32> {
    uniform_values(50_000 * (step + 1) + index as u64, numel)
}

/// Seeded gradients for every weight, step `step`.
fn set_gradients(m: &mut RefModel, step: u64) {
    let updates: Vec<_> = infos(m)
        .iter()
        .enumerate()
        .map(|(i, w)| {
            (
                m.weight_id(&w.name).unwrap(),
                RefTensor {
                    data: to_stored(gradient(i, step, w.numel()), w.layout, &w.shape),
                    shape: w.layout.stored_shape(&w.shape),
                },
            )
        })
        .collect();
    m.set_gradients(updates).unwrap();
}

/// The members of the hidden group, from the names by hand: (name, axis).
fn hidden_members(naming: Naming) -> Vec<(String, usize)> {
    let axes = |name: &str| -> Vec<usize> {
        let ends = |parts: &[&str]| parts.iter().any(|p| name.ends_with(p));
        if ends(&["_embeddings.weight"]) {
            vec![1]
        } else if ends(&[
            "LayerNorm.weight",
            "LayerNorm.bias",
            "layer_norm.weight",
            "layer_norm.bias",
        ]) {
            vec![0]
        } else if ends(&[
            "query.weight",
            "key.weight",
            "value.weight",
            "q_lin.weight",
            "k_lin.weight",
            "v_lin.weight",
            "intermediate.dense.weight",
            "lin1.weight",
            "out_proj.weight",
        ]) || name == "classifier.weight"
        {
            vec![1]
        } else if ends(&[
            "attention.output.dense.weight",
            "attention.output.dense.bias",
            "out_lin.weight",
            "out_lin.bias",
            "lin2.weight",
            "lin2.bias",
            "classifier.dense.bias",
            "pre_classifier.bias",
        ]) || (ends(&["output.dense.weight", "output.dense.bias"])
            && !name.contains("attention"))
        {
            vec![0]
        } else if ends(&["classifier.dense.weight", "pre_classifier.weight"]) {
            vec![0, 1]
        } else {
            vec![]
        }
    };
    tensors(naming)
        .into_iter()
        .flat_map(|(name, _)| axes(&name).into_iter().map(move |a| (name.clone(), a)))
        .collect()
}

/// Per hidden index, summed over `members` and `steps`: |sum over the index's slice of
/// gradient * weight| (weighted_gradient), from the seeded values, independently of the library.
fn importance_by_hand(m: &RefModel, members: &[(String, usize)], steps: u64) -> Vec<f64> {
    let all = infos(m);
    let mut total = vec![0.0f64; HIDDEN];
    for step in 0..steps {
        for (name, axis) in members {
            let index = all.iter().position(|w| &w.name == name).unwrap();
            let info = &all[index];
            let w = canonical(m, name);
            let g = gradient(index, step, info.numel());
            let cols = if info.shape.len() == 2 {
                info.shape[1]
            } else {
                1
            };
            let mut signed = vec![0.0f64; HIDDEN];
            for (k, (wv, gv)) in w.iter().zip(&g).enumerate() {
                let j = if *axis == 0 { k / cols } else { k % cols };
                signed[j] += f64::from(*wv) * f64::from(*gv);
            }
            for (t, s) in total.iter_mut().zip(signed) {
                *t += s.abs();
            }
        }
    }
    total
}

/// The `k` largest, ties to the lower index, ascending.
fn top(importance: &[f64], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..importance.len()).collect();
    order.sort_by(|&a, &b| importance[b].total_cmp(&importance[a]).then(a.cmp(&b)));
    let mut kept = order[..k].to_vec();
    kept.sort_unstable();
    kept
}

fn prefix(naming: Naming) -> &'static str {
    match naming {
        Naming::Bert => "",
        Naming::Roberta => "roberta.",
        Naming::DistilBert => "distilbert.",
    }
}

/// A hidden-size pruner: the word embeddings' columns, importance over the coupled group.
fn hidden_pruner(naming: Naming, target: usize) -> String {
    format!(
        "
        - !Pruner
            prune_type: gradient_sensitivity
            names: ['{}embeddings.word_embeddings.weight']
            parameters: {{target: {target}, stride: 1, transpose: True, coupled_importance: True,
                         importance_metric: weighted_gradient}}",
        prefix(naming)
    )
}

fn config(pruners: &str) -> PruningConfig {
    PruningConfig::from_yaml(&format!(
        "
pruning:
  approach:
    weight_compression:
      start_epoch: 0
      end_epoch: 0
      pruners:{pruners}
"
    ))
    .unwrap()
}

/// One epoch of `steps` steps with seeded gradients; the pruners shrink at its end.
fn run(pruning: &mut Pruning<Reference>, m: &mut RefModel, steps: u64) -> prune_core::Result<()> {
    run_epochs(pruning, m, 1, steps)
}

/// Canonical values of `name` keeping only `keep` along `axis`.
fn gathered(values: &[f32], shape: &[usize], axis: usize, keep: &[usize]) -> Vec<f32> {
    let cols = if shape.len() == 2 { shape[1] } else { 1 };
    let rows = values.len() / cols;
    let mut out = Vec::new();
    for r in 0..rows {
        for c in 0..cols {
            let j = if axis == 0 { r } else { c };
            if keep.contains(&j) {
                out.push(values[r * cols + c]);
            }
        }
    }
    out
}

const NAMINGS: [Naming; 3] = [Naming::Bert, Naming::Roberta, Naming::DistilBert];

#[test]
fn the_recogniser_finds_the_whole_hidden_group_in_each_naming() {
    for naming in NAMINGS {
        let m = model(naming, None);
        let coupling = bert_coupling(&infos(&m));
        let word = format!("{}embeddings.word_embeddings.weight", prefix(naming));
        let group = coupling
            .groups
            .iter()
            .find(|g| g.members.iter().any(|s| s.weight == word && s.axis == 1))
            .unwrap_or_else(|| panic!("{naming:?}: no hidden group"));
        let mut found: Vec<(String, usize)> = group
            .members
            .iter()
            .map(|s| (s.weight.clone(), s.axis))
            .collect();
        let mut want = hidden_members(naming);
        found.sort();
        want.sort();
        assert_eq!(found, want, "{naming:?}");
        // Heads and FFN units: one group each per layer.
        assert_eq!(coupling.groups.len(), 2 * LAYERS + 1, "{naming:?}");
        assert!(coupling.fixed.is_empty(), "{naming:?}");
    }
}

#[test]
fn hidden_size_keeps_the_dimensions_the_whole_group_ranks_highest() {
    const KEEP: usize = 5;
    for naming in NAMINGS {
        let original = model(naming, None);
        let mut m = original.clone();
        let mut pruning = Pruning::new(config(&hidden_pruner(naming, KEEP))).unwrap();
        run(&mut pruning, &mut m, 2).unwrap();
        let members = hidden_members(naming);
        let want = top(&importance_by_hand(&original, &members, 2), KEEP);
        let outcome = pruning.structured_outcome();
        assert_eq!(outcome.len(), 1);
        assert_eq!(outcome[0].kept.as_deref(), Some(&want[..]), "{naming:?}");
        for (name, shape) in tensors(naming) {
            let axes: Vec<usize> = members
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, a)| *a)
                .collect();
            let mut expected = canonical(&original, &name);
            let mut new_shape = shape.clone();
            for &axis in &axes {
                let mut cur = shape.clone();
                if axes.len() == 2 && axis == 1 {
                    cur[0] = KEEP;
                }
                expected = gathered(&expected, &cur, axis, &want);
                new_shape[axis] = KEEP;
            }
            let info = infos(&m).into_iter().find(|w| w.name == name).unwrap();
            assert_eq!(info.shape, new_shape, "{naming:?} {name}");
            assert_eq!(canonical(&m, &name), expected, "{naming:?} {name}");
        }
    }
}

#[test]
fn hidden_size_composes_with_heads_and_ffn_units_in_one_run() {
    let heads_and_ffn = "
        - !Pruner
            prune_type: gradient_sensitivity
            names: ['encoder.layer.*.attention.self.query.weight',
                    'encoder.layer.*.attention.self.key.weight',
                    'encoder.layer.*.attention.self.value.weight']
            parameters: {target: 1, stride: 2, importance_metric: weighted_gradient}
        - !Pruner
            prune_type: gradient_sensitivity
            names: ['encoder.layer.*.intermediate.dense.weight']
            parameters: {target: 4, stride: 1, importance_metric: weighted_gradient}";
    let mut m = model(Naming::Bert, None);
    let yaml = format!("{heads_and_ffn}{}", hidden_pruner(Naming::Bert, 5));
    let mut pruning = Pruning::new(config(&yaml)).unwrap();
    run(&mut pruning, &mut m, 2).unwrap();
    let shape = |n: &str| infos(&m).into_iter().find(|w| w.name == n).unwrap().shape;
    for l in 0..LAYERS {
        let n = |s: &str| format!("encoder.layer.{l}.{s}");
        assert_eq!(shape(&n("attention.self.query.weight")), vec![2, 5]);
        assert_eq!(shape(&n("attention.self.value.bias")), vec![2]);
        assert_eq!(shape(&n("attention.output.dense.weight")), vec![5, 2]);
        assert_eq!(shape(&n("intermediate.dense.weight")), vec![4, 5]);
        assert_eq!(shape(&n("output.dense.weight")), vec![5, 4]);
        assert_eq!(shape(&n("output.LayerNorm.bias")), vec![5]);
    }
    assert_eq!(shape("embeddings.position_embeddings.weight"), vec![6, 5]);
}

/// Every weight's stored values, to compare before and after a refused run.
fn snapshot(m: &RefModel) -> Vec<(String, Vec<f32>)> {
    infos(m)
        .into_iter()
        .map(|w| (w.name.clone(), m.weight(&w.name).unwrap().data))
        .collect()
}

#[test]
fn a_target_not_below_the_hidden_size_is_refused() {
    let mut m = model(Naming::Bert, None);
    let before = snapshot(&m);
    let mut pruning = Pruning::new(config(&hidden_pruner(Naming::Bert, HIDDEN))).unwrap();
    let err = run(&mut pruning, &mut m, 1).unwrap_err().to_string();
    assert!(
        err.contains("target 8 keeps all 8") && err.contains("embeddings.word_embeddings.weight"),
        "{err}"
    );
    assert_eq!(snapshot(&m), before);
}

#[test]
fn a_missing_layer_norm_is_named_and_the_model_is_untouched() {
    let missing = "encoder.layer.1.output.LayerNorm.bias";
    let mut m = model(Naming::Roberta, Some(missing));
    let before = snapshot(&m);
    let mut pruning = Pruning::new(config(&hidden_pruner(Naming::Roberta, 5))).unwrap();
    let err = run(&mut pruning, &mut m, 1).unwrap_err().to_string();
    assert!(
        err.contains(&format!("`roberta.{missing}` is missing")) && err.contains("hidden size"),
        "{err}"
    );
    assert_eq!(snapshot(&m), before);
}

#[test]
fn hidden_pruning_of_a_model_no_recogniser_knows_is_refused() {
    let mut m = RefModel::default();
    m.push(
        "embed.weight",
        &[10, HIDDEN],
        uniform_values(1, 80),
        Layout::Canonical,
    );
    m.push(
        "proj.weight",
        &[3, HIDDEN],
        uniform_values(2, 24),
        Layout::Canonical,
    );
    let before = snapshot(&m);
    let yaml = "
        - !Pruner
            prune_type: gradient_sensitivity
            names: ['embed.weight']
            parameters: {target: 4, transpose: True, coupled_importance: True,
                         importance_metric: weighted_gradient}";
    let mut pruning = Pruning::new(config(yaml)).unwrap();
    let err = run(&mut pruning, &mut m, 1).unwrap_err().to_string();
    assert!(
        err.contains("`embed.weight` axis 1 is in no coupling group") && err.contains("bert"),
        "{err}"
    );
    assert_eq!(snapshot(&m), before);
}

/// `epochs` epochs of `steps` steps with seeded gradients.
fn run_epochs(
    pruning: &mut Pruning<Reference>,
    m: &mut RefModel,
    epochs: usize,
    steps: u64,
) -> prune_core::Result<()> {
    pruning.on_train_begin(m)?;
    for epoch in 0..epochs {
        pruning.on_epoch_begin(m, epoch)?;
        for step in 0..steps {
            pruning.on_step_begin(m)?;
            set_gradients(m, step);
            pruning.on_before_optimizer_step(m)?;
            pruning.on_step_end(m)?;
        }
        pruning.on_epoch_end(m)?;
    }
    pruning.on_train_end(m)
}

#[test]
fn a_later_pruner_takes_the_shapes_an_earlier_hidden_shrink_left() {
    // Hidden at the end of epoch 0, FFN units at the end of epoch 1: the FFN pruner keeps
    // reading importance from `intermediate.dense.weight`, now [6, 5].
    let yaml = format!(
        "{}
        - !Pruner
            prune_type: gradient_sensitivity
            names: ['encoder.layer.*.intermediate.dense.weight']
            start_epoch: 0
            end_epoch: 1
            parameters: {{target: 4, stride: 1, importance_metric: weighted_gradient}}",
        hidden_pruner(Naming::Bert, 5)
    );
    let mut m = model(Naming::Bert, None);
    let mut pruning = Pruning::new(config(&yaml)).unwrap();
    run_epochs(&mut pruning, &mut m, 2, 2).unwrap();
    let shape = |n: &str| infos(&m).into_iter().find(|w| w.name == n).unwrap().shape;
    assert_eq!(
        shape("encoder.layer.1.intermediate.dense.weight"),
        vec![4, 5]
    );
    assert_eq!(shape("encoder.layer.1.output.dense.weight"), vec![5, 4]);
    assert_eq!(pruning.shrinks(), 2);
}

#[test]
fn a_pruner_whose_axis_an_earlier_shrink_would_change_is_refused_before_it() {
    // A pruner grouping the query weights' input columns (the hidden axis) past epoch 0, while
    // the hidden pruner removes some of them at the end of epoch 0, after two steps of
    // importance: refused at that shrink, with the model as it was.
    let yaml = format!(
        "{}
        - !Pruner
            prune_type: gradient_sensitivity
            names: ['encoder.layer.*.attention.self.query.weight']
            start_epoch: 0
            end_epoch: 1
            parameters: {{target: 3, stride: 1, transpose: True, importance_metric: weighted_gradient}}",
        hidden_pruner(Naming::Bert, 5)
    );
    let mut m = model(Naming::Bert, None);
    let before = snapshot(&m);
    let mut pruning = Pruning::new(config(&yaml)).unwrap();
    let err = run_epochs(&mut pruning, &mut m, 2, 2)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("another pruner shrank axis 1 of `encoder.layer.0.attention.self.query.weight` (8 -> 5)"),
        "{err}"
    );
    assert_eq!(snapshot(&m), before);
    assert_eq!(pruning.shrinks(), 0);
}
