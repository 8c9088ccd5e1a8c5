//! The conformance suite on libtorch, with torch's own SGD (momentum 0.9) and Adam.

use prune_core::testing::conformance::{values, Harness};
use prune_core::{Pruning, Result};
use prune_torch::{Torch, TorchModel};
use std::borrow::Borrow;
use std::cell::RefCell;
use tch::nn::{self, Module, OptimizerConfig, VarStore};
use tch::{Device, Tensor};

struct Fixture {
    vs: VarStore,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Borrow<VarStore> for Fixture {
    fn borrow(&self) -> &VarStore {
        &self.vs
    }
}

#[derive(Default)]
struct TorchHarness {
    optims: RefCell<Option<(nn::Optimizer, nn::Optimizer)>>,
}

fn set(t: &Tensor, values: &[f32]) {
    let v = Tensor::from_slice(values).reshape(t.size());
    tch::no_grad(|| t.shallow_clone().copy_(&v));
}

impl Harness for TorchHarness {
    type Model = TorchModel<Fixture>;

    fn build(&self, fc1: &[f32], fc2: &[f32], conv: &[f32]) -> TorchModel<Fixture> {
        let vs = VarStore::new(Device::Cpu);
        let root = vs.root();
        let l1 = nn::linear(&root / "fc1", 16, 8, Default::default());
        let l2 = nn::linear(&root / "fc2", 8, 4, Default::default());
        let c = nn::conv2d(&root / "conv", 2, 4, 3, Default::default());
        set(&l1.ws, fc1);
        set(&l2.ws, fc2);
        set(&c.ws, conv);
        for b in [&l1.bs, &l2.bs, &c.bs].into_iter().flatten() {
            let _ = tch::no_grad(|| b.shallow_clone().zero_());
        }
        let sgd = nn::Sgd {
            momentum: 0.9,
            ..Default::default()
        }
        .build(&vs, 0.05)
        .unwrap();
        let adam = nn::Adam::default().build(&vs, 0.05).unwrap();
        *self.optims.borrow_mut() = Some((sgd, adam));
        TorchModel::new(Fixture {
            vs,
            fc1: l1,
            fc2: l2,
        })
    }

    fn train_step(
        &self,
        model: &mut TorchModel<Fixture>,
        pruning: &mut Pruning<Torch>,
        adam: bool,
    ) -> Result<()> {
        pruning.on_step_begin(model)?;
        let mut optims = self.optims.borrow_mut();
        let (sgd, adam_opt) = optims.as_mut().expect("built");
        let opt = if adam { adam_opt } else { sgd };
        opt.zero_grad();
        let x = Tensor::from_slice(&values(99, 32)).reshape([2, 16]);
        let f = model.inner();
        let y = f.fc2.forward(&f.fc1.forward(&x).relu());
        let loss = (y - 0.5).pow_tensor_scalar(2).sum(tch::Kind::Float);
        loss.backward();
        pruning.on_before_optimizer_step(model)?;
        opt.step();
        pruning.on_step_end(model)
    }
}

prune_core::conformance_suite!(TorchHarness::default());
