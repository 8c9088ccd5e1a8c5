//! The epoch schedule: a pure function from epoch to target sparsity.

use crate::config::{Pattern, PruneType, ResolvedPruner};

/// Gradual sparsity schedule of one pruner (INC's formula, corrected to reach the target at end_epoch).
///
/// With `n = end - start + 1` scheduled epochs and `p = epoch - start + 1` of them begun, the
/// sparsity is `initial + (target - initial) * k / n` where `k = floor(p / frequency) * frequency`,
/// except that the end epoch always gives `target`. Before `start` it is 0; after `end`, `target`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Sparsity at the first update.
    pub initial: f64,
    /// Sparsity from end_epoch on.
    pub target: f64,
    /// First scheduled epoch.
    pub start: usize,
    /// Last scheduled epoch (inclusive).
    pub end: usize,
    /// Epochs between updates (> 0; fractions below 1 mean every epoch).
    pub frequency: f64,
}

impl Schedule {
    /// The schedule of a resolved pruner.
    pub fn of(p: &ResolvedPruner) -> Self {
        Schedule {
            initial: p.initial_sparsity,
            target: p.target_sparsity,
            start: p.start_epoch,
            end: p.end_epoch,
            frequency: p.frequency,
        }
    }

    /// Target sparsity in force during `epoch`.
    pub fn sparsity_at(&self, epoch: usize) -> f64 {
        if epoch < self.start {
            return 0.0;
        }
        if epoch >= self.end {
            return self.target;
        }
        let n = (self.end - self.start + 1) as f64;
        let begun = (epoch - self.start + 1) as f64;
        let f = self.frequency.max(f64::MIN_POSITIVE);
        // A small epsilon keeps e.g. 3 / 0.1 from flooring to 29.
        let k = ((begun / f + 1e-9).floor() * f).min(n);
        self.initial + (self.target - self.initial) * k / n
    }

    /// Whether masks are (re)computed at the start of `epoch`.
    pub fn acts_at(&self, epoch: usize) -> bool {
        (self.start..=self.end).contains(&epoch)
    }
}

/// The sparsity a pruner is planned to hold during `epoch`: the schedule's value for tile
/// patterns, `(M - N) / M` for N:M patterns once the schedule has started acting, and `None`
/// for pattern_lock (it keeps whatever zeros the model has).
pub fn planned_sparsity(p: &ResolvedPruner, epoch: usize) -> Option<f64> {
    let s = Schedule::of(p).sparsity_at(epoch);
    match (p.prune_type, p.pattern) {
        (PruneType::PatternLock, _) => None,
        (_, Pattern::NOfM { n, m }) => Some(if s > 0.0 {
            (m - n) as f64 / m as f64
        } else {
            0.0
        }),
        _ => Some(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(initial: f64, target: f64, start: usize, end: usize, frequency: f64) -> Schedule {
        Schedule {
            initial,
            target,
            start,
            end,
            frequency,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn inc_example_frequency_one() {
        let sch = s(0.0, 0.9, 0, 2, 1.0);
        let got: Vec<f64> = (0..4).map(|e| sch.sparsity_at(e)).collect();
        for (g, want) in got.iter().zip([0.3, 0.6, 0.9, 0.9]) {
            assert!(close(*g, want), "{got:?}");
        }
    }

    #[test]
    fn frequency_two_still_reaches_target() {
        let sch = s(0.0, 0.9, 0, 2, 2.0);
        assert!(close(sch.sparsity_at(0), 0.0));
        assert!(close(sch.sparsity_at(1), 0.6));
        assert!(close(sch.sparsity_at(2), 0.9));
    }

    #[test]
    fn before_start_is_zero_and_fraction_means_every_epoch() {
        let sch = s(0.1, 0.5, 2, 5, 0.1);
        assert_eq!(sch.sparsity_at(1), 0.0);
        assert!(close(sch.sparsity_at(2), 0.1 + 0.4 * 0.25));
        assert!(close(sch.sparsity_at(4), 0.1 + 0.4 * 0.75));
        assert!(close(sch.sparsity_at(5), 0.5));
        assert!(!sch.acts_at(6) && sch.acts_at(2));
    }

    #[test]
    fn monotone_for_many_settings() {
        for f in [0.5, 1.0, 2.0, 3.0, 7.0] {
            for end in 0..8 {
                let sch = s(0.05, 0.95, 0, end, f);
                let v: Vec<f64> = (0..10).map(|e| sch.sparsity_at(e)).collect();
                assert!(
                    v.windows(2).all(|w| w[0] <= w[1] + 1e-15),
                    "f={f} end={end}: {v:?}"
                );
                assert!(close(sch.sparsity_at(end), 0.95));
            }
        }
    }
}
