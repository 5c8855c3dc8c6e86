//! The generator's pseudo-random numbers: wyrand, seeded per (seed, stream, block).
//!
//! A hand-rolled generator instead of `rand::rngs::StdRng` because the dataset must stay
//! byte-identical for the same arguments, and `rand` documents that `StdRng`'s algorithm (and its
//! `gen_range` sampling) may change between releases. wyrand is tiny, passes BigCrush, is fast even
//! in debug builds, and needs no floating-point functions whose last bits could differ by platform.

/// A seeded wyrand stream.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

/// SplitMix64's finaliser: spreads nearby seeds over the whole state space.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Rng {
    /// An independent stream for one (seed, stream, block) triple: every block of every file
    /// can be generated on its own, in any thread, in any order.
    pub(crate) fn derive(seed: u64, stream: u64, block: u64) -> Self {
        Self {
            state: mix(seed ^ mix(stream ^ mix(block))),
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.state) * u128::from(self.state ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-40 for our ranges).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_stream_and_another_block_another() {
        let mut a = Rng::derive(1, 2, 3);
        let mut b = Rng::derive(1, 2, 3);
        let mut c = Rng::derive(1, 2, 4);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn below_and_unit_stay_in_range_and_cover_it() {
        let mut r = Rng::derive(7, 0, 0);
        let mut seen = [0u32; 6];
        for _ in 0..60_000 {
            seen[r.below(6) as usize] += 1;
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert!(
            seen.iter().all(|&n| (9_000..11_000).contains(&n)),
            "{seen:?}"
        );
    }
}
