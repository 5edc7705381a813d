//! Kernel generators, one module per family.

pub mod attention;
pub mod elementwise;
pub mod matmul;
pub mod moe;
pub mod movement;
pub mod pooled_attention;
pub mod qmatmul;
pub mod rope;
pub mod rotary_split;
pub mod route;
pub mod rowwise;
