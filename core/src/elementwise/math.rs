//! The scalar math of the activations whose formula is more than one call.
//! Every function computes in `f32` unless it says otherwise.

/// `x · sigmoid(x)`, computed as `x / (1 + exp(-x))`.
pub(super) fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// `1 / (1 + exp(-x))`.
pub(super) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Exact GELU, `0.5·x·(1 + erf(x/√2))`, evaluated in `f64` and rounded.
pub(super) fn gelu_erf(x: f32) -> f32 {
    let x = f64::from(x);
    (0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))) as f32
}

/// Tanh-approximated GELU, `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, in `f64`.
pub(super) fn gelu_tanh(x: f32) -> f32 {
    let x = f64::from(x);
    let c = (2.0 / std::f64::consts::PI).sqrt();
    (0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_values() {
        // gelu(1) = 0.5·(1 + erf(1/√2)) = 0.841344746…
        assert!((f64::from(gelu_erf(1.0)) - 0.841_344_746_068_542_9).abs() < 1e-7);
        // silu(2) = 2 / (1 + e^-2) = 1.761594156…
        assert!((silu(2.0) - 1.761_594_2).abs() < 1e-6);
        assert_eq!(silu(-200.0), -0.0);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
        // gelu_tanh(1) = 0.5·(1 + tanh(√(2/π)·1.044715)) = 0.841191990…
        assert!((f64::from(gelu_tanh(1.0)) - 0.841_191_990_607_477_2).abs() < 1e-7);
    }
}
