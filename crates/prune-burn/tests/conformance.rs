//! The conformance suite on burn (flex device, autodiff), with burn's own SGD and Adam.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use prune_burn::{Burn, BurnModel};
use prune_core::model::layout::transpose;
use prune_core::testing::conformance::{values, Harness};
use prune_core::{Pruning, Result};
use std::cell::RefCell;

#[derive(Module, Debug)]
struct Fixture {
    fc1: Linear,
    fc2: Linear,
    conv: Conv2d,
}

fn device() -> Device {
    Device::flex().autodiff()
}

/// A burn Linear with canonical [out, in] values (stored [in, out]).
fn linear(out: usize, inp: usize, canonical: &[f32], dev: &Device) -> Linear {
    let mut l = LinearConfig::new(inp, out).init(dev);
    let stored = transpose(canonical, out, inp);
    l.weight = Param::from_tensor(
        Tensor::<2>::from_data(TensorData::new(stored, [inp, out]), dev).require_grad(),
    );
    l.bias = Some(Param::from_tensor(
        Tensor::<1>::zeros([out], dev).require_grad(),
    ));
    l
}

struct BurnHarness {
    optims: RefCell<(ModuleOptimizer, ModuleOptimizer)>,
}

fn fresh_optimizers() -> (ModuleOptimizer, ModuleOptimizer) {
    use burn::optim::momentum::MomentumConfig;
    let sgd = SgdConfig::new().with_momentum(Some(MomentumConfig {
        momentum: 0.9,
        dampening: 0.0,
        nesterov: false,
    }));
    (sgd.init(), AdamConfig::new().init())
}

impl Default for BurnHarness {
    fn default() -> Self {
        BurnHarness {
            optims: RefCell::new(fresh_optimizers()),
        }
    }
}

impl Harness for BurnHarness {
    type Model = BurnModel<Fixture>;

    fn build(&self, fc1: &[f32], fc2: &[f32], conv: &[f32]) -> BurnModel<Fixture> {
        *self.optims.borrow_mut() = fresh_optimizers();
        let dev = device();
        let mut c = Conv2dConfig::new([2, 4], [3, 3]).init(&dev);
        c.weight = Param::from_tensor(
            Tensor::<4>::from_data(TensorData::new(conv.to_vec(), [4, 2, 3, 3]), &dev)
                .require_grad(),
        );
        BurnModel::new(Fixture {
            fc1: linear(8, 16, fc1, &dev),
            fc2: linear(4, 8, fc2, &dev),
            conv: c,
        })
    }

    fn train_step(
        &self,
        model: &mut BurnModel<Fixture>,
        pruning: &mut Pruning<Burn>,
        adam: bool,
    ) -> Result<()> {
        let dev = device();
        pruning.on_step_begin(model)?;
        let x = Tensor::<2>::from_data(TensorData::new(values(99, 32), [2, 16]), &dev);
        let m = model.module();
        let y = m.fc2.forward(relu(m.fc1.forward(x)));
        let loss = (y - 0.5).powf_scalar(2.0).sum();
        let grads = GradientsParams::from_grads(loss.backward(), model.module());
        model.set_grads(grads);
        pruning.on_before_optimizer_step(model)?;
        let mut optims = self.optims.borrow_mut();
        let optim = if adam { &mut optims.1 } else { &mut optims.0 };
        model.optimizer_step(optim, 0.05)?;
        pruning.on_step_end(model)
    }
}

prune_core::conformance_suite!(BurnHarness::default());
