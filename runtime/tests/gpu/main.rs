//! GPU kernel tests: every generated kernel run on the device (lavapipe on
//! machines without a GPU) against a plain CPU loop, with seeded random inputs.

// Reference loops index several arrays by the same counters, as the math reads.
#![allow(clippy::needless_range_loop)]

mod attention;
mod common;
mod elementwise;
mod epilogue;
mod matmul;
mod moe;
mod movement;
mod qmatmul;
mod qmoe;
mod rope;
mod route;
mod rowwise;
mod runtime;
