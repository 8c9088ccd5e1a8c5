//! The conformance suite on the reference backend, with a host-side SGD/Adam on a quadratic loss.

use prune_core::testing::conformance::Harness;
use prune_core::testing::reference::{RefModel, RefTensor};
use prune_core::{Layout, Model, Pruning, Reference, Result};
use std::cell::RefCell;
use std::collections::HashMap;

/// Optimizer state per weight: (first moment or momentum, second moment), and the Adam step.
#[derive(Default)]
struct OptState {
    moments: HashMap<String, (Vec<f32>, Vec<f32>)>,
    t: i32,
}

#[derive(Default)]
struct RefHarness {
    state: RefCell<OptState>,
}

impl Harness for RefHarness {
    type Model = RefModel;

    fn build(&self, fc1: &[f32], fc2: &[f32], conv: &[f32]) -> RefModel {
        *self.state.borrow_mut() = OptState::default();
        let mut m = RefModel::default();
        // Stored transposed like burn's Linear, to exercise the layout mapping.
        m.push("fc1.weight", &[8, 16], fc1.to_vec(), Layout::Transposed);
        m.push("fc1.bias", &[8], vec![0.0; 8], Layout::Canonical);
        m.push("fc2.weight", &[4, 8], fc2.to_vec(), Layout::Canonical);
        m.push("fc2.bias", &[4], vec![0.0; 4], Layout::Canonical);
        // Stored [kh, kw, in, out] like a TensorFlow conv kernel.
        m.push("conv.weight", &[4, 2, 3, 3], conv.to_vec(), Layout::Hwio);
        m
    }

    fn train_step(
        &self,
        model: &mut RefModel,
        pruning: &mut Pruning<Reference>,
        adam: bool,
    ) -> Result<()> {
        pruning.on_step_begin(model)?;
        // Loss 0.5 * sum((w - 0.3)^2) over fc1, fc2: its gradient w - 0.3 is non-zero at pruned weights.
        let grads: Vec<(prune_core::WeightId, RefTensor)> = ["fc1.weight", "fc2.weight"]
            .iter()
            .map(|n| {
                let w = model.weight(n).unwrap();
                (
                    model.weight_id(n).unwrap(),
                    RefTensor {
                        data: w.data.iter().map(|x| x - 0.3).collect(),
                        shape: w.shape,
                    },
                )
            })
            .collect();
        model.set_gradients(grads)?;
        pruning.on_before_optimizer_step(model)?;
        let mut st = self.state.borrow_mut();
        st.t += 1;
        let t = st.t;
        for p in model.params.iter_mut() {
            let Some(g) = p.grad.take() else { continue };
            let n = g.data.len();
            let (m, v) = st
                .moments
                .entry(p.info.name.clone())
                .or_insert_with(|| (vec![0.0; n], vec![0.0; n]));
            for i in 0..n {
                let step = if adam {
                    m[i] = 0.9 * m[i] + 0.1 * g.data[i];
                    v[i] = 0.999 * v[i] + 0.001 * g.data[i] * g.data[i];
                    let (mh, vh) = (
                        m[i] / (1.0 - 0.9f32.powi(t)),
                        v[i] / (1.0 - 0.999f32.powi(t)),
                    );
                    0.01 * mh / (vh.sqrt() + 1e-8)
                } else {
                    m[i] = 0.9 * m[i] + g.data[i];
                    0.05 * m[i]
                };
                p.value.data[i] -= step;
            }
        }
        drop(st);
        pruning.on_step_end(model)
    }
}

prune_core::conformance_suite!(RefHarness::default());
