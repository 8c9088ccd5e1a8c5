//! Inputs that used to panic inside the library now give errors naming what is wrong.

use prune_core::testing::reference::RefModel;
use prune_core::{Layout, Pruning, Reference};

/// A structured pruner naming a 0-d weight: there is no row or column to keep.
#[test]
fn a_structured_pruner_on_a_scalar_weight_is_refused() {
    let mut m = RefModel::default();
    m.push("scale", &[], vec![2.0], Layout::Canonical);
    m.push("fc.weight", &[4, 2], vec![1.0; 8], Layout::Canonical);
    let yaml = "
pruning:
  approach:
    weight_compression:
      start_epoch: 0
      end_epoch: 0
      pruners:
        - !Pruner
            prune_type: gradient_sensitivity
            names: ['scale']
            parameters: {target: 1, stride: 1, importance_metric: l1_norm}
";
    let mut p: Pruning<Reference> = Pruning::from_yaml(yaml).unwrap();
    let err = p.on_epoch_begin(&mut m, 0).unwrap_err().to_string();
    assert!(
        err.contains("pruner 0 (structured)")
            && err.contains("`scale` has shape []")
            && err.contains("rank 0 has no axis 0"),
        "{err}"
    );
}
