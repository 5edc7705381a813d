//! The gated activation of an expert FFN or a `gated_matmul`:
//! `act(x·W_gate) * (x·W_up)`, one [`UnaryFn`] applied to the gate.

use super::UnaryFn;

/// Which activation gates a gated projection.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GatedAct {
    /// SiLU gate (SwiGLU): `silu(x·gate) * (x·up)`.
    SwiGlu,
    /// Exact (erf) GELU gate (GeGLU): `gelu_erf(x·gate) * (x·up)`.
    GeGlu,
}

impl GatedAct {
    /// Every gated activation.
    pub const ALL: [GatedAct; 2] = [GatedAct::SwiGlu, GatedAct::GeGlu];

    /// The name in the text format (`act=swiglu`).
    pub fn name(self) -> &'static str {
        match self {
            GatedAct::SwiGlu => "swiglu",
            GatedAct::GeGlu => "geglu",
        }
    }

    /// The activation applied to the gate projection (its math and WGSL).
    pub fn activation(self) -> UnaryFn {
        match self {
            GatedAct::SwiGlu => UnaryFn::Silu,
            GatedAct::GeGlu => UnaryFn::GeluErf,
        }
    }
}
