//! GPU kernel tests: every generated kernel run on the device (lavapipe on
//! machines without a GPU) against a plain CPU loop, with seeded random inputs.

mod attention;
mod common;
mod elementwise;
mod matmul;
mod moe;
mod movement;
mod rope;
mod route;
mod rowwise;
