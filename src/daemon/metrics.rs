//! `GET /metrics`: what a Prometheus server scrapes to alert on a refresh that failed or
//! stopped happening, in the Prometheus text format (0.0.4).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::runs::RunStatus;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Labels of the per-target series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabel {
    target: String,
}

/// Labels of `lethe_runs_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    target: String,
    outcome: String,
}

/// Labels of `lethe_api_denied_total`: the token's id (never the token) and the action.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeniedLabels {
    token: String,
    action: String,
}

/// A histogram family needs a constructor for each new target's buckets.
type HistogramFamily = Family<TargetLabel, Histogram, fn() -> Histogram>;

/// The daemon's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    runs: Family<OutcomeLabels, Counter>,
    rows: Family<TargetLabel, Counter>,
    bytes: Family<TargetLabel, Counter>,
    duration: HistogramFamily,
    last_success: Family<TargetLabel, Gauge<f64, AtomicU64>>,
    in_progress: Family<TargetLabel, Gauge>,
    denied: Family<DeniedLabels, Counter>,
}

/// Run-time buckets from 1 s to about 9 hours, doubling.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

impl Metrics {
    /// Registers every series; the per-target counters start at 0 for each configured
    /// target, so that a dashboard shows a target that has never run.
    pub fn new<'a>(targets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut registry = Registry::default();
        let runs = Family::<OutcomeLabels, Counter>::default();
        let rows = Family::<TargetLabel, Counter>::default();
        let bytes = Family::<TargetLabel, Counter>::default();
        let duration: HistogramFamily = Family::new_with_constructor(duration_histogram);
        let last_success = Family::<TargetLabel, Gauge<f64, AtomicU64>>::default();
        let in_progress = Family::<TargetLabel, Gauge>::default();
        let denied = Family::<DeniedLabels, Counter>::default();
        registry.register(
            "lethe_runs",
            "Refresh runs that ended, by target and outcome (succeeded, failed, cancelled, skipped)",
            runs.clone(),
        );
        registry.register(
            "lethe_rows_copied",
            "Rows written by successful refreshes",
            rows.clone(),
        );
        registry.register(
            "lethe_bytes_copied",
            "COPY text bytes read by successful refreshes",
            bytes.clone(),
        );
        registry.register(
            "lethe_run_duration_seconds",
            "Wall time of refresh runs that started, retries included",
            duration.clone(),
        );
        registry.register(
            "lethe_last_success_timestamp_seconds",
            "When the target's last successful refresh ended (Unix time)",
            last_success.clone(),
        );
        registry.register(
            "lethe_runs_in_progress",
            "Refresh runs under way",
            in_progress.clone(),
        );
        registry.register(
            "lethe_api_denied",
            "API and page requests refused (403) because the token's role or targets do not allow them",
            denied.clone(),
        );
        let metrics = Self {
            registry,
            runs,
            rows,
            bytes,
            duration,
            last_success,
            in_progress,
            denied,
        };
        for target in targets {
            let label = TargetLabel {
                target: target.to_owned(),
            };
            metrics.rows.get_or_create(&label).inc_by(0);
            metrics.bytes.get_or_create(&label).inc_by(0);
            metrics.in_progress.get_or_create(&label).set(0);
        }
        metrics
    }

    /// A run of `target` began.
    pub fn started(&self, target: &str) {
        self.in_progress.get_or_create(&label(target)).inc();
    }

    /// A run that [`Metrics::started`] ended.
    pub fn ended(&self, target: &str, status: RunStatus, elapsed: Duration, rows: u64, bytes: u64) {
        let label = label(target);
        self.in_progress.get_or_create(&label).dec();
        self.duration
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
        if status == RunStatus::Succeeded {
            self.rows.get_or_create(&label).inc_by(rows);
            self.bytes.get_or_create(&label).inc_by(bytes);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            self.last_success
                .get_or_create(&label)
                .set(now.as_secs_f64());
        }
        self.outcome(target, status);
    }

    /// Counts a run's outcome (alone for a run that never started: skipped).
    pub fn outcome(&self, target: &str, status: RunStatus) {
        self.runs
            .get_or_create(&OutcomeLabels {
                target: target.to_owned(),
                outcome: status.as_str().to_owned(),
            })
            .inc();
    }

    /// Counts a request refused to the token `token` (its id) for `action`.
    pub fn denied(&self, token: &str, action: &str) {
        self.denied
            .get_or_create(&DeniedLabels {
                token: token.to_owned(),
                action: action.to_owned(),
            })
            .inc();
    }

    /// Every series in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

fn label(target: &str) -> TargetLabel {
    TargetLabel {
        target: target.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series_with_its_labels() {
        let metrics = Metrics::new(["dev", "staging"]);
        let text = metrics.render();
        assert!(
            text.contains("lethe_rows_copied_total{target=\"staging\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("lethe_runs_in_progress{target=\"dev\"} 0"),
            "{text}"
        );

        metrics.started("dev");
        assert!(
            metrics
                .render()
                .contains("lethe_runs_in_progress{target=\"dev\"} 1")
        );
        metrics.ended(
            "dev",
            RunStatus::Succeeded,
            Duration::from_secs(3),
            500,
            12_345,
        );
        metrics.started("dev");
        metrics.ended("dev", RunStatus::Failed, Duration::from_secs(1), 99, 99);
        metrics.outcome("dev", RunStatus::Skipped);
        metrics.denied("ci", "rollback");
        metrics.denied("ci", "rollback");
        let text = metrics.render();
        for line in [
            "lethe_runs_total{target=\"dev\",outcome=\"succeeded\"} 1",
            "lethe_runs_total{target=\"dev\",outcome=\"failed\"} 1",
            "lethe_runs_total{target=\"dev\",outcome=\"skipped\"} 1",
            // Only the successful run's rows count.
            "lethe_rows_copied_total{target=\"dev\"} 500",
            "lethe_bytes_copied_total{target=\"dev\"} 12345",
            "lethe_runs_in_progress{target=\"dev\"} 0",
            "lethe_run_duration_seconds_count{target=\"dev\"} 2",
            "lethe_run_duration_seconds_bucket{target=\"dev\",le=\"2\"} 1",
            "lethe_run_duration_seconds_bucket{target=\"dev\",le=\"4\"} 2",
            "# TYPE lethe_last_success_timestamp_seconds gauge",
            "lethe_api_denied_total{token=\"ci\",action=\"rollback\"} 2",
        ] {
            assert!(text.contains(line), "missing {line}:\n{text}");
        }
        let stamp = text
            .lines()
            .find(|l| l.starts_with("lethe_last_success_timestamp_seconds{target=\"dev\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap();
        assert!(stamp > 1.7e9, "{stamp}");
    }
}
