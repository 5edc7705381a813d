//! The replayed request trace: seeded Poisson arrivals counted in engine
//! steps, uniform prompt and output lengths, uniform prompt ids.

use std::ops::RangeInclusive;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One request of the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracedRequest {
    /// The engine step before which it is submitted.
    pub arrival: u64,
    /// Its prompt ids.
    pub prompt: Vec<i32>,
    /// The tokens it generates (no stop ids: exactly this many).
    pub output: usize,
}

/// What the trace is made of.
#[derive(Clone, Debug)]
pub struct TraceShape {
    /// Requests in the trace.
    pub requests: usize,
    /// Mean arrivals per engine step (Poisson: exponential gaps).
    pub rate: f64,
    /// Prompt lengths, drawn uniformly.
    pub prompt: RangeInclusive<usize>,
    /// Output lengths, drawn uniformly.
    pub output: RangeInclusive<usize>,
    /// The vocabulary prompt ids are drawn from (uniformly).
    pub vocab: usize,
    /// The seed of every draw.
    pub seed: u64,
}

impl TraceShape {
    /// The trace's requests, in arrival order.
    pub fn requests(&self) -> Vec<TracedRequest> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut clock = 0f64;
        (0..self.requests)
            .map(|_| {
                let u: f64 = rng.random_range(f64::EPSILON..1.0);
                clock += -u.ln() / self.rate;
                let len = rng.random_range(self.prompt.clone());
                let prompt = (0..len)
                    .map(|_| rng.random_range(0..self.vocab) as i32)
                    .collect();
                TracedRequest {
                    arrival: clock as u64,
                    prompt,
                    output: rng.random_range(self.output.clone()),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_is_seeded_and_within_its_shape() {
        let shape = TraceShape {
            requests: 200,
            rate: 0.5,
            prompt: 4..=32,
            output: 8..=48,
            vocab: 100,
            seed: 7,
        };
        let trace = shape.requests();
        assert_eq!(trace, shape.requests());
        assert!(trace.windows(2).all(|w| w[0].arrival <= w[1].arrival));
        assert!(trace.iter().all(|r| (4..=32).contains(&r.prompt.len())
            && (8..=48).contains(&r.output)
            && r.prompt.iter().all(|&t| (0..100).contains(&t))));
        // 200 arrivals at 0.5 per step span about 400 steps.
        let span = trace.last().unwrap().arrival;
        assert!((300..500).contains(&span), "{span}");
    }
}
