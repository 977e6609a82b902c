//! Medians with confidence intervals, and the decisions taken on them. Everything Smelt chooses
//! by measurement (kernel variants, fusion decisions in `smelt tune`) decides here, one way:
//! alternatives are run interleaved, so a burst of load on a shared machine hits each of them;
//! each round gives one paired ratio; an alternative replaces the default only when the
//! confidence interval of the median ratio lies wholly below 1 less the machine's noise
//! floor. Otherwise the default stands: a tie is not a reason to change.
//!
//! The intervals are distribution-free (order statistics of the sample, binomial ranks), so
//! a run disturbed now and then widens them instead of moving them, as it would a mean's.
//!
//! ```
//! use smelt_hardware::stats::{Comparison, Interval};
//! let i = Interval::of(&[9.0, 10.0, 10.5, 11.0, 10.2, 9.8, 10.1, 30.0]);
//! assert!((i.median - 10.15).abs() < 1e-12); // the middle two of eight, averaged
//! assert!(i.lo >= 9.0 && i.hi <= 30.0 && i.lo <= i.median && i.median <= i.hi);
//!
//! // Eight rounds in which the alternative always ran 20% faster: it wins.
//! let default = [10.0, 11.0, 10.5, 12.0, 10.2, 10.8, 10.1, 10.4];
//! let faster: Vec<f64> = default.iter().map(|t| t * 0.8).collect();
//! assert!(Comparison::of(&default, &faster).replaces_default(0.02));
//! // The same times in another order: sometimes faster, sometimes slower; the default stays.
//! let shuffled = [10.2, 12.0, 10.1, 10.0, 11.0, 10.4, 10.8, 10.5];
//! assert!(!Comparison::of(&default, &shuffled).replaces_default(0.02));
//! ```

/// The confidence the intervals are built for.
pub const CONFIDENCE: f64 = 0.95;

/// A sample's median and a confidence interval for it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    /// The median of `samples` and its [`CONFIDENCE`] interval: the order statistics at the
    /// binomial ranks. Below six samples no ranks reach that confidence and the interval is
    /// the sample's range. An empty sample gives NaNs.
    pub fn of(samples: &[f64]) -> Interval {
        let mut s: Vec<f64> = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        if n == 0 {
            return Interval { median: f64::NAN, lo: f64::NAN, hi: f64::NAN };
        }
        let median = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
        let j = lower_rank(n);
        Interval { median, lo: s[j], hi: s[n - 1 - j] }
    }

    /// The interval scaled by `factor` (a unit change).
    pub fn scaled(&self, factor: f64) -> Interval {
        Interval { median: self.median * factor, lo: self.lo * factor, hi: self.hi * factor }
    }
}

/// The 0-based rank of the lower bound: the largest `j` with P(Binomial(n, 1/2) <= j) at most
/// half the miss rate, so that [x(j), x(n-1-j)] covers the median with [`CONFIDENCE`].
fn lower_rank(n: usize) -> usize {
    let tail = (1.0 - CONFIDENCE) / 2.0;
    // Binomial(n, 1/2) probabilities in log space: 0.5^n underflows past n = 1074. When even
    // P(X <= 0) exceeds the tail (n < 6), rank 0 stands: the range, at lower confidence.
    let mut ln_pmf = n as f64 * 0.5f64.ln();
    let mut cumulative = 0.0;
    let mut j = 0;
    for k in 0..n / 2 {
        cumulative += ln_pmf.exp();
        if cumulative > tail {
            break;
        }
        j = k;
        ln_pmf += ((n - k) as f64).ln() - ((k + 1) as f64).ln();
    }
    j
}

/// Two alternatives measured in alternation: `default` and `candidate`, round by round.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Comparison {
    pub default: Interval,
    pub candidate: Interval,
    /// candidate / default, per round.
    pub ratio: Interval,
}

impl Comparison {
    /// Paired samples: `default[i]` and `candidate[i]` ran in the same round.
    pub fn of(default: &[f64], candidate: &[f64]) -> Comparison {
        let ratios: Vec<f64> = default.iter().zip(candidate).filter(|(d, _)| **d > 0.0).map(|(d, c)| c / d).collect();
        Comparison { default: Interval::of(default), candidate: Interval::of(candidate), ratio: Interval::of(&ratios) }
    }

    /// The candidate is faster beyond doubt: the ratio's whole interval lies below
    /// `1 - noise_floor`.
    pub fn replaces_default(&self, noise_floor: f64) -> bool {
        self.ratio.hi < 1.0 - noise_floor
    }

    /// The candidate is slower beyond doubt (the mirror of [`Comparison::replaces_default`]).
    pub fn slower_than_default(&self, noise_floor: f64) -> bool {
        self.ratio.lo > 1.0 + noise_floor
    }
}

/// The smallest relative difference a paired comparison can resolve on this machine: the
/// largest departure from 1 of the ratio interval between two copies of one program run in
/// alternation (an A/A comparison). Compile the copies separately: code and buffer placement
/// alone move a program's time by a percent or so, and a faster candidate must beat that too.
pub fn noise_floor(first: &[f64], second: &[f64]) -> f64 {
    let ratio = Comparison::of(first, second).ratio;
    if ratio.median.is_nan() {
        return 0.0;
    }
    (ratio.hi - 1.0).max(1.0 - ratio.lo).max(0.0)
}

/// How many interleaved rounds fit in `budget_s` when one round of every alternative takes
/// `round_s`, between `min` and `max`.
pub fn rounds_within(budget_s: f64, round_s: f64, min: usize, max: usize) -> usize {
    if round_s <= 0.0 {
        return max;
    }
    ((budget_s / round_s).floor() as usize).clamp(min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_match_the_binomial_tables() {
        // Conover's table of order statistics for the median at 95%.
        assert_eq!(lower_rank(5), 0);
        assert_eq!(lower_rank(6), 0);
        assert_eq!(lower_rank(9), 1);
        assert_eq!(lower_rank(20), 5);
        assert_eq!(lower_rank(100), 39);
        // Large samples: n/2 - 0.98 sqrt(n), give or take one.
        let n = 10_000;
        let approx = n as f64 / 2.0 - 0.98 * (n as f64).sqrt();
        assert!((lower_rank(n) as f64 - approx).abs() <= 2.0, "{}", lower_rank(n));
    }

    #[test]
    fn intervals_cover_the_median_about_as_often_as_promised() {
        // Seeded exponential samples (skewed, like run times), true median ln 2.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let trials = 2000;
        let mut covered = 0;
        for _ in 0..trials {
            let s: Vec<f64> = (0..25).map(|_| -(1.0 - uniform()).ln()).collect();
            let i = Interval::of(&s);
            if i.lo <= std::f64::consts::LN_2 && std::f64::consts::LN_2 <= i.hi {
                covered += 1;
            }
        }
        let rate = covered as f64 / trials as f64;
        assert!((0.93..=0.99).contains(&rate), "{rate}");
    }

    #[test]
    fn an_a_a_comparison_never_replaces_the_default_and_its_noise_floor_is_its_spread() {
        let runs = [10.0, 10.3, 9.9, 10.1, 10.6, 9.8, 10.2, 10.0, 10.4, 9.9, 10.1, 10.2];
        let copy: Vec<f64> = runs.iter().rev().copied().collect();
        let c = Comparison::of(&runs, &copy);
        assert!(!c.replaces_default(0.0) && !c.slower_than_default(0.0));
        let floor = noise_floor(&runs, &copy);
        assert!(floor > 0.0 && floor < 0.1, "{floor}");
        assert_eq!(noise_floor(&[5.0; 12], &[5.0; 12]), 0.0);
        // A copy placed worse in memory, 2% slower throughout: the floor covers it.
        let placed: Vec<f64> = runs.iter().map(|t| t * 1.02).collect();
        assert!(noise_floor(&runs, &placed) >= 0.02);
    }

    #[test]
    fn a_win_inside_the_noise_floor_does_not_count() {
        let default = [10.0; 12];
        let slightly: Vec<f64> = default.iter().map(|t| t * 0.99).collect();
        let c = Comparison::of(&default, &slightly);
        assert!(c.replaces_default(0.0));
        assert!(!c.replaces_default(0.02));
    }

    #[test]
    fn rounds_fit_the_budget() {
        assert_eq!(rounds_within(10.0, 0.1, 10, 500), 100);
        assert_eq!(rounds_within(0.1, 1.0, 10, 500), 10);
        assert_eq!(rounds_within(1e9, 1.0, 10, 500), 500);
    }
}
