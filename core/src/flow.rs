//! Flow-matching sampling with a shared condition (DDT): the Euler steps from
//! noise at `t = 0` to data at `t = 1`, and the schedule of the steps that
//! recompute a shared cache (the encoder's self-condition).
//!
//! With `N` steps, step `i` runs the model at `t_i = i / N` and moves
//! `x ← x + (t_{i+1} − t_i) · v(x, t_i)`. A step that does not refresh the
//! cache reuses the value the last refreshing step kept.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Why a sharing schedule, or a sampling run, is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FlowError {
    /// The schedule text is not `uniform:K` or `list:S,S,…`.
    #[error("bad share schedule `{0}`: expected `uniform:K` (K >= 1) or `list:0,S1,S2,…` (increasing steps)")]
    Syntax(String),
    /// Sampling needs at least one step.
    #[error("the number of steps must be at least 1")]
    NoSteps,
    /// The first step has no kept value to reuse.
    #[error("the share schedule must recompute at step 0 (nothing is kept before it); got first step {0}")]
    FirstStep(u32),
    /// A listed step is past the last one.
    #[error("share schedule step {step} is out of range for {steps} steps (0..={last})", last = steps - 1)]
    OutOfRange {
        /// The listed step.
        step: u32,
        /// The number of steps.
        steps: u32,
    },
    /// The listed steps are not strictly increasing.
    #[error("share schedule steps must be strictly increasing: {after} after {before}")]
    NotIncreasing {
        /// The earlier step.
        before: u32,
        /// The step listed after it.
        after: u32,
    },
    /// The model returned a velocity of another size than the latent.
    #[error("the velocity has {found} elements but the latent {expected}")]
    VelocityLength {
        /// The latent's elements.
        expected: usize,
        /// The velocity's.
        found: usize,
    },
}

/// Which denoising steps recompute the shared cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShareSchedule {
    /// Every `k` steps: steps `0, k, 2k, …` (`k = 1` shares nothing).
    Uniform(u32),
    /// Exactly the listed steps (as DDT's statistical dynamic programming
    /// chooses them); strictly increasing, starting at 0.
    List(Vec<u32>),
}

impl FromStr for ShareSchedule {
    type Err = FlowError;

    /// Parses `uniform:K` or `list:0,3,5`.
    fn from_str(s: &str) -> Result<Self, FlowError> {
        let bad = || FlowError::Syntax(s.to_string());
        let number = |n: &str| n.trim().parse::<u32>().map_err(|_| bad());
        match s.split_once(':') {
            Some(("uniform", k)) => match number(k)? {
                0 => Err(bad()),
                k => Ok(ShareSchedule::Uniform(k)),
            },
            Some(("list", steps)) if !steps.trim().is_empty() => Ok(ShareSchedule::List(
                steps.split(',').map(number).collect::<Result<_, _>>()?,
            )),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for ShareSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShareSchedule::Uniform(k) => write!(f, "uniform:{k}"),
            ShareSchedule::List(steps) => {
                let s: Vec<String> = steps.iter().map(u32::to_string).collect();
                write!(f, "list:{}", s.join(","))
            }
        }
    }
}

impl ShareSchedule {
    /// Checks the schedule against a run of `steps` steps.
    pub fn check(&self, steps: u32) -> Result<(), FlowError> {
        if steps == 0 {
            return Err(FlowError::NoSteps);
        }
        match self {
            ShareSchedule::Uniform(0) => Err(FlowError::Syntax(self.to_string())),
            ShareSchedule::Uniform(_) => Ok(()),
            ShareSchedule::List(list) => {
                match list.first() {
                    Some(0) => {}
                    Some(&s) => return Err(FlowError::FirstStep(s)),
                    None => return Err(FlowError::Syntax(self.to_string())),
                }
                for w in list.windows(2) {
                    if w[1] <= w[0] {
                        return Err(FlowError::NotIncreasing {
                            before: w[0],
                            after: w[1],
                        });
                    }
                }
                match list.iter().find(|&&s| s >= steps) {
                    Some(&step) => Err(FlowError::OutOfRange { step, steps }),
                    None => Ok(()),
                }
            }
        }
    }

    /// Whether step `step` recomputes the cache.
    pub fn refreshes(&self, step: u32) -> bool {
        match self {
            ShareSchedule::Uniform(k) => step % (*k).max(1) == 0,
            ShareSchedule::List(list) => list.binary_search(&step).is_ok(),
        }
    }
}

/// Samples with `steps` Euler steps from the noise `x`, after checking
/// `schedule`. `velocity(x, t, refresh)` runs the model at time `t`,
/// recomputing the shared cache when `refresh` (else reusing it).
pub fn euler<E: From<FlowError>>(
    mut x: Vec<f32>,
    steps: u32,
    schedule: &ShareSchedule,
    mut velocity: impl FnMut(&[f32], f32, bool) -> Result<Vec<f32>, E>,
) -> Result<Vec<f32>, E> {
    schedule.check(steps)?;
    for i in 0..steps {
        let t = i as f32 / steps as f32;
        let dt = (i + 1) as f32 / steps as f32 - t;
        let v = velocity(&x, t, schedule.refreshes(i))?;
        if v.len() != x.len() {
            return Err(FlowError::VelocityLength {
                expected: x.len(),
                found: v.len(),
            }
            .into());
        }
        for (x, v) in x.iter_mut().zip(&v) {
            *x += dt * v;
        }
    }
    Ok(x)
}

/// `n` standard normal samples from `seed` (SplitMix64 and Box–Muller), the
/// same on every platform.
pub fn gaussian_noise(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed;
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // In (0, 1]: 53 random bits, never 0 (ln is taken).
        ((z >> 11) + 1) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (uniform(), uniform());
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_and_check() {
        let u: ShareSchedule = "uniform:3".parse().unwrap();
        assert_eq!(u, ShareSchedule::Uniform(3));
        assert!(u.check(10).is_ok());
        let on: Vec<u32> = (0..7).filter(|&s| u.refreshes(s)).collect();
        assert_eq!(on, [0, 3, 6]);
        let l: ShareSchedule = "list:0,1,4".parse().unwrap();
        assert_eq!(l.to_string(), "list:0,1,4");
        assert!(l.refreshes(4) && !l.refreshes(2));
        assert_eq!(l.check(4), Err(FlowError::OutOfRange { step: 4, steps: 4 }));
        for bad in ["uniform:0", "uniform:x", "list:", "every:2", "list:0,,1"] {
            assert!(
                matches!(bad.parse::<ShareSchedule>(), Err(FlowError::Syntax(_))),
                "{bad}"
            );
        }
        let first: ShareSchedule = "list:1,2".parse().unwrap();
        assert_eq!(first.check(4), Err(FlowError::FirstStep(1)));
        let back: ShareSchedule = "list:0,3,2".parse().unwrap();
        assert!(matches!(
            back.check(4),
            Err(FlowError::NotIncreasing { .. })
        ));
        assert_eq!(u.check(0), Err(FlowError::NoSteps));
    }

    #[test]
    fn euler_integrates_a_constant_velocity() {
        let out = euler::<FlowError>(vec![1.0, -1.0], 4, &ShareSchedule::Uniform(2), |_, _, _| {
            Ok(vec![2.0, 0.5])
        })
        .unwrap();
        assert_eq!(out, [3.0, -0.5]);
    }

    #[test]
    fn noise_is_seeded_and_standard() {
        let a = gaussian_noise(7, 4096);
        assert_eq!(a, gaussian_noise(7, 4096));
        assert_ne!(a, gaussian_noise(8, 4096));
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        let var = a.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / a.len() as f32;
        assert!(mean.abs() < 0.1 && (var - 1.0).abs() < 0.1, "{mean} {var}");
    }
}
