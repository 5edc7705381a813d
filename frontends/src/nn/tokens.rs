//! The rows a function runs over and their positions.

use seam_ir::{Dim, ValueId};

/// The token rows of one call and their positions in the sequence.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Tokens<'a> {
    /// The number of rows (`tokens`, or 1 in `decode`).
    pub rows: &'a Dim,
    /// `pos: i32[rows]`, each row's position (RoPE's input).
    pub pos: ValueId,
}
