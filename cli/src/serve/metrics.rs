//! The server's counters, and `GET /metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::engine_thread::Snapshot;

/// Upper bounds (seconds) of the time-to-first-token histogram's buckets.
const TTFT_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Counters the routes update.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Counters>,
}

#[derive(Default)]
struct Counters {
    requests: BTreeMap<u16, u64>,
    ttft_buckets: [u64; TTFT_BUCKETS.len()],
    ttft_count: u64,
    ttft_sum: f64,
}

impl Metrics {
    /// Counts a finished request by its HTTP status.
    pub fn request(&self, status: u16) {
        *self.lock().requests.entry(status).or_default() += 1;
    }

    /// Records one request's time to its first token.
    pub fn first_token(&self, ttft: Duration) {
        let s = ttft.as_secs_f64();
        let mut c = self.lock();
        for (bucket, &bound) in c.ttft_buckets.iter_mut().zip(&TTFT_BUCKETS) {
            if s <= bound {
                *bucket += 1;
            }
        }
        c.ttft_count += 1;
        c.ttft_sum += s;
    }

    /// The page: these counters, the engine's, and `queued` (requests
    /// admitted and not yet finished).
    pub fn render(&self, engine: &Snapshot, queued: usize) -> String {
        let c = self.lock();
        let s = &engine.stats;
        let busy = engine.busy.as_secs_f64();
        let rate = if busy > 0.0 {
            s.generated_tokens as f64 / busy
        } else {
            0.0
        };
        let mut plain = vec![
            (
                "seam_queue_depth",
                "gauge",
                "Requests admitted and not finished.",
                queued.to_string(),
            ),
            (
                "seam_waiting_sequences",
                "gauge",
                "Sequences waiting for the engine.",
                s.waiting.to_string(),
            ),
            (
                "seam_active_sequences",
                "gauge",
                "Sequences the engine is running.",
                s.running.to_string(),
            ),
            (
                "seam_kv_positions_used",
                "gauge",
                "KV cache positions the running sequences fill.",
                s.positions_used.to_string(),
            ),
            (
                "seam_kv_positions_reserved",
                "gauge",
                "KV cache positions the running sequences' slots reserve.",
                s.positions_reserved.to_string(),
            ),
            (
                "seam_generated_tokens_total",
                "counter",
                "Tokens generated.",
                s.generated_tokens.to_string(),
            ),
            (
                "seam_prompt_tokens_total",
                "counter",
                "Prompt tokens prefilled.",
                s.prompt_tokens.to_string(),
            ),
            (
                "seam_engine_steps_total",
                "counter",
                "Engine steps run.",
                s.steps.to_string(),
            ),
            (
                "seam_engine_busy_seconds_total",
                "counter",
                "Time spent in engine steps.",
                format!("{busy:.6}"),
            ),
            (
                "seam_tokens_per_second",
                "gauge",
                "Generated tokens per second of engine busy time.",
                format!("{rate:.3}"),
            ),
        ];
        if s.routed_steps > 0 {
            plain.extend([
                (
                    "seam_routed_steps_total",
                    "counter",
                    "Engine steps whose tokens were routed before they ran.",
                    s.routed_steps.to_string(),
                ),
                (
                    "seam_step_expert_pairs_total",
                    "counter",
                    "Unique (router head, expert) pairs of each routed step's tokens, summed.",
                    s.expert_pairs.to_string(),
                ),
            ]);
        }
        if let Some(x) = &s.experts {
            let c = &x.counters;
            plain.extend([
                (
                    "seam_expert_accesses_total",
                    "counter",
                    "Expert cache accesses (one per expert a layer's tokens use, per step).",
                    c.accesses.to_string(),
                ),
                (
                    "seam_expert_hits_total",
                    "counter",
                    "Expert cache accesses that found the expert resident.",
                    c.hits.to_string(),
                ),
                (
                    "seam_expert_misses_total",
                    "counter",
                    "Expert cache accesses that uploaded the expert.",
                    c.misses.to_string(),
                ),
                (
                    "seam_expert_prefetches_total",
                    "counter",
                    "Experts uploaded ahead of their use.",
                    c.prefetches.to_string(),
                ),
                (
                    "seam_expert_uploaded_bytes_total",
                    "counter",
                    "Bytes of expert weights uploaded into device slots.",
                    x.bytes_uploaded.to_string(),
                ),
                (
                    "seam_expert_stall_seconds_total",
                    "counter",
                    "Time steps waited for routing read-backs and demand expert uploads.",
                    format!("{:.6}", x.stall().as_secs_f64()),
                ),
            ]);
        }
        let mut out = String::new();
        for (name, kind, help, value) in plain {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let _ = writeln!(out, "# HELP seam_requests_total Requests answered, by HTTP status.\n# TYPE seam_requests_total counter");
        for (status, n) in &c.requests {
            let _ = writeln!(out, "seam_requests_total{{status=\"{status}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP seam_time_to_first_token_seconds Time from a request's arrival to its first token.\n# TYPE seam_time_to_first_token_seconds histogram");
        for (bound, n) in TTFT_BUCKETS.iter().zip(&c.ttft_buckets) {
            let _ = writeln!(
                out,
                "seam_time_to_first_token_seconds_bucket{{le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "seam_time_to_first_token_seconds_bucket{{le=\"+Inf\"}} {n}\nseam_time_to_first_token_seconds_sum {sum:.6}\nseam_time_to_first_token_seconds_count {n}",
            n = c.ttft_count,
            sum = c.ttft_sum
        );
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seam_runtime::experts::{Counters, ExpertStats};
    use seam_runtime::serving::EngineStats;

    fn page(experts: Option<ExpertStats>) -> String {
        let snapshot = Snapshot {
            stats: EngineStats {
                experts,
                ..EngineStats::default()
            },
            busy: Duration::from_secs(1),
        };
        Metrics::default().render(&snapshot, 0)
    }

    #[test]
    fn expert_counters_appear_with_experts_in_host_memory() {
        assert!(!page(None).contains("seam_expert_"));
        let stats = ExpertStats {
            counters: Counters {
                accesses: 12,
                hits: 9,
                misses: 3,
                prefetches: 2,
                evictions: 1,
            },
            bytes_uploaded: 4096,
            demand_upload: Duration::from_millis(250),
            routing_wait: Duration::from_millis(250),
            ..ExpertStats::default()
        };
        let page = page(Some(stats));
        for line in [
            "seam_expert_accesses_total 12",
            "seam_expert_hits_total 9",
            "seam_expert_misses_total 3",
            "seam_expert_prefetches_total 2",
            "seam_expert_uploaded_bytes_total 4096",
            "seam_expert_stall_seconds_total 0.500000",
        ] {
            assert!(
                page.lines().any(|l| l == line),
                "{line} missing from:\n{page}"
            );
        }
    }
}
