//! Choosing the next token from a row of logits: greedy, or seeded sampling with
//! temperature and nucleus (top-p) truncation. Deterministic: the same seed and
//! logits give the same tokens on every machine. The [`Sampler`] holds the
//! settings and the random stream and hands out one [`Draw`] per token; the
//! token a draw picks is defined in `choose.rs`, identically on the host and
//! on the device.

use thiserror::Error;

use super::choose::Draw;

/// How the next token is chosen.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Sampling {
    /// The largest logit (the lowest id among ties).
    Greedy,
    /// Draw from `softmax(logits / temperature)` restricted to the smallest set
    /// of most likely tokens whose probabilities sum to at least `top_p`
    /// (tokens of equal logit in or out together; see [`Draw`]).
    TopP {
        /// Above 0 with a finite inverse; below 1 sharpens, above 1 flattens.
        temperature: f32,
        /// In `(0, 1]`; 1 keeps every token.
        top_p: f32,
        /// Seed of the random stream.
        seed: u64,
    },
}

/// Why sampling settings are unusable.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SamplingError {
    /// The temperature is not a positive finite number with a finite inverse.
    #[error("temperature must be a positive number (with a finite inverse), found {0}")]
    Temperature(f32),
    /// `top_p` is outside `(0, 1]`.
    #[error("top-p must be in (0, 1], found {0}")]
    TopP(f32),
    /// A row of logits is empty or holds a NaN.
    #[error("cannot sample from {0}")]
    Logits(String),
}

impl Sampling {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), SamplingError> {
        match *self {
            Sampling::Greedy => Ok(()),
            Sampling::TopP {
                temperature, top_p, ..
            } => {
                let inverse = 1.0 / temperature;
                if !(temperature.is_finite() && temperature > 0.0 && inverse.is_finite()) {
                    return Err(SamplingError::Temperature(temperature));
                }
                if !(top_p > 0.0 && top_p <= 1.0) {
                    return Err(SamplingError::TopP(top_p));
                }
                Ok(())
            }
        }
    }
}

/// Chooses tokens one after another with [`Sampling`]; holds the random stream.
#[derive(Clone, Debug)]
pub struct Sampler {
    sampling: Sampling,
    state: u64,
}

impl Sampler {
    /// A sampler at the start of its stream (settings validated).
    pub fn new(sampling: Sampling) -> Result<Sampler, SamplingError> {
        sampling.validate()?;
        let state = match sampling {
            Sampling::TopP { seed, .. } => seed,
            Sampling::Greedy => 0,
        };
        Ok(Sampler { sampling, state })
    }

    /// How the next token is chosen: the settings and, for top-p, the next
    /// uniform number of the stream (one per token, whether the token is then
    /// picked on the host with [`Draw::pick`] or on the device with
    /// [`crate::Session::run_sampled`]).
    pub fn draw(&mut self) -> Draw {
        match self.sampling {
            Sampling::Greedy => Draw::Greedy,
            Sampling::TopP {
                temperature, top_p, ..
            } => Draw::TopP {
                inv_temperature: 1.0 / temperature,
                top_p,
                u: self.uniform(),
            },
        }
    }

    /// The next token id for one row of logits, picked on the host.
    pub fn next(&mut self, logits: &[f32]) -> Result<usize, SamplingError> {
        self.draw().pick(logits)
    }

    /// A uniform draw in `[0, 1)` (SplitMix64, the top 24 bits: exact in f32).
    fn uniform(&mut self) -> f32 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u32 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top_p(temperature: f32, top_p: f32, seed: u64) -> Sampling {
        Sampling::TopP {
            temperature,
            top_p,
            seed,
        }
    }

    #[test]
    fn greedy_takes_the_largest_and_the_lowest_id_among_ties() {
        let mut s = Sampler::new(Sampling::Greedy).unwrap();
        assert_eq!(s.next(&[0.1, 3.0, -1.0, 3.0]).unwrap(), 1);
        assert_eq!(s.next(&[-5.0]).unwrap(), 0);
    }

    #[test]
    fn seeded_sampling_is_deterministic_and_seeds_differ() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 7919) % 13) as f32 * 0.3).collect();
        let draw = |seed| {
            let mut s = Sampler::new(top_p(1.0, 1.0, seed)).unwrap();
            (0..64)
                .map(|_| s.next(&logits).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn a_small_nucleus_keeps_only_the_top_tokens() {
        // Probabilities ∝ e^3, e^2, e^0, e^0: the top one holds ~0.67, the top
        // two ~0.91; top_p = 0.8 keeps exactly ids 2 and 0.
        let logits = [2.0, 0.0, 3.0, 0.0];
        let mut s = Sampler::new(top_p(1.0, 0.8, 1)).unwrap();
        let mut seen = [0usize; 4];
        for _ in 0..2000 {
            seen[s.next(&logits).unwrap()] += 1;
        }
        assert_eq!(seen[1] + seen[3], 0, "{seen:?}");
        // Renormalised within the nucleus: e^3 / (e^3 + e^2) ≈ 0.731.
        let share = seen[2] as f64 / 2000.0;
        assert!((share - 0.731).abs() < 0.04, "{share}");
    }

    #[test]
    fn a_low_temperature_approaches_greedy() {
        let logits = [1.0, 1.5, 0.2];
        let mut s = Sampler::new(top_p(0.01, 1.0, 3)).unwrap();
        assert!((0..100).all(|_| s.next(&logits).unwrap() == 1));
    }

    #[test]
    fn bad_settings_and_logits_are_errors() {
        assert_eq!(
            Sampler::new(top_p(0.0, 0.9, 1)).unwrap_err(),
            SamplingError::Temperature(0.0)
        );
        assert!(Sampler::new(top_p(f32::NAN, 0.9, 1)).is_err());
        // Positive, but 1 / T overflows.
        assert_eq!(
            Sampler::new(top_p(1e-39, 0.9, 1)).unwrap_err(),
            SamplingError::Temperature(1e-39)
        );
        assert_eq!(
            Sampler::new(top_p(1.0, 0.0, 1)).unwrap_err(),
            SamplingError::TopP(0.0)
        );
        assert!(Sampler::new(top_p(1.0, 1.5, 1)).is_err());
        let mut s = Sampler::new(Sampling::Greedy).unwrap();
        assert!(s.next(&[]).is_err());
        assert!(s.next(&[1.0, f32::NAN]).is_err());
    }
}
