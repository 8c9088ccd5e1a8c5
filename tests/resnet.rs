//! tch's own ResNet-18 (`tch::vision::resnet::resnet18`, torchvision names) pruned to half of
//! every block's inner channels by weight norms: the kept filters are the largest by L1 norm,
//! conv2, the batch norm and its running statistics follow, the model still runs on a batch of
//! 3 x 64 x 64 images, and the parameter count is exactly what the kept channels give. A pruner
//! naming a channel of a residual sum is refused, naming the sum, with nothing changed.

#![cfg(feature = "torch")]

use prune::torch::tch::{self, nn, nn::ModuleT, Device, Kind, Tensor};
use prune::torch::{TorchModel, TorchPruning};
use prune::Model;

/// Stage `layerN` of ResNet-18 and its channel count.
const STAGES: [(usize, i64); 4] = [(1, 64), (2, 128), (3, 256), (4, 512)];

/// One pruner per stage: every block's conv1 keeps half its filters by L1 norm.
fn half_inner_channels() -> String {
    let mut yaml = String::from(
        "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      pruners:\n",
    );
    for (stage, channels) in STAGES {
        yaml += &format!(
            "        - !Pruner\n            prune_type: gradient_sensitivity\n            \
             names: ['layer{stage}.*.conv1.weight']\n            \
             parameters: {{target: {}, stride: 1, importance_metric: l1_norm}}\n",
            channels / 2
        );
    }
    yaml
}

fn resnet18() -> (nn::VarStore, nn::FuncT<'static>) {
    tch::manual_seed(7);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = tch::vision::resnet::resnet18(&vs.root(), 10);
    (vs, net)
}

fn shrink(pruning: &mut TorchPruning, model: &mut TorchModel<&nn::VarStore>) -> prune::Result<()> {
    pruning.on_train_begin(model)?;
    pruning.on_epoch_begin(model, 0)?;
    pruning.on_epoch_end(model)
}

fn trainable_params(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(Tensor::numel)
        .sum::<usize>() as i64
}

fn values(vs: &nn::VarStore) -> Vec<(String, Vec<f32>)> {
    let mut all: Vec<(String, Vec<f32>)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, Vec::<f32>::try_from(&t.flatten(0, -1)).unwrap()))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// The `k` filters of largest L1 norm, ascending (ties by index), from the weights before.
fn largest_l1(weight: &Tensor, k: usize) -> Vec<usize> {
    let norms: Vec<f32> = Vec::<f32>::try_from(&weight.abs().sum_dim_intlist(
        &[1i64, 2, 3][..],
        false,
        Kind::Float,
    ))
    .unwrap();
    let mut order: Vec<usize> = (0..norms.len()).collect();
    order.sort_by(|a, b| norms[*b].total_cmp(&norms[*a]).then(a.cmp(b)));
    let mut keep = order[..k].to_vec();
    keep.sort();
    keep
}

#[test]
fn resnet18_keeps_half_of_every_blocks_inner_channels_and_still_runs() {
    let (vs, net) = resnet18();
    let dense = trainable_params(&vs);
    let vars = vs.variables();
    // (pruner, layer) of each block: pruner `stage - 1` matches the stage's two blocks in order.
    let before: Vec<(usize, usize, String, Vec<usize>, Tensor)> = STAGES
        .iter()
        .flat_map(|(s, c)| (0..2).map(move |b| (*s, b, *c)))
        .map(|(s, b, c)| {
            let p = format!("layer{s}.{b}");
            let w = &vars[&format!("{p}.conv1.weight")];
            let bn = vars[&format!("{p}.bn1.running_var")].copy();
            (s - 1, b, p, largest_l1(w, c as usize / 2), bn)
        })
        .collect();
    let mut pruning = TorchPruning::from_yaml(&half_inner_channels()).unwrap();
    let mut model = TorchModel::new(&vs);
    shrink(&mut pruning, &mut model).unwrap();

    let mut removed = 0i64;
    for (stage, c) in STAGES {
        for block in 0..2 {
            let c_in = if block == 0 && stage > 1 { c / 2 } else { c };
            // conv1 loses c/2 filters of c_in x 3 x 3, bn1 c/2 scales and shifts, conv2 c/2
            // input channels of each of its c filters.
            removed += c / 2 * (c_in * 9 + 2 + c * 9);
        }
    }
    assert_eq!(trainable_params(&vs), dense - removed);
    let vars = vs.variables();
    for (pruner, layer, p, keep, running_var) in &before {
        let c = keep.len() as i64;
        assert_eq!(vars[&format!("{p}.conv1.weight")].size()[0], c, "{p}");
        assert_eq!(vars[&format!("{p}.conv2.weight")].size()[1], c, "{p}");
        let kept = pruning
            .structured_outcome()
            .into_iter()
            .find(|o| o.pruner == *pruner && o.layer == *layer)
            .and_then(|o| o.kept)
            .unwrap();
        assert_eq!(&kept, keep, "{p}: not the filters of largest L1 norm");
        let index = Tensor::from_slice(&keep.iter().map(|&k| k as i64).collect::<Vec<_>>());
        let expected = running_var.index_select(0, &index);
        let got = &vars[&format!("{p}.bn1.running_var")];
        assert!(got.allclose(&expected, 0.0, 0.0, false), "{p}: running_var");
    }
    let out = net.forward_t(
        &Tensor::randn([8, 3, 64, 64], (Kind::Float, Device::Cpu)),
        false,
    );
    assert_eq!(out.size(), vec![8, 10]);
    assert!(bool::try_from(out.isfinite().all()).unwrap());
}

#[test]
fn a_channel_of_a_residual_sum_is_refused_naming_the_sum_and_nothing_changes() {
    let (vs, _net) = resnet18();
    let before = values(&vs);
    // The stage-1 pruner is valid; the second writes into stage 2's residual sum.
    let yaml = half_inner_channels()
        + "        - !Pruner\n            prune_type: gradient_sensitivity\n            \
           names: ['layer2.1.conv2.weight']\n            \
           parameters: {target: 64, stride: 1, importance_metric: l1_norm}\n";
    let mut pruning = TorchPruning::from_yaml(&yaml).unwrap();
    let mut model = TorchModel::new(&vs);
    let err = shrink(&mut pruning, &mut model).unwrap_err().to_string();
    assert!(
        err.contains("`layer2.1.conv2.weight` axis 0 cannot be shrunk")
            && err.contains("residual sum of stage `layer2`"),
        "{err}"
    );
    assert_eq!(values(&vs), before);
    assert_eq!(model.weights().unwrap().len(), vs.variables().len());
}
