//! A rotary split: the pieces of each row of `x[tokens, width]` (say a merged
//! q‖k‖v product), each optionally rotated by RoPE and written either to a
//! tensor of its own or straight into the rows of a KV cache or slot pool —
//! what `split`, `rope` and `slice_update`/`write_rows` do in five dispatches
//! per attention layer, in one.
//!
//! Piece `j` covers columns `start..start + len` of every row. RoPE follows
//! [`super::rope`] exactly (rotate-half, `head_dim` per head, the same
//! frequency and angle expressions), so a rotated piece is bit for bit what
//! the `rope` kernel computes. Destinations, for row `t` and element `e` of
//! the piece:
//! - [`PieceDest::Out`]: `out_j[t · len + e]`;
//! - [`PieceDest::Tail`]: the last `tokens` rows of a cache of `rows_j` rows,
//!   `out_j[(rows_j − tokens + t) · len + e]` (nothing is written when the
//!   cache has fewer rows than the call has tokens);
//! - [`PieceDest::Rows`]: row `(slot[t], wpos[t])` of a pool
//!   `[slots, slot_len, len]`, skipped when the slot or position lies outside
//!   the pool (as `write_rows`).
//!
//! Bindings: `x`, then `pos` (i32 `[tokens]`) when a piece is rotated, then
//! `slot` and `wpos` (i32 `[tokens]`) when a piece writes a pool, then `out0…`
//! (read-write) in piece order. Sizes `tokens`, `width`, `rows{j}` per
//! [`PieceDest::Tail`] piece, `slots` and `slot_len` when a piece writes a
//! pool. One invocation per element of `x`.

use crate::error::ShaderError;
use crate::wgsl::{f32_literal, wgsl, KernelBuilder, ScalarType, WgslWriter};
use seam_core::DeviceLimits;
use seam_core::{Dim, Grid, Kernel};

/// The RoPE applied to a piece.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PieceRope {
    /// Base of the frequencies.
    pub theta: f32,
    /// Elements per head (even); the piece's length is a multiple of it.
    pub head_dim: u32,
}

/// Where a piece's rows go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceDest {
    /// A tensor `[tokens, len]` of its own.
    Out,
    /// The last `tokens` rows of a cache `[rows, len]` (size `rows{j}`).
    Tail,
    /// Row `(slot[t], wpos[t])` of a pool `[slots, slot_len, len]`.
    Rows,
}

/// One piece of a [`rotary_split`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplitPiece {
    /// First column of `x` in the piece.
    pub start: u32,
    /// Columns in the piece.
    pub len: u32,
    /// The rotation, if the piece is rotated.
    pub rope: Option<PieceRope>,
    /// Where its rows go.
    pub dest: PieceDest,
}

/// Generates the rotary split of `pieces` (disjoint column ranges of rows of
/// `width` columns; `width` fixed or dynamic).
pub fn rotary_split(
    pieces: &[SplitPiece],
    width: Dim,
    limits: &DeviceLimits,
) -> Result<Kernel, ShaderError> {
    let name = format!("rotary_split{}", pieces.len());
    let config = |msg: String| Err(ShaderError::config(&name, msg));
    let rotated = pieces.iter().any(|p| p.rope.is_some());
    let pooled = pieces.iter().any(|p| p.dest == PieceDest::Rows);
    let bindings = 1 + pieces.len() + usize::from(rotated) + 2 * usize::from(pooled);
    if pieces.is_empty() || bindings > limits.max_storage_buffers_per_stage as usize {
        return config(format!(
            "{} pieces need {bindings} storage bindings (at most {} on this device)",
            pieces.len(),
            limits.max_storage_buffers_per_stage
        ));
    }
    let mut covered: Vec<(u32, u32)> = Vec::new();
    for (j, p) in pieces.iter().enumerate() {
        let end = p.start.checked_add(p.len).filter(|_| p.len > 0);
        let Some(end) = end else {
            return config(format!("piece {j} is empty or past u32"));
        };
        if width.fixed().is_some_and(|w| end > w) {
            return config(format!("piece {j} ends at column {end}, past the row"));
        }
        if covered.iter().any(|&(s, e)| p.start < e && s < end) {
            return config(format!("piece {j} overlaps another"));
        }
        covered.push((p.start, end));
        if let Some(r) = p.rope {
            if r.head_dim == 0 || r.head_dim % 2 != 0 || p.len % r.head_dim != 0 {
                return config(format!(
                    "piece {j}: head_dim {} must be even and divide its {} columns",
                    r.head_dim, p.len
                ));
            }
            if r.theta.is_nan() || r.theta <= 0.0 {
                return config(format!("piece {j}: theta must be positive"));
            }
        }
    }
    let workgroup = limits.clamp_workgroup(256);
    let mut kb = KernelBuilder::new(name, workgroup);
    kb.size("tokens", Dim::Dynamic).size("width", width);
    for (j, p) in pieces.iter().enumerate() {
        if p.dest == PieceDest::Tail {
            kb.size(&format!("rows{j}"), Dim::Dynamic);
        }
    }
    if pooled {
        kb.size("slots", Dim::Dynamic)
            .size("slot_len", Dim::Dynamic);
    }
    kb.input("x", ScalarType::F32);
    if rotated {
        kb.input("pos", ScalarType::I32);
    }
    if pooled {
        kb.input("slot", ScalarType::I32)
            .input("wpos", ScalarType::I32);
    }
    for j in 0..pieces.len() {
        kb.output(&format!("out{j}"), ScalarType::F32);
    }
    let mut w = WgslWriter::new();
    wgsl!(w, "let i = group * {workgroup}u + lidx;");
    w.line("if (i >= TOKENS * WIDTH) { return; }");
    w.line("let t = i / WIDTH;");
    w.line("let c = i % WIDTH;");
    for (j, p) in pieces.iter().enumerate() {
        write_piece(&mut w, j, p);
    }
    Ok(kb.finish(&w.finish(), Grid::linear(&["tokens", "width"], workgroup)))
}

/// The statements of piece `j`: value, rotation, store.
fn write_piece(w: &mut WgslWriter, j: usize, p: &SplitPiece) {
    let (start, len) = (p.start, p.len);
    w.open(format_args!(
        "if (c >= {start}u && c < {}u) {{",
        u64::from(start) + u64::from(len)
    ));
    wgsl!(w, "let e = c - {start}u;");
    match p.rope {
        None => w.line("let v = x[i];"),
        Some(r) => {
            let head_dim = r.head_dim;
            // As the rope kernel: pair (q, q + half) of a head, angle pos · freq(q).
            wgsl!(w, "let half = {}u;", head_dim / 2);
            wgsl!(w, "let d = e % {head_dim}u;");
            w.line("let q = d % half;");
            wgsl!(
                w,
                "let freq = exp2(-(2.0 * f32(q) / f32({head_dim}u)) * {});",
                f32_literal(r.theta.log2())
            );
            w.line("let ang = f32(pos[t]) * freq;");
            w.line("let cs = cos(ang);");
            w.line("let sn = sin(ang);");
            w.line("let x0 = x[i - d + q];");
            w.line("let x1 = x[i - d + q + half];");
            w.line("let v = select(x0 * cs - x1 * sn, x1 * cs + x0 * sn, d >= half);");
        }
    }
    match p.dest {
        PieceDest::Out => wgsl!(w, "out{j}[t * {len}u + e] = v;"),
        PieceDest::Tail => {
            wgsl!(
                w,
                "if (TOKENS <= ROWS{j}) {{ out{j}[(ROWS{j} - TOKENS + t) * {len}u + e] = v; }}"
            );
        }
        PieceDest::Rows => {
            w.line("let s = slot[t];");
            w.line("let p = wpos[t];");
            w.open("if (s >= 0i && p >= 0i && u32(s) < SLOTS && u32(p) < SLOT_LEN) {");
            wgsl!(w, "out{j}[(u32(s) * SLOT_LEN + u32(p)) * {len}u + e] = v;");
            w.close();
        }
    }
    w.line("return;");
    w.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(start: u32, len: u32, rope: bool, dest: PieceDest) -> SplitPiece {
        SplitPiece {
            start,
            len,
            rope: rope.then_some(PieceRope {
                theta: 10000.0,
                head_dim: 64,
            }),
            dest,
        }
    }

    #[test]
    fn q_k_v_of_a_merged_product_validate() {
        let limits = DeviceLimits::lavapipe();
        for dest in [PieceDest::Tail, PieceDest::Rows] {
            let pieces = [
                piece(0, 576, true, PieceDest::Out),
                piece(576, 192, true, dest),
                piece(768, 192, false, dest),
            ];
            let k = rotary_split(&pieces, Dim::Fixed(960), &limits).unwrap();
            crate::validate::validate(&k).unwrap();
            // x, pos, (slot, wpos,) out0..out2; the dynamic sizes' uniform after them.
            let storage = 1 + 1 + 2 * usize::from(dest == PieceDest::Rows) + 3;
            assert_eq!(k.bindings.len(), storage + 1);
        }
    }

    #[test]
    fn bad_pieces_are_refused_by_name() {
        let limits = DeviceLimits::lavapipe();
        let cases: [(&[SplitPiece], &str); 4] = [
            (&[], "storage bindings"),
            (
                &[
                    piece(0, 64, false, PieceDest::Out),
                    piece(32, 64, false, PieceDest::Out),
                ],
                "overlaps",
            ),
            (&[piece(0, 96, true, PieceDest::Out)], "head_dim"),
            (&[piece(64, 128, false, PieceDest::Out)], "past the row"),
        ];
        for (pieces, what) in cases {
            let err = rotary_split(pieces, Dim::Fixed(128), &limits).unwrap_err();
            assert!(err.to_string().contains(what), "{err}");
        }
    }
}
