//! # seam-runtime
//!
//! Loads a Seam bundle, verifies it before touching the GPU, and runs it through
//! wgpu on Vulkan, Metal, DX12 — or on machines without a GPU through Mesa's
//! lavapipe. It depends on wgpu, bytemuck and serde only: never on the compiler,
//! the frontends, egg or petgraph, so an app can embed it alone.
//!
//! Filled by the GPU-slice work; see the workspace README.
