//! A seeded 64-bit linear congruential generator: reproducible values and shuffles, the same on
//! every platform and backend, with no dependency.

/// Knuth's MMIX LCG.
#[derive(Debug, Clone)]
pub struct Lcg(u64);

impl Lcg {
    /// A generator whose state starts at `seed`.
    pub fn new(seed: u64) -> Self {
        Lcg(seed)
    }

    /// The next state.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0
    }

    /// The next value in [-1, 1), from the state's top 24 bits.
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// `n` deterministic values in [-1, 1) from `seed`.
pub fn uniform_values(seed: u64, n: usize) -> Vec<f32> {
    let mut g = Lcg::new(seed);
    g.next_u64();
    (0..n).map(|_| g.uniform()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_in_range_and_repeat_per_seed() {
        let a = uniform_values(7, 1000);
        assert!(a.iter().all(|v| (-1.0..1.0).contains(v)));
        assert_eq!(a, uniform_values(7, 1000));
        assert_ne!(a, uniform_values(8, 1000));
    }
}
