//! [`BLayout`]: how the right operand of a product is stored.

/// How the right operand is stored.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum BLayout {
    /// `b[K, N]`, row-major (the IR's layout).
    RowMajor,
    /// `b[N, K]`: each output column's weights are contiguous. The compiler may
    /// repack a weight this way at compile time; GEMV prefers it.
    Transposed,
}
