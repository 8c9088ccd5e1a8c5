//! The conformance suite on TensorFlow: a graph built from Rust with Keras-style variables
//! (`fc1/kernel` [in, out], `conv/kernel` [kh, kw, in, out]) and in-graph SGD momentum and Adam.

use prune_core::model::layout::to_stored;
use prune_core::testing::conformance::{values, Harness};
use prune_core::{Layout, Pruning, Result};
use prune_tf::train::{optimizer_step, Builder};
use prune_tf::{Tf, TfModel};
use prune_train::{AdamParams, OptimizerConfig};
use std::cell::RefCell;
use tensorflow::{ops, DataType, Operation, SessionRunArgs, Shape, Tensor};

struct Steps {
    x: Operation,
    sgd: Operation,
    adam: Operation,
}

#[derive(Default)]
struct TfHarness {
    steps: RefCell<Option<Steps>>,
}

fn err(e: tensorflow::Status) -> prune_core::PruneError {
    prune_core::PruneError::Backend {
        backend: "tf".into(),
        message: e.to_string(),
    }
}

impl Harness for TfHarness {
    type Model = TfModel;

    fn build(&self, fc1: &[f32], fc2: &[f32], conv: &[f32]) -> TfModel {
        let mut b = Builder::default();
        let w1 = b
            .variable(
                "fc1/kernel",
                &[16, 8],
                &to_stored(fc1.to_vec(), Layout::Transposed, &[8, 16]),
            )
            .unwrap();
        let b1 = b.variable("fc1/bias", &[8], &[0.0; 8]).unwrap();
        let w2 = b
            .variable(
                "fc2/kernel",
                &[8, 4],
                &to_stored(fc2.to_vec(), Layout::Transposed, &[4, 8]),
            )
            .unwrap();
        let b2 = b.variable("fc2/bias", &[4], &[0.0; 4]).unwrap();
        let wc = b
            .variable(
                "conv/kernel",
                &[3, 3, 2, 4],
                &to_stored(conv.to_vec(), Layout::Hwio, &[4, 2, 3, 3]),
            )
            .unwrap();
        let bc = b.variable("conv/bias", &[4], &[0.0; 4]).unwrap();
        let s = &mut b.scope;
        let x = ops::Placeholder::new()
            .dtype(DataType::Float)
            .shape(Shape::from(Some(vec![Some(2), Some(16)])))
            .build(s)
            .unwrap();
        let h = ops::mat_mul(x.clone(), w1.output().clone(), s).unwrap();
        let h = ops::relu(ops::bias_add(h, b1.output().clone(), s).unwrap(), s).unwrap();
        let y = ops::bias_add(
            ops::mat_mul(h, w2.output().clone(), s).unwrap(),
            b2.output().clone(),
            s,
        )
        .unwrap();
        let half = ops::constant(0.5f32, s).unwrap();
        let d = ops::sub(y, half, s).unwrap();
        let sq = ops::mul(d.clone(), d, s).unwrap();
        let axes = ops::constant(&[0i32, 1][..], s).unwrap();
        let loss = ops::sum(sq, axes, s).unwrap();
        let trained = [w1.clone(), b1.clone(), w2.clone(), b2.clone()];
        let sgd_cfg = OptimizerConfig::Sgd {
            learning_rate: 0.05,
            momentum: 0.9,
            weight_decay: 0.0,
            nesterov: false,
        };
        let adam_cfg = OptimizerConfig::Adam(AdamParams {
            learning_rate: 0.05,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            weight_decay: 0.0,
            amsgrad: false,
        });
        let sgd = optimizer_step(&mut b, loss.clone().into(), &trained, &sgd_cfg).unwrap();
        let adam = optimizer_step(&mut b, loss.into(), &trained, &adam_cfg).unwrap();
        *self.steps.borrow_mut() = Some(Steps { x, sgd, adam });
        b.finish(&[w1, b1, w2, b2, wc, bc]).unwrap()
    }

    fn train_step(&self, model: &mut TfModel, pruning: &mut Pruning<Tf>, adam: bool) -> Result<()> {
        pruning.on_step_begin(model)?;
        pruning.on_before_optimizer_step(model)?;
        let steps = self.steps.borrow();
        let steps = steps.as_ref().expect("built");
        let x = Tensor::new(&[2, 16])
            .with_values(&values(99, 32))
            .map_err(err)?;
        let mut args = SessionRunArgs::new();
        args.add_feed(&steps.x, 0, &x);
        args.add_target(if adam { &steps.adam } else { &steps.sgd });
        model.session().run(&mut args).map_err(err)?;
        pruning.on_step_end(model)
    }

    fn gradients(&self) -> bool {
        false
    }
}

prune_core::conformance_suite!(TfHarness::default());
