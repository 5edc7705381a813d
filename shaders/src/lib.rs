//! # seam-shaders
//!
//! The WGSL kernel library: one generator per kernel family (matmul, GEMV,
//! element-wise, norms, softmax, gather, RoPE, attention, top-k routing and the
//! grouped MoE kernels), each specialised by shape, dtype and the device limits
//! read at start-up, and every generated module validated with naga.
//!
//! Filled by the GPU-slice work; see the workspace README.
