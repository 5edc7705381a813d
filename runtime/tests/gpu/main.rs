//! GPU kernel tests: every generated kernel run on the device (lavapipe on
//! machines without a GPU) against a plain CPU loop, with seeded random inputs.

mod common;
mod matmul;
mod elementwise;
mod attention;
mod movement;
mod rope;
mod rowwise;
mod moe;
mod route;
