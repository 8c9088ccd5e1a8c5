//! Splitting one selection pass over the cores.

use std::ops::Range;

/// Below this many elements a pass runs on the calling thread.
const PARALLEL_FROM: usize = 1 << 18;

/// How many parts a pass over `n` elements takes: one per core, one for small inputs.
pub fn parts(n: usize) -> usize {
    if n < 2 * PARALLEL_FROM {
        return 1;
    }
    cores().min(n / PARALLEL_FROM).max(1)
}

/// The cores this process may use, asked once: the query reads cgroup files on Linux, far too
/// slow for a hook that runs every training step.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |c| c.get()))
}

/// `0..units` split into `parts` consecutive ranges whose starts are multiples of `align`
/// (the last range takes the rest; ranges may be empty).
pub fn split(units: usize, parts: usize, align: usize) -> Vec<Range<usize>> {
    let align = align.max(1);
    let step = units.div_ceil(parts.max(1)).div_ceil(align) * align;
    (0..parts.max(1))
        .map(|p| (p * step).min(units)..((p + 1) * step).min(units))
        .map(|r| if r.start >= units { units..units } else { r })
        .collect()
}

/// Runs `f` on every item at once, one scoped thread per item after the first, and returns
/// the results in item order.
pub fn each<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.into_iter().map(&f).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let mut rest = items.into_iter();
        let Some(first) = rest.next() else {
            return Vec::new();
        };
        let handles: Vec<_> = rest.map(|r| s.spawn(move || f(r))).collect();
        let mut out = vec![f(first)];
        out.extend(handles.into_iter().map(|h| match h.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }));
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_everything_once_at_aligned_starts() {
        for (units, parts, align) in [(0, 2, 64), (10, 3, 1), (1000, 2, 64), (130, 4, 64)] {
            let r = split(units, parts, align);
            assert_eq!(r.len(), parts);
            let mut next = 0;
            for part in &r {
                assert_eq!(part.start, next.min(units));
                assert!(part.start == units || part.start % align == 0);
                next = part.end;
            }
            assert_eq!(next, units);
        }
        let sums = each(split(100, 3, 8), |r: Range<usize>| r.sum::<usize>());
        assert_eq!(sums.iter().sum::<usize>(), (0..100).sum::<usize>());
    }
}
