//! The torchvision ResNet recogniser: `conv1`, `bn1`, `layer{1..4}.{block}.conv{k}`,
//! `bn{k}`, `downsample.{0,1}`, `fc` (BasicBlock and Bottleneck alike).
//!
//! Inside a block, `conv{k}` feeds `conv{k+1}` through `bn{k}`: those inner channels prune as
//! one group. The block's last conv, its downsample and the stem write into the residual sum
//! of a stage; every block's first conv, the next stage's downsample and `fc` read it. Those
//! channels are fixed: a shrink of them is refused, naming the sum.

use super::layers::{layer, norm_slices, Kind};
use crate::model::{Coupling, CouplingGroup, FixedSlice, Slice, WeightInfo};

/// Coupling of a torchvision-named ResNet; empty for any other model.
pub fn resnet_coupling(weights: &[WeightInfo]) -> Coupling {
    let has = |n: &str| weights.iter().any(|w| w.name == n);
    let mut out = Coupling::default();
    if !(has("conv1.weight") && has("fc.weight") && has("layer1.0.conv1.weight")) {
        return out;
    }
    let fix = |out: &mut Coupling, weight: String, axis: usize, reason: String| {
        if has(&weight) {
            out.fixed.push(FixedSlice {
                weight,
                axis,
                reason,
            });
        }
    };
    let writes = |stage: usize| {
        format!(
            "its output channels are added into the residual sum of stage `layer{stage}` \
             (every block's output plus its shortcut), which can only shrink as a whole"
        )
    };
    let reads = |stage: usize| {
        format!(
            "its input channels read the residual sum of stage `layer{stage}`, which can only \
             shrink as a whole"
        )
    };
    fix(&mut out, "conv1.weight".into(), 0, writes(1));
    let mut stage = 1;
    while has(&format!("layer{stage}.0.conv1.weight")) {
        let mut block = 0;
        while has(&format!("layer{stage}.{block}.conv1.weight")) {
            let p = format!("layer{stage}.{block}");
            let convs = (1..)
                .take_while(|k| has(&format!("{p}.conv{k}.weight")))
                .count();
            for k in 1..convs {
                let (conv, norm) = (format!("{p}.conv{k}"), format!("{p}.bn{k}"));
                let mut members = vec![Slice::new(format!("{conv}.weight"), 0)];
                if let Some(n) = layer(&norm, weights).filter(|l| l.kind == Kind::Norm) {
                    members.extend(norm_slices(&n, weights));
                }
                members.push(Slice::new(format!("{p}.conv{}.weight", k + 1), 1));
                out.groups.push(CouplingGroup { members });
            }
            fix(
                &mut out,
                format!("{p}.conv{convs}.weight"),
                0,
                writes(stage),
            );
            fix(
                &mut out,
                format!("{p}.downsample.0.weight"),
                0,
                writes(stage),
            );
            let input = if block == 0 && stage > 1 {
                stage - 1
            } else {
                stage
            };
            fix(&mut out, format!("{p}.conv1.weight"), 1, reads(input));
            fix(
                &mut out,
                format!("{p}.downsample.0.weight"),
                1,
                reads(input),
            );
            block += 1;
        }
        stage += 1;
    }
    fix(&mut out, "fc.weight".into(), 1, reads(stage - 1));
    out
}
