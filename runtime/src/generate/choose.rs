//! The one function that picks a token from a row of logits and a [`Draw`],
//! computed the same way on the host (here) and on the device
//! (`device_sample.wgsl`), so both pick the same id.
//!
//! - **Greedy**: the largest logit, the lowest id among ties (infinities
//!   allowed).
//! - **Top-p** at temperature `T` with uniform draw `u ∈ [0, 1)`: with `m` the
//!   largest logit (which must be finite), each token other than a `-inf` one
//!   has the scaled logit `c = max((x − m) · (1/T), −87)` and the weight
//!   `w = exp2(c · log2 e)`. The nucleus is every token with `c ≥ τ`, where `τ`
//!   is found by [`BISECTION_STEPS`] bisection steps on `[−87, 1]`, keeping the
//!   lower end where the weight of `{c ≥ mid}` is at least `top_p` × the total
//!   weight (no bisection when `top_p = 1`: every token is in). Tokens of equal
//!   logit are in or out together. The chosen token is the first one, in id
//!   order, where the nucleus' cumulative weight exceeds `u` × its total
//!   weight; the argmax if rounding leaves none.
//!
//! Every sum is taken in a fixed order both sides follow: the row is split into
//! [`THREADS`] chunks of `ceil(vocab / THREADS)` ids (one per device thread),
//! each chunk summed in id order; totals of the bisection are a pairwise tree
//! over the chunks (stride 128, 64, …, 1), the selection's a running sum over
//! them. So the host and the device do the same f32 operations in the same
//! order, and differ only where their `exp2` rounds differently (an ulp or
//! so): the picked id differs only when `u` or the threshold falls within
//! that rounding of a boundary.

use super::sample::SamplingError;

/// Threads of the device kernel's one workgroup; the row is split into as many chunks.
pub(crate) const THREADS: usize = 256;
/// Bisection steps for the nucleus threshold.
pub(crate) const BISECTION_STEPS: u32 = 32;
/// The floor of a scaled logit: `exp2(−87 · log2 e)` is still a normal f32.
pub(crate) const SCALED_FLOOR: f32 = -87.0;
/// The device's answer for logits holding NaN.
pub(crate) const NAN_LOGITS: u32 = u32::MAX;
/// The device's answer for top-p over logits whose largest value is infinite.
pub(crate) const INFINITE_MAX: u32 = u32::MAX - 1;

/// How one token is chosen: the settings of a [`super::Sampling`] and, for
/// top-p, the uniform number drawn for it ([`super::Sampler::draw`]). The same
/// draw picks the same id on the host ([`Draw::pick`]) and on the device
/// ([`crate::Session::run_sampled`]).
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Draw {
    /// The largest logit (the lowest id among ties).
    Greedy,
    /// Nucleus sampling at a temperature.
    TopP {
        /// `1 / temperature`, finite and above 0.
        inv_temperature: f32,
        /// In `(0, 1]`.
        top_p: f32,
        /// The uniform number in `[0, 1)`.
        u: f32,
    },
}

impl Draw {
    /// The id this draw picks from `logits` (see the module docs); an empty
    /// row, NaN logits, and (for top-p) an infinite largest logit are errors.
    pub fn pick(&self, logits: &[f32]) -> Result<usize, SamplingError> {
        if logits.is_empty() {
            return Err(SamplingError::Logits("an empty row of logits".into()));
        }
        if logits.iter().any(|x| x.is_nan()) {
            return Err(SamplingError::Logits("logits holding NaN".into()));
        }
        let best = argmax(logits);
        match *self {
            Draw::Greedy => Ok(best),
            Draw::TopP {
                inv_temperature,
                top_p,
                u,
            } => {
                let m = logits[best];
                if !m.is_finite() {
                    return Err(SamplingError::Logits(format!(
                        "logits whose largest value is {m}"
                    )));
                }
                let row = Scaled {
                    logits,
                    max: m,
                    inv_temperature,
                };
                Ok(row.top_p(top_p, u).unwrap_or(best))
            }
        }
    }
}

/// Index of the largest value, the lowest among ties.
pub(crate) fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

/// A row of logits with its largest value and the inverse temperature.
struct Scaled<'a> {
    logits: &'a [f32],
    max: f32,
    inv_temperature: f32,
}

impl Scaled<'_> {
    /// The scaled logit of id `i`, `None` for a `-inf` logit.
    fn scaled(&self, i: usize) -> Option<f32> {
        let x = self.logits[i];
        (x != f32::NEG_INFINITY).then(|| ((x - self.max) * self.inv_temperature).max(SCALED_FLOOR))
    }

    /// The ids of chunk `k`.
    fn chunk(&self, k: usize) -> std::ops::Range<usize> {
        let len = self.logits.len();
        let size = len.div_ceil(THREADS);
        let start = (k * size).min(len);
        start..(start + size).min(len)
    }

    /// Each chunk's weight of the tokens with scaled logit at least `tau`.
    fn chunk_masses(&self, tau: f32) -> [f32; THREADS] {
        let mut parts = [0.0f32; THREADS];
        for (k, part) in parts.iter_mut().enumerate() {
            for i in self.chunk(k) {
                if let Some(c) = self.scaled(i).filter(|&c| c >= tau) {
                    *part += weight(c);
                }
            }
        }
        parts
    }

    /// The total weight of the tokens with scaled logit at least `tau`, summed
    /// as the device's tree reduction does.
    fn mass(&self, tau: f32) -> f32 {
        let mut parts = self.chunk_masses(tau);
        let mut stride = THREADS / 2;
        while stride > 0 {
            let (head, tail) = parts.split_at_mut(stride);
            for (a, b) in head.iter_mut().zip(tail.iter()) {
                *a += *b;
            }
            stride /= 2;
        }
        parts[0]
    }

    /// The nucleus threshold: the lower end of the bisection.
    fn threshold(&self, top_p: f32) -> f32 {
        let mut lo = SCALED_FLOOR;
        if top_p < 1.0 {
            let want = top_p * self.mass(SCALED_FLOOR);
            let mut hi = 1.0f32;
            for _ in 0..BISECTION_STEPS {
                let mid = 0.5 * (lo + hi);
                if self.mass(mid) >= want {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
        }
        lo
    }

    /// The id where the nucleus' cumulative weight first exceeds `u` × its
    /// total; `None` if rounding leaves none.
    fn top_p(&self, top_p: f32, u: f32) -> Option<usize> {
        let tau = self.threshold(top_p);
        let parts = self.chunk_masses(tau);
        let total = parts.iter().fold(0.0f32, |acc, &p| acc + p);
        let target = u * total;
        let mut acc = 0.0f32;
        for (k, &part) in parts.iter().enumerate() {
            let start = acc;
            acc += part;
            if acc > target {
                let mut local = 0.0f32;
                for i in self.chunk(k) {
                    if let Some(c) = self.scaled(i).filter(|&c| c >= tau) {
                        local += weight(c);
                        if start + local > target {
                            return Some(i);
                        }
                    }
                }
                return None;
            }
        }
        None
    }
}

/// The weight of a scaled logit, `exp2(c · log2 e)` in f32.
fn weight(c: f32) -> f32 {
    (c * std::f32::consts::LOG2_E).exp2()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top_p(inv_temperature: f32, top_p: f32, u: f32) -> Draw {
        Draw::TopP {
            inv_temperature,
            top_p,
            u,
        }
    }

    #[test]
    fn greedy_takes_the_lowest_id_among_ties_and_allows_infinities() {
        assert_eq!(Draw::Greedy.pick(&[0.1, 3.0, -1.0, 3.0]).unwrap(), 1);
        assert_eq!(Draw::Greedy.pick(&[f32::NEG_INFINITY; 3]).unwrap(), 0);
        assert_eq!(
            Draw::Greedy
                .pick(&[1.0, f32::INFINITY, f32::INFINITY])
                .unwrap(),
            1
        );
    }

    #[test]
    fn the_nucleus_is_the_smallest_top_set_reaching_top_p() {
        // Probabilities ∝ e^2, e^0, e^3, e^0 ≈ 0.251, 0.034, 0.681, 0.034:
        // top_p = 0.8 keeps ids 0 and 2, renormalised to ≈ 0.269 and 0.731.
        let logits = [2.0, 0.0, 3.0, 0.0];
        assert_eq!(top_p(1.0, 0.8, 0.0).pick(&logits).unwrap(), 0);
        assert_eq!(top_p(1.0, 0.8, 0.26).pick(&logits).unwrap(), 0);
        assert_eq!(top_p(1.0, 0.8, 0.28).pick(&logits).unwrap(), 2);
        assert_eq!(top_p(1.0, 0.8, 0.999).pick(&logits).unwrap(), 2);
        // top_p = 1 keeps all four: cumulative in id order 0.251, 0.285, 0.966, 1.
        let all = |u| top_p(1.0, 1.0, u).pick(&logits).unwrap();
        assert_eq!(all(0.2), 0);
        assert_eq!(all(0.26), 1);
        assert_eq!(all(0.5), 2);
        assert_eq!(all(0.99), 3);
    }

    #[test]
    fn tied_logits_are_in_the_nucleus_together() {
        // Two tokens of equal top logit: top_p = 0.1 keeps both.
        let logits = [5.0, 1.0, 5.0];
        assert_eq!(top_p(1.0, 0.1, 0.9).pick(&logits).unwrap(), 2);
        assert_eq!(top_p(1.0, 0.1, 0.1).pick(&logits).unwrap(), 0);
    }

    #[test]
    fn neg_infinite_logits_are_never_picked() {
        let logits = [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, 0.0];
        for u in [0.0, 0.3, 0.6, 0.999] {
            let id = top_p(1.0, 1.0, u).pick(&logits).unwrap();
            assert!(id == 1 || id == 3, "{u}: {id}");
        }
    }

    #[test]
    fn nan_empty_and_infinite_maxima_are_errors() {
        assert!(Draw::Greedy.pick(&[]).is_err());
        assert!(Draw::Greedy.pick(&[1.0, f32::NAN]).is_err());
        assert!(top_p(1.0, 0.9, 0.5).pick(&[1.0, f32::INFINITY]).is_err());
        assert!(top_p(1.0, 0.9, 0.5).pick(&[f32::NEG_INFINITY]).is_err());
    }

    #[test]
    fn rows_longer_than_the_chunks_pick_each_id_at_its_cumulative_share() {
        // 1000 equal logits: id ⌊u·1000⌋ (away from the boundaries).
        let logits = vec![0.5f32; 1000];
        for (u, id) in [(0.0, 0), (0.0005, 0), (0.1234, 123), (0.9996, 999)] {
            assert_eq!(top_p(1.0, 1.0, u).pick(&logits).unwrap(), id, "{u}");
        }
    }
}
