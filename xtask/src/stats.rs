//! Order statistics of timing samples, shared by every benchmark.

/// A duration as the milliseconds the samples are kept in.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `p` quantile (0..=1) of `samples`, nearest rank; 0 when there are none.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return 0.0;
    }
    s[(((s.len() - 1) as f64) * p).round() as usize]
}

/// The median of `samples`; 0 when there are none.
pub fn median(samples: &[f64]) -> f64 {
    percentile(samples, 0.5)
}

/// The smallest and the largest of `samples`; 0 when there are none.
pub fn min_max(samples: &[f64]) -> (f64, f64) {
    (percentile(samples, 0.0), percentile(samples, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_ranks_of_the_sorted_samples() {
        let samples = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(median(&samples), 3.0);
        assert_eq!(percentile(&samples, 0.95), 5.0);
        assert_eq!(min_max(&samples), (1.0, 5.0));
        assert_eq!(median(&[]), 0.0);
    }
}
