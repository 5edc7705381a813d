//! # seam-frontends
//!
//! Ways into the IR: the Rust [builder](crate) API (and, later, the Hugging Face
//! checkpoint importer).
