//! The server's own Prometheus metrics, registered explicitly with bounded label sets: no agent
//! ids, targets or measurement ids as labels.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::model::{EntryStatus, MeasurementStatus};

/// Why an agent link failed or ended abnormally.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum LinkError {
    /// The TLS handshake failed (foreign CA, revoked, no certificate where one is needed …).
    tls_handshake,
    /// The peer broke the link protocol (bad hello, malformed message, wrong version).
    protocol,
    /// No heartbeat arrived in time.
    heartbeat_timeout,
    /// A read or write on the link failed.
    io,
    /// The session was replaced by a newer one of the same agent.
    replaced,
    /// An enrolment was refused (bad, used or expired token, bad CSR).
    enrolment_refused,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: LinkError,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    agents_connected: Gauge,
    measurements: Family<StatusLabel, Gauge>,
    agent_jobs: Family<StatusLabel, Counter>,
    results_stored: Counter,
    results_late: Counter,
    link_errors: Family<ReasonLabel, Counter>,
    write_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vantage");
        let agents_connected = Gauge::default();
        registry.register(
            "agents_connected",
            "Agents with an open link now",
            agents_connected.clone(),
        );
        let measurements = Family::<StatusLabel, Gauge>::default();
        registry.register(
            "measurements",
            "Stored measurements by status (running, finished)",
            measurements.clone(),
        );
        let agent_jobs = Family::<StatusLabel, Counter>::default();
        registry.register(
            "measurement_agent_jobs",
            "Agent jobs that reached a final status (done, failed, agent_lost) since start",
            agent_jobs.clone(),
        );
        let results_stored = Counter::default();
        registry.register(
            "results_stored",
            "Result envelopes stored since start (re-sends of a stored result not counted)",
            results_stored.clone(),
        );
        let results_late = Counter::default();
        registry.register(
            "results_late",
            "Results that arrived after their job's deadline and replaced agent_lost",
            results_late.clone(),
        );
        let link_errors = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "agent_link_errors",
            "Agent link failures by reason",
            link_errors.clone(),
        );
        let write_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "store_write_seconds",
            "Time to commit one batch of results and job changes",
            write_seconds.clone(),
        );
        for s in MeasurementStatus::ALL {
            measurements
                .get_or_create(&StatusLabel { status: s.as_str() })
                .set(0);
        }
        Metrics {
            registry,
            agents_connected,
            measurements,
            agent_jobs,
            results_stored,
            results_late,
            link_errors,
            write_seconds,
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// An agent link opened (+1) or closed (−1).
    pub fn agent_connected(&self, up: bool) {
        if up {
            self.agents_connected.inc();
        } else {
            self.agents_connected.dec();
        }
    }

    /// Sets the number of measurements in a status.
    pub fn set_measurements(&self, status: MeasurementStatus, n: i64) {
        self.measurements
            .get_or_create(&StatusLabel {
                status: status.as_str(),
            })
            .set(n);
    }

    /// Moves one measurement from running to finished.
    pub fn measurement_finished(&self) {
        self.measurements
            .get_or_create(&StatusLabel {
                status: MeasurementStatus::Running.as_str(),
            })
            .dec();
        self.measurements
            .get_or_create(&StatusLabel {
                status: MeasurementStatus::Finished.as_str(),
            })
            .inc();
    }

    /// Counts a new running measurement.
    pub fn measurement_created(&self) {
        self.measurements
            .get_or_create(&StatusLabel {
                status: MeasurementStatus::Running.as_str(),
            })
            .inc();
    }

    /// Counts a job reaching a final status.
    pub fn job_final(&self, s: EntryStatus) {
        self.agent_jobs
            .get_or_create(&StatusLabel { status: s.as_str() })
            .inc();
    }

    /// Counts stored results.
    pub fn results_stored(&self, n: u64, late: u64) {
        self.results_stored.inc_by(n);
        self.results_late.inc_by(late);
    }

    /// Counts a link failure.
    pub fn link_error(&self, reason: LinkError) {
        self.link_errors
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Records the duration of one store write.
    pub fn write_took(&self, secs: f64) {
        self.write_seconds.observe(secs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_metric() {
        let m = Metrics::new();
        m.agent_connected(true);
        m.link_error(LinkError::tls_handshake);
        m.results_stored(3, 1);
        m.job_final(EntryStatus::AgentLost);
        let text = m.encode();
        for needle in [
            "vantage_agents_connected 1",
            "vantage_agent_link_errors_total{reason=\"tls_handshake\"} 1",
            "vantage_results_stored_total 3",
            "vantage_measurement_agent_jobs_total{status=\"agent_lost\"} 1",
            "vantage_measurements{status=\"running\"} 0",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
