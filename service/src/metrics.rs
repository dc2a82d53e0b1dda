//! Prometheus metrics (`GET /metrics`, text exposition format 0.0.4).

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::JobOutcome;

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn latency() -> Histogram {
    // 100 µs … ~105 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 21))
}

/// Every figure the service exports.
pub struct Metrics {
    registry: Registry,
    scans: Family<Labels, Counter>,
    scan_seconds: Histogram,
    layers: Family<Labels, Counter>,
    lookups: Family<Labels, Counter>,
    requests: Family<Labels, Histogram, fn() -> Histogram>,
    admission: Family<Labels, Counter>,
    events: Family<Labels, Counter>,
    queue: Family<Labels, Gauge>,
    walked_total: std::sync::atomic::AtomicU64,
    reused_total: std::sync::atomic::AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("canary");
        let scans = Family::<Labels, Counter>::default();
        registry.register("scans", "Scan jobs ended, by outcome", scans.clone());
        let scan_seconds = latency();
        registry.register(
            "scan_duration_seconds",
            "Wall time of one scan job",
            scan_seconds.clone(),
        );
        let layers = Family::<Labels, Counter>::default();
        registry.register(
            "layers",
            "Layers of scanned images: walked, or reused from the store (cache hits)",
            layers.clone(),
        );
        let lookups = Family::<Labels, Counter>::default();
        registry.register(
            "verdict_lookups",
            "Verdict look-ups: hit, miss, stale (made under other rules)",
            lookups.clone(),
        );
        let requests =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and status",
            requests.clone(),
        );
        let admission = Family::<Labels, Counter>::default();
        registry.register(
            "admission_reviews",
            "AdmissionReview answers: allowed or denied",
            admission.clone(),
        );
        let events = Family::<Labels, Counter>::default();
        registry.register(
            "registry_events",
            "Registry notification events, by what was done with them",
            events.clone(),
        );
        let queue = Family::<Labels, Gauge>::default();
        registry.register("queue_jobs", "Jobs in the store by state", queue.clone());
        Metrics {
            registry,
            scans,
            scan_seconds,
            layers,
            lookups,
            requests,
            admission,
            events,
            queue,
            walked_total: Default::default(),
            reused_total: Default::default(),
        }
    }

    pub fn scan_done(&self, out: &JobOutcome, took: Duration) {
        let outcome = match out {
            JobOutcome::Done { .. } => "done",
            JobOutcome::Failed { .. } => "failed",
            JobOutcome::Retry { .. } => "retry",
        };
        self.scans
            .get_or_create(&labels(&[("outcome", outcome)]))
            .inc();
        self.scan_seconds.observe(took.as_secs_f64());
    }

    /// Layers walked by this process so far.
    pub fn layers_walked(&self) -> u64 {
        self.walked_total.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Layers this process did not walk because the store had them.
    pub fn layers_reused(&self) -> u64 {
        self.reused_total.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn layers(&self, walked: u64, reused: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.walked_total.fetch_add(walked, Relaxed);
        self.reused_total.fetch_add(reused, Relaxed);
        self.layers
            .get_or_create(&labels(&[("result", "walked")]))
            .inc_by(walked);
        self.layers
            .get_or_create(&labels(&[("result", "reused")]))
            .inc_by(reused);
    }

    pub fn verdict_lookup(&self, result: &str) {
        self.lookups
            .get_or_create(&labels(&[("result", result)]))
            .inc();
    }

    pub fn request(&self, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&labels(&[
                ("route", route),
                ("status", &status.to_string()),
            ]))
            .observe(took.as_secs_f64());
    }

    pub fn admission(&self, allowed: bool) {
        self.admission
            .get_or_create(&labels(&[(
                "allowed",
                if allowed { "true" } else { "false" },
            )]))
            .inc();
    }

    pub fn event(&self, what: &str) {
        self.events
            .get_or_create(&labels(&[("action", what)]))
            .inc();
    }

    /// Set the queue gauges from the store's counts.
    pub fn queue(&self, counts: &std::collections::HashMap<String, i64>) {
        for state in ["queued", "running", "done", "failed"] {
            self.queue
                .get_or_create(&labels(&[("state", state)]))
                .set(counts.get(state).copied().unwrap_or(0));
        }
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut s, &self.registry);
        s
    }
}
