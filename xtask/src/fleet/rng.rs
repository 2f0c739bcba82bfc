//! The trace's random numbers: a small deterministic generator, so that the same seed gives the
//! same trace on any machine.

use std::time::Duration;

/// splitmix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform number in `0..1`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform duration in `0..max`.
    pub fn within(&mut self, max: Duration) -> Duration {
        max.mul_f64(self.unit())
    }

    /// Index `0..n` drawn from a Zipf distribution with exponent 1.
    pub fn zipf(&mut self, n: usize) -> usize {
        let total: f64 = (1..=n).map(|k| 1.0 / k as f64).sum();
        let mut target = self.unit() * total;
        for k in 1..=n {
            target -= 1.0 / k as f64;
            if target <= 0.0 {
                return k - 1;
            }
        }
        n - 1
    }

    /// Index `0..weights.len()` drawn in proportion to `weights`.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut target = (self.unit() * f64::from(total)) as u32;
        for (i, w) in weights.iter().enumerate() {
            if target < *w {
                return i;
            }
            target -= w;
        }
        weights.len().saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_favours_the_first_items() {
        let mut rng = Rng(1);
        let mut counts = [0u32; 4];
        for _ in 0..10_000 {
            counts[rng.zipf(4)] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[2] && counts[2] > counts[3]);
    }

    #[test]
    fn weights_are_followed() {
        let mut rng = Rng(3);
        let mut counts = [0u32; 3];
        for _ in 0..10_000 {
            counts[rng.weighted(&[6, 3, 1])] += 1;
        }
        assert!(counts[0] > 5_500 && counts[0] < 6_500, "{counts:?}");
        assert!(counts[2] > 700 && counts[2] < 1_300, "{counts:?}");
        assert_eq!(Rng(3).weighted(&[0, 0, 5]), 2);
    }
}
