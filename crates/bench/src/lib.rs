//! Shared pieces of the benchmarks (`just bench NAME`, `bench/NAME.sh`): latency samples and their
//! summary, and the table that prints each platform figure beside the baseline measured in the
//! same run.
//!
//! Benchmarks print figures; they assert nothing about time. The binaries live in `src/bin/`
//! (`bench-invoke`: docs/PERFORMANCE.md, section Invoke).

use std::fmt::Write as _;
use std::time::Duration;

/// The latencies of one measurement, and the wall time it took when its requests ran back to back
/// (so that requests per second mean something).
#[derive(Debug, Clone, Default)]
pub struct Samples {
    latencies_ns: Vec<u64>,
    /// The measurement window, for requests per second; `None` for samples taken one at a time
    /// with pauses in between (cold starts), whose rate means nothing.
    pub wall: Option<Duration>,
    /// Requests that failed (not counted in the latencies).
    pub errors: u64,
}

impl Samples {
    /// No samples yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one latency.
    pub fn push(&mut self, latency: Duration) {
        self.latencies_ns
            .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds another set's latencies and errors (the wall time is left as it is).
    pub fn merge(&mut self, other: Self) {
        self.latencies_ns.extend(other.latencies_ns);
        self.errors += other.errors;
    }

    /// How many latencies there are.
    pub fn len(&self) -> usize {
        self.latencies_ns.len()
    }

    /// The latest latency added.
    pub fn last(&self) -> Option<Duration> {
        self.latencies_ns.last().map(|ns| Duration::from_nanos(*ns))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.latencies_ns.is_empty()
    }

    /// The median, 99th percentile and rate.
    pub fn summary(&self) -> Summary {
        let mut sorted = self.latencies_ns.clone();
        sorted.sort_unstable();
        let n = sorted.len();
        let rps = self
            .wall
            .filter(|w| !w.is_zero())
            .map(|w| n as f64 / w.as_secs_f64());
        Summary {
            n,
            errors: self.errors,
            p50: Duration::from_nanos(median(&sorted)),
            p99: Duration::from_nanos(percentile(&sorted, 0.99)),
            max: Duration::from_nanos(sorted.last().copied().unwrap_or(0)),
            rps,
        }
    }
}

/// What a table row shows of a [`Samples`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Successful requests measured.
    pub n: usize,
    /// Failed requests.
    pub errors: u64,
    /// The median (the mean of the two middle values when `n` is even).
    pub p50: Duration,
    /// The 99th percentile by nearest rank (with 10 samples: the largest).
    pub p99: Duration,
    /// The largest.
    pub max: Duration,
    /// Requests per second over the measurement window, when there is one.
    pub rps: Option<f64>,
}

/// The median of sorted values: the middle one, or the mean of the two middle ones (0 when empty).
pub fn median(sorted: &[u64]) -> u64 {
    let n = sorted.len();
    match n {
        0 => 0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => ((u128::from(sorted[n / 2 - 1]) + u128::from(sorted[n / 2])) / 2) as u64,
    }
}

/// The `q` quantile of sorted values by nearest rank: the value at rank `ceil(q * n)` (0 when
/// empty).
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A duration in milliseconds with a precision that suits its size.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.3} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// A signed difference in milliseconds.
fn ms_diff(a: Duration, b: Duration) -> String {
    let diff = a.as_secs_f64() * 1000.0 - b.as_secs_f64() * 1000.0;
    let precision = if diff.abs() < 10.0 { 3 } else { 1 };
    format!("{diff:+.precision$} ms")
}

/// The printed table: `name | p50 | p99 | req/s | n`, platform rows each followed by their
/// baseline and a comparison line.
#[derive(Debug, Default)]
pub struct Table {
    out: String,
}

/// Width of the name column.
const NAME: usize = 58;

impl Table {
    /// An empty table with its header.
    pub fn new() -> Self {
        let mut table = Self::default();
        let _ = writeln!(
            table.out,
            "{:<NAME$} {:>11} {:>11} {:>9} {:>7}",
            "name", "p50", "p99", "req/s", "n"
        );
        let _ = writeln!(table.out, "{}", "-".repeat(NAME + 42));
        table
    }

    /// A section heading.
    pub fn section(&mut self, title: &str) {
        let _ = writeln!(self.out, "{title}");
    }

    /// One row of figures.
    pub fn row(&mut self, name: &str, summary: &Summary) {
        let rps = summary
            .rps
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
        let errors = if summary.errors > 0 {
            format!("  ({} failed)", summary.errors)
        } else {
            String::new()
        };
        let _ = writeln!(
            self.out,
            "{:<NAME$} {:>11} {:>11} {:>9} {:>7}{errors}",
            name,
            ms(summary.p50),
            ms(summary.p99),
            rps,
            summary.n
        );
    }

    /// The comparison of a platform row with its baseline: the overhead in time (platform minus
    /// baseline) and the ratios.
    pub fn compare(&mut self, platform: &Summary, baseline: &Summary) {
        let ratio = |a: Duration, b: Duration| {
            if b.is_zero() {
                "-".to_owned()
            } else {
                format!("{:.2}×", a.as_secs_f64() / b.as_secs_f64())
            }
        };
        let mut line = format!(
            "  → platform − baseline: p50 {}, p99 {}; platform / baseline: p50 {}",
            ms_diff(platform.p50, baseline.p50),
            ms_diff(platform.p99, baseline.p99),
            ratio(platform.p50, baseline.p50),
        );
        if let (Some(a), Some(b)) = (platform.rps, baseline.rps)
            && b > 0.0
        {
            let _ = write!(line, ", req/s {:.2}×", a / b);
        }
        let _ = writeln!(self.out, "{line}");
    }

    /// A free line (a note under a row).
    pub fn note(&mut self, text: &str) {
        let _ = writeln!(self.out, "  {text}");
    }

    /// The table as text.
    pub fn render(&self) -> &str {
        &self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentiles_by_nearest_rank() {
        assert_eq!(median(&[]), 0);
        assert_eq!(median(&[5]), 5);
        assert_eq!(median(&[1, 3, 10]), 3);
        assert_eq!(median(&[1, 3, 5, 10]), 4);
        assert_eq!(median(&[1, 2]), 1);
        assert_eq!(median(&[3, 4]), 3);
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.99), 99);
        assert_eq!(percentile(&values, 0.5), 50);
        assert_eq!(percentile(&values[..10], 0.99), 10);
        assert_eq!(percentile(&[], 0.99), 0);
    }

    #[test]
    fn summaries_count_rates_only_with_a_window() {
        let mut samples = Samples::new();
        for ms in [1, 2, 3, 4] {
            samples.push(Duration::from_millis(ms));
        }
        samples.errors = 1;
        let one_by_one = samples.summary();
        assert_eq!(one_by_one.n, 4);
        assert_eq!(one_by_one.p50, Duration::from_micros(2500));
        assert_eq!(one_by_one.p99, Duration::from_millis(4));
        assert_eq!(one_by_one.rps, None);
        samples.wall = Some(Duration::from_secs(2));
        assert_eq!(samples.summary().rps, Some(2.0));
    }

    #[test]
    fn the_table_puts_the_comparison_under_the_rows() {
        let summary = |p50_us, rps| Summary {
            n: 10,
            errors: 0,
            p50: Duration::from_micros(p50_us),
            p99: Duration::from_micros(p50_us * 2),
            max: Duration::from_micros(p50_us * 3),
            rps,
        };
        let mut table = Table::new();
        table.row("platform", &summary(1500, Some(600.0)));
        table.row("baseline", &summary(500, Some(1800.0)));
        table.compare(&summary(1500, Some(600.0)), &summary(500, Some(1800.0)));
        let text = table.render();
        assert!(text.contains("1.500 ms"), "{text}");
        assert!(text.contains("p50 +1.000 ms, p99 +2.000 ms"), "{text}");
        assert!(text.contains("p50 3.00×, req/s 0.33×"), "{text}");
    }
}
