//! Whether a weight's zeros follow a pattern, over the same canonical view and groups the
//! selection uses (`[out, in * kh * kw]`; N:M groups of M consecutive inputs; tiles of
//! `rows x cols`).

use crate::config::Pattern;
use crate::model::host::view_2d;

/// How a weight's zeros fit one pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conformance {
    /// Groups (N:M) or tiles in the weight.
    pub groups: usize,
    /// Groups that hold the pattern: N:M, at most N non-zeros; tiles, all zero.
    pub holding: usize,
    /// Whether the whole weight holds it: every N:M group, or every zero inside an all-zero
    /// tile.
    pub holds: bool,
}

/// How the zeros of a weight of canonical `shape` fit `pattern`; `zero(i)` tells whether
/// element `i` (row-major) is zero. An error when the pattern does not divide the shape.
pub fn conformance(
    shape: &[usize],
    pattern: Pattern,
    zero: impl Fn(usize) -> bool,
) -> Result<Conformance, String> {
    // An empty weight holds every pattern (and its other dimensions may not fit a usize).
    if shape.contains(&0) {
        return Ok(Conformance {
            groups: 0,
            holding: 0,
            holds: true,
        });
    }
    let (rows, cols) = view_2d(shape);
    match pattern {
        Pattern::NOfM { n, m } => {
            if m == 0 || n > m || !cols.is_multiple_of(m) {
                return Err(format!("{n}:{m} groups do not divide {cols} inputs"));
            }
            let groups = rows * cols / m;
            let holding = (0..groups)
                .filter(|g| (0..m).filter(|j| !zero(g * m + j)).count() <= n)
                .count();
            Ok(Conformance {
                groups,
                holding,
                holds: holding == groups,
            })
        }
        Pattern::Tile { rows: br, cols: bc } => {
            if br == 0 || bc == 0 || !rows.is_multiple_of(br) || !cols.is_multiple_of(bc) {
                return Err(format!("{br}x{bc} tiles do not divide [{rows}, {cols}]"));
            }
            let (gr, gc) = (rows / br, cols / bc);
            let (mut holding, mut stray) = (0usize, false);
            for t in 0..gr * gc {
                let (r0, c0) = ((t / gc) * br, (t % gc) * bc);
                let zeros = (0..br * bc)
                    .filter(|k| zero((r0 + k / bc) * cols + c0 + k % bc))
                    .count();
                if zeros == br * bc {
                    holding += 1;
                } else if zeros > 0 {
                    stray = true;
                }
            }
            Ok(Conformance {
                groups: gr * gc,
                holding,
                holds: !stray,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_of_four_groups_are_counted() {
        // Row 0: groups [0 1 0 1] (holds), [1 1 1 0] (does not).
        let v = [0., 1., 0., 1., 1., 1., 1., 0.];
        let c = conformance(&[1, 8], Pattern::NOfM { n: 2, m: 4 }, |i| v[i] == 0.0).unwrap();
        assert_eq!((c.groups, c.holding, c.holds), (2, 1, false));
        let w = [0., 1., 0., 1., 0., 0., 1., 0.];
        let c = conformance(&[1, 8], Pattern::NOfM { n: 2, m: 4 }, |i| w[i] == 0.0).unwrap();
        assert!(c.holds);
        assert!(conformance(&[1, 6], Pattern::NOfM { n: 2, m: 4 }, |_| true).is_err());
    }

    #[test]
    fn zeros_must_fill_whole_tiles() {
        // [2, 4] in 2x2 tiles: left tile all zero, right tile one zero.
        let v = [0., 0., 1., 0., 0., 0., 1., 1.];
        let c = conformance(&[2, 4], Pattern::Tile { rows: 2, cols: 2 }, |i| v[i] == 0.0).unwrap();
        assert_eq!((c.groups, c.holding, c.holds), (2, 1, false));
        let w = [0., 0., 1., 2., 0., 0., 1., 1.];
        let c = conformance(&[2, 4], Pattern::Tile { rows: 2, cols: 2 }, |i| w[i] == 0.0).unwrap();
        assert!(c.holds);
    }
}
