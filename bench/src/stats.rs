//! Percentiles of a sample, nearest-rank: the reported p99 of 40 runs is
//! one of the 40 values (the largest), never an interpolation, so a
//! percentile always names a latency that really happened.

/// The `p`-th percentile (0 < p <= 100) by nearest rank; `NaN` when empty.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn p50(samples: &[f64]) -> f64 {
    percentile(samples, 50.0)
}

pub fn p99(samples: &[f64]) -> f64 {
    percentile(samples, 99.0)
}

pub fn max(samples: &[f64]) -> f64 {
    percentile(samples, 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(p50(&s), 5.0);
        assert_eq!(p99(&s), 10.0);
        assert_eq!(max(&s), 10.0);
        assert_eq!(percentile(&s, 10.0), 1.0);
        assert!(p50(&[]).is_nan());
    }
}
