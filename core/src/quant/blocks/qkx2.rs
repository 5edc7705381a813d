//! ggml's `make_qkx2_quants` (squared-error variant): the affine 4-bit fit
//! `x ≈ scale·L − the_min` of one sub-block that `quantize_row_q4_K_ref`
//! uses, a grid search over `nstep + 1` candidate scales refined by weighted
//! least squares.

use super::nearest_int;

/// The parameters of one search: `nmax` the largest level, and candidate
/// inverse scales `(rmin + rdelta·is + nmax)/(max − min)` for `is` in
/// `0..=nstep`.
pub(super) struct Search {
    /// Largest quantization level.
    pub nmax: i32,
    /// Offset of the first candidate.
    pub rmin: f32,
    /// Step between candidates.
    pub rdelta: f32,
    /// Number of steps.
    pub nstep: i32,
}

/// Weighted sums of a sub-block the search reuses.
struct Sums {
    /// `Σ w`.
    w: f32,
    /// `Σ w·x`.
    x: f32,
    /// Smallest `x`, at most 0.
    min: f32,
    /// Largest `x`.
    max: f32,
}

/// Fits `x` (with `weights`) to levels `l` in `0..=nmax`; returns
/// `(scale, the_min)` with `x ≈ scale·l − the_min`.
pub(super) fn make_qkx2_quants(s: &Search, x: &[f32], weights: &[f32], l: &mut [u8]) -> (f32, f32) {
    let sums = sums(x, weights);
    let (mut min, max) = (sums.min, sums.max);
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }
    let iscale = s.nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    levels(s.nmax, iscale, min, x, l);
    let mut best_error = error(scale, min, x, weights, l);
    if s.nstep < 1 {
        return (scale, -min);
    }
    let mut aux = vec![0u8; x.len()];
    for is in 0..=s.nstep {
        // As in ggml, later candidates are measured from the best min so far.
        let iscale = (s.rmin + s.rdelta * is as f32 + s.nmax as f32) / (max - min);
        levels(s.nmax, iscale, min, x, &mut aux);
        let Some((this_scale, this_min)) = least_squares(&sums, x, weights, &aux) else {
            continue;
        };
        let cur_error = error(this_scale, this_min, x, weights, &aux);
        if cur_error < best_error {
            l.copy_from_slice(&aux);
            best_error = cur_error;
            scale = this_scale;
            min = this_min;
        }
    }
    (scale, -min)
}

/// The weighted sums and the range (min clamped to at most 0) of `x`.
fn sums(x: &[f32], weights: &[f32]) -> Sums {
    let mut s = Sums {
        w: weights[0],
        x: weights[0] * x[0],
        min: x[0],
        max: x[0],
    };
    for (&v, &w) in x.iter().zip(weights).skip(1) {
        if v < s.min {
            s.min = v;
        }
        if v > s.max {
            s.max = v;
        }
        s.w += w;
        s.x += w * v;
    }
    if s.min > 0.0 {
        s.min = 0.0;
    }
    s
}

/// `l_i = clamp(nearest_int(iscale·(x_i − min)), 0, nmax)`.
fn levels(nmax: i32, iscale: f32, min: f32, x: &[f32], l: &mut [u8]) {
    for (q, &v) in l.iter_mut().zip(x) {
        *q = nearest_int(iscale * (v - min)).clamp(0, nmax) as u8;
    }
}

/// `Σ w·(scale·l + min − x)²`.
fn error(scale: f32, min: f32, x: &[f32], weights: &[f32], l: &[u8]) -> f32 {
    let mut e = 0f32;
    for ((&v, &w), &q) in x.iter().zip(weights).zip(l) {
        let diff = scale * f32::from(q) + min - v;
        e += w * (diff * diff);
    }
    e
}

/// The weighted least-squares `(scale, min)` for fixed levels `l`, with `min`
/// clamped to at most 0; `None` when the system is singular.
fn least_squares(s: &Sums, x: &[f32], weights: &[f32], l: &[u8]) -> Option<(f32, f32)> {
    let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
    for ((&v, &w), &q) in x.iter().zip(weights).zip(l) {
        let q = f32::from(q);
        sum_l += w * q;
        sum_l2 += w * q * q;
        sum_xl += w * q * v;
    }
    let det = s.w * sum_l2 - sum_l * sum_l;
    if det > 0.0 {
        let this_scale = (s.w * sum_xl - s.x * sum_l) / det;
        let this_min = (sum_l2 * s.x - sum_l * sum_xl) / det;
        if this_min > 0.0 {
            Some((sum_xl / sum_l2, 0.0))
        } else {
            Some((this_scale, this_min))
        }
    } else {
        None
    }
}
