//! tch's own ResNet-18 (`tch::vision::resnet::resnet18`, torchvision names) pruned to half of
//! every block's inner channels by weight norms: the kept filters are the largest by L1 norm,
//! conv2, the batch norm and its running statistics follow, the model still runs on a batch of
//! 3 x 64 x 64 images, and the parameter count is exactly what the kept channels give. A pruner
//! naming a channel of a residual sum is refused, naming the sum, with nothing changed. With
//! burn too: the burn ResNet-18 of the cnn example (torchvision names) loads tch's weights from
//! safetensors, computes the same logits, keeps the same channels from them, and an element-wise
//! config written for torchvision names masks the same weights on both.

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

#[cfg(feature = "burn")]
#[path = "../examples/cnn/burn_resnet.rs"]
mod burn_resnet;

/// The same ResNet-18 on both frameworks: tch's, with its batch norms given non-trivial
/// statistics, saved as safetensors and loaded by name into the burn ResNet-18.
#[cfg(feature = "burn")]
mod same_weights {
    use super::burn_resnet::ResNet18;
    use super::*;
    use burn::tensor::TensorData;
    use prune::burn::BurnModel;
    use prune::io::{from_model, into_model, read_f32, write_f32, TensorMap};
    use prune::{Pruning, TensorBackend};

    type Burn = BurnModel<ResNet18>;

    fn both() -> (nn::VarStore, nn::FuncT<'static>, Burn) {
        let (vs, net) = resnet18();
        tch::no_grad(|| {
            for (name, t) in vs.variables() {
                let mut t = t;
                let noise = Tensor::rand_like(&t);
                if name.ends_with("running_var") {
                    t.copy_(&(noise + 0.5));
                } else if name.ends_with("running_mean")
                    || name.contains("bn") && name.ends_with("bias")
                {
                    t.copy_(&((noise - 0.5) * 0.2));
                } else if name.contains("bn") && name.ends_with("weight") {
                    t.copy_(&(noise * 0.4 + 0.8));
                }
            }
        });
        // One file per call: the tests of this module run at once.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "prune-resnet18-{}-{call}.safetensors",
            std::process::id()
        ));
        write_f32(
            &path,
            &from_model(&TorchModel::new(&vs)).unwrap(),
            &Default::default(),
        )
        .unwrap();
        let (tensors, _) = read_f32(&path).unwrap();
        std::fs::remove_file(&path).ok();
        let mut burn = BurnModel::new(ResNet18::new(10, &burn::tensor::Device::flex()));
        into_model(&mut burn, &tensors).unwrap();
        (vs, net, burn)
    }

    /// Two images of 3 x 64 x 64 from a fixed sequence, and the logits of both networks.
    fn logits(net: &nn::FuncT<'static>, burn: &Burn) -> (Vec<f32>, Vec<f32>) {
        let pixels: Vec<f32> = (0..2 * 3 * 64 * 64)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
            .collect();
        let x = Tensor::from_slice(&pixels).view([2, 3, 64, 64]);
        let torch: Vec<f32> =
            Vec::try_from(&tch::no_grad(|| net.forward_t(&x, false)).flatten(0, -1)).unwrap();
        let x = burn::tensor::Tensor::<4>::from_data(
            TensorData::new(pixels, [2, 3, 64, 64]),
            &burn::tensor::Device::flex(),
        );
        let out = burn.module().forward(x).into_data();
        (torch, out.convert::<f32>().try_to_vec::<f32>().unwrap())
    }

    fn assert_close(what: &str, a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len(), "{what}");
        let scale = a.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= 1e-4 * scale,
            "{what}: logits differ by {worst} (scale {scale})"
        );
    }

    fn one_shot<B: TensorBackend, M: Model<Backend = B>>(p: &mut Pruning<B>, m: &mut M) {
        p.on_train_begin(m).unwrap();
        p.on_epoch_begin(m, 0).unwrap();
        p.on_epoch_end(m).unwrap();
        p.on_train_end(m).unwrap();
    }

    fn config(path: &str) -> prune::PruningConfig {
        prune::PruningConfig::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_string() + path)
            .unwrap()
    }

    fn weights_of_both(vs: &nn::VarStore, burn: &Burn) -> (TensorMap, TensorMap) {
        (
            from_model(&TorchModel::new(vs)).unwrap(),
            from_model(burn).unwrap(),
        )
    }

    #[test]
    fn burn_resnet18_loads_tchs_weights_computes_its_logits_and_keeps_the_same_channels() {
        let (vs, net, mut burn) = both();
        let (torch_logits, burn_logits) = logits(&net, &burn);
        assert_close("dense", &torch_logits, &burn_logits);

        let yaml = config("examples/configs/cnn_resnet18.yaml");
        let mut on_torch = TorchPruning::new(yaml.clone()).unwrap();
        one_shot(&mut on_torch, &mut TorchModel::new(&vs));
        let mut on_burn = prune::burn::BurnPruning::new(yaml).unwrap();
        one_shot(&mut on_burn, &mut burn);

        let kept = |o: Vec<prune::LayerOutcome>| -> Vec<(usize, usize, Vec<usize>)> {
            o.into_iter()
                .map(|o| (o.pruner, o.layer, o.kept.unwrap()))
                .collect()
        };
        let torch_kept = kept(on_torch.structured_outcome());
        assert_eq!(torch_kept.len(), 8);
        assert_eq!(torch_kept, kept(on_burn.structured_outcome()));
        let (torch_weights, burn_weights) = weights_of_both(&vs, &burn);
        assert_eq!(
            torch_weights["layer3.1.conv2.weight"].shape,
            vec![256, 128, 3, 3]
        );
        assert!(torch_weights == burn_weights, "the pruned weights differ");
        let (torch_logits, burn_logits) = logits(&net, &burn);
        assert_close("pruned", &torch_logits, &burn_logits);
    }

    #[test]
    fn an_element_wise_config_for_torchvision_names_runs_on_both_with_the_same_masks() {
        let (vs, _net, mut burn) = both();
        let yaml = prune::PruningConfig::from_yaml(
            "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      \
             target_sparsity: 0.5\n      pruners:\n        - !Pruner\n            prune_type: basic_magnitude\n            \
             names: ['layer1.0.conv1.weight', 'layer4.*.conv2.weight', 'fc.weight']\n",
        )
        .unwrap();
        let mut on_torch = TorchPruning::new(yaml.clone()).unwrap();
        let mut torch_model = TorchModel::new(&vs);
        one_shot(&mut on_torch, &mut torch_model);
        let mut on_burn = prune::burn::BurnPruning::new(yaml).unwrap();
        one_shot(&mut on_burn, &mut burn);
        // Each report lists the layers in its framework's order (tch's sorted by name).
        let by_name = |mut r: prune::SparsityReport| {
            r.layers.sort_by(|a, b| a.name.cmp(&b.name));
            r.layers
        };
        let report_torch = by_name(on_torch.report(&torch_model).unwrap());
        assert_eq!(report_torch.len(), 4);
        assert_eq!(report_torch, by_name(on_burn.report(&burn).unwrap()));
        let (torch_weights, burn_weights) = weights_of_both(&vs, &burn);
        let fc = &torch_weights["fc.weight"].data;
        assert_eq!(fc.iter().filter(|v| **v == 0.0).count(), fc.len() / 2);
        assert!(torch_weights == burn_weights, "the masked weights differ");
    }
}
