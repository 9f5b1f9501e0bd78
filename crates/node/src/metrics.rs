//! Prometheus metrics, served at `/metrics` in the text exposition format.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// The node's metrics.
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by route and status.
    pub requests: IntCounterVec,
    /// Request latency by route.
    pub request_seconds: HistogramVec,
    /// Time in the engine (input parsing + run + trace) per inference.
    pub engine_seconds: Histogram,
    /// Time from submitting a receipt to the log until it is durable and integrated.
    pub log_append_seconds: Histogram,
    /// Inference requests refused for capacity, by reason.
    pub rejected: IntCounterVec,
    /// Prepared-model cache lookups by result (hit, miss).
    pub model_cache: IntCounterVec,
    /// Prepared models in the cache.
    pub models_cached: IntGauge,
    /// Receipts issued.
    pub receipts: IntCounterVec,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("vouch".into()), None).expect("valid prefix");
        let buckets = vec![
            0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
        ];
        let m = Metrics {
            requests: IntCounterVec::new(
                Opts::new("http_requests_total", "HTTP requests"),
                &["route", "status"],
            )
            .expect("valid metric"),
            request_seconds: HistogramVec::new(
                HistogramOpts::new("http_request_seconds", "HTTP request latency")
                    .buckets(buckets.clone()),
                &["route"],
            )
            .expect("valid metric"),
            engine_seconds: Histogram::with_opts(
                HistogramOpts::new("engine_seconds", "inference time in the engine")
                    .buckets(buckets.clone()),
            )
            .expect("valid metric"),
            log_append_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "log_append_seconds",
                    "receipt submit to durable and integrated",
                )
                .buckets(buckets),
            )
            .expect("valid metric"),
            rejected: IntCounterVec::new(
                Opts::new("inference_rejected_total", "requests refused for capacity"),
                &["reason"],
            )
            .expect("valid metric"),
            model_cache: IntCounterVec::new(
                Opts::new("model_cache_total", "prepared-model cache lookups"),
                &["result"],
            )
            .expect("valid metric"),
            models_cached: IntGauge::new("models_cached", "prepared models in memory")
                .expect("valid metric"),
            receipts: IntCounterVec::new(
                Opts::new("receipts_total", "receipts issued"),
                &["profile"],
            )
            .expect("valid metric"),
            registry,
        };
        for c in [
            Box::new(m.requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.request_seconds.clone()),
            Box::new(m.engine_seconds.clone()),
            Box::new(m.log_append_seconds.clone()),
            Box::new(m.rejected.clone()),
            Box::new(m.model_cache.clone()),
            Box::new(m.models_cached.clone()),
            Box::new(m.receipts.clone()),
        ] {
            m.registry.register(c).expect("each metric registered once");
        }
        m
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encoding to memory");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
