//! Kernel generators, one module per family.

pub mod attention;
pub mod elementwise;
pub mod matmul;
pub mod moe;
pub mod movement;
pub mod rope;
pub mod route;
pub mod rowwise;

/// The gated activation of an expert FFN (`act(x·gate) * (x·up)`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum GatedAct {
    /// SiLU gate (SwiGLU).
    SwiGlu,
    /// Exact (erf) GELU gate (GeGLU).
    GeGlu,
}

impl GatedAct {
    /// The WGSL helper applying the gate's activation.
    pub(crate) fn wgsl_fn(self) -> &'static str {
        match self {
            GatedAct::SwiGlu => "seam_silu",
            GatedAct::GeGlu => "seam_gelu_erf",
        }
    }
}
