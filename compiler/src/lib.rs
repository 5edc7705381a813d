//! seam-compiler
