//! Decoding one *chunk* of a weight row in registers: the run of weights one
//! invocation handles per step, as `vec4<f32>` groups in element order plus,
//! per sub-block, the scale and the offset that turn them into weights. The
//! dot product then applies each scale once per sub-block:
//! `Σ a·(d·q + m) = d·Σ a·q + m·Σ a`.
//!
//! Word offsets follow the row-plane layout of [`seam_core::quant`]; int8 is
//! sign-extended with a left shift and an arithmetic right shift, nibbles are
//! masked out of a word four at a time, f16 is converted with integer ops
//! (no `shader-f16` needed) and bf16 is the high half of an f32.

use seam_core::WeightFormat;

use crate::wgsl::{wgsl, WgslWriter};

/// Weights one invocation decodes per step: a whole block for the 32-weight
/// formats, two sub-blocks (64 weights, one run of nibble bytes) for `q4_k`,
/// four words for the float formats.
pub fn chunk_elems(format: WeightFormat) -> u32 {
    match format {
        WeightFormat::F32 => 4,
        WeightFormat::F16 | WeightFormat::Bf16 => 8,
        WeightFormat::Q8_0 | WeightFormat::Q4_0 | WeightFormat::Q4_1 => 32,
        WeightFormat::Q4K => 64,
    }
}

/// A run of decoded groups sharing one scale and offset.
pub(crate) struct SubBlock {
    /// Index of its first `vec4` group in the chunk.
    pub first: u32,
    /// How many `vec4` groups it holds.
    pub groups: u32,
    /// The scale `d` (none: the groups are the weights).
    pub scale: Option<String>,
    /// The offset `m` each weight adds (none: zero).
    pub offset: Option<String>,
}

/// Module-scope helpers the format's decoding calls.
pub(crate) fn helpers(format: WeightFormat) -> Vec<&'static str> {
    match format {
        WeightFormat::F32 | WeightFormat::Bf16 => vec![],
        WeightFormat::Q4K => vec![F16_PAIR, Q4K_SCALE_MIN],
        _ => vec![F16_PAIR],
    }
}

/// The two f16 halves of a word as f32, low half first, with integer
/// operations: `unpack2x16float` would need naga's `SHADER_FLOAT16_IN_FLOAT32`
/// capability, which not every back end has. Subnormals, infinities and NaNs
/// convert exactly.
const F16_PAIR: &str = "\
fn f16_pair(x: u32) -> vec2<f32> {
    let h = vec2<u32>(x & 0xffffu, x >> 16u);
    let sign = (h & vec2<u32>(0x8000u)) << vec2<u32>(16u);
    let em = h & vec2<u32>(0x7fffu);
    let normal = (em << vec2<u32>(13u)) + vec2<u32>(0x38000000u);
    let special = (em << vec2<u32>(13u)) | vec2<u32>(0x7f800000u);
    let tiny = bitcast<vec2<u32>>(vec2<f32>(em) * 5.9604645e-8);
    let big = select(normal, special, em >= vec2<u32>(0x7c00u));
    return bitcast<vec2<f32>>(sign | select(big, tiny, em < vec2<u32>(0x400u)));
}";

/// `q4_k`'s 6-bit scale and min of sub-block `j` (ggml's `get_scale_min_k4`)
/// from the 12 scale bytes held in three words.
const Q4K_SCALE_MIN: &str = "\
fn q4k_byte(s: vec3<u32>, i: u32) -> u32 {
    return (s[i / 4u] >> (8u * (i % 4u))) & 0xffu;
}
fn q4k_scale_min(s: vec3<u32>, j: u32) -> vec2<f32> {
    let lo = vec2<u32>(q4k_byte(s, j) & 63u, q4k_byte(s, j + 4u) & 63u);
    let jl = max(j, 4u) - 4u;
    let hi = vec2<u32>(
        (q4k_byte(s, j + 4u) & 0xfu) | ((q4k_byte(s, jl) >> 6u) << 4u),
        (q4k_byte(s, j + 4u) >> 4u) | ((q4k_byte(s, j) >> 6u) << 4u));
    return vec2<f32>(select(hi, lo, j < 4u));
}";

/// Loads words of the row starting at word `wrow` of a weight binding
/// (declared [`WEIGHT_BINDING_TYPE`]), whose registers take the prefix `p`.
///
/// Every row, and every plane in it, starts on a 16-byte boundary (rows are
/// padded to whole `vec4`s, see [`seam_core::quant`]), so words are read four
/// at a time: on lavapipe every storage load is a per-lane loop, so the
/// number of loads, not their bytes, sets the speed (a `q4_0` block's nibbles
/// are one load instead of four); on a GPU, consecutive lanes of a column
/// ([`QuantTile::threads`](super::QuantTile::threads) = the subgroup) read
/// consecutive 16-byte vectors of one row.
struct RowReader<'a> {
    binding: &'a str,
    p: &'a str,
    /// The register holding the row's first word.
    wrow: &'a str,
    /// Whether the chunk's scales come from the `vec4` `{p}sv` loaded before
    /// the chunk loop (see [`ScaleVectors`]) rather than from a load each.
    hoisted: bool,
}

/// The WGSL type of a weight binding: the row planes' words as `vec4`s.
pub(crate) const WEIGHT_BINDING_TYPE: &str = "array<vec4<u32>>";

impl RowReader<'_> {
    /// Loads the `count` words (a multiple of 4) from word `start` of the row
    /// (a multiple of 4) and returns an expression per word; `name` names the
    /// `vec4` registers.
    fn run(&self, w: &mut WgslWriter, name: &str, start: &str, count: u32) -> Vec<String> {
        let (b, p, wrow) = (self.binding, self.p, self.wrow);
        for i in 0..count / 4 {
            wgsl!(w, "let {p}{name}{i} = {b}[({wrow} + {start}) / 4u + {i}u];");
        }
        (0..count)
            .map(|j| {
                format!(
                    "{p}{name}{}.{}",
                    j / 4,
                    ["x", "y", "z", "w"][j as usize % 4]
                )
            })
            .collect()
    }

    /// The word of `scales` holding block `ci`'s scale (and min).
    fn scale_word(&self, scales: ScaleVectors) -> String {
        let (b, p, wrow) = (self.binding, self.p, self.wrow);
        let per_word = scales.blocks / 4;
        if self.hoisted {
            format!("{p}sv[cj / {per_word}u]")
        } else {
            let at = format!("{}u + ci / {per_word}u", scales.plane);
            format!("{b}[({wrow} + {at}) / 4u][({at}) % 4u]")
        }
    }
}

/// Where a format's per-block scales lie, for loading them a `vec4` at a time
/// ahead of the blocks they scale: the formats whose chunk is one block with
/// its scale (and min) in a plane of their own (`q8_0`, `q4_0`, `q4_1`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScaleVectors {
    /// The plane's first word in the row (a multiple of 4).
    pub plane: u64,
    /// Blocks whose scales one `vec4` holds.
    pub blocks: u32,
}

impl ScaleVectors {
    /// The scales plane of a row of `nb` blocks in `format`, if it has one.
    pub(crate) fn of(format: WeightFormat, nb: u64) -> Option<ScaleVectors> {
        match format {
            WeightFormat::Q8_0 => Some(ScaleVectors {
                plane: 8 * nb,
                blocks: 8,
            }),
            WeightFormat::Q4_0 => Some(ScaleVectors {
                plane: 4 * nb,
                blocks: 8,
            }),
            WeightFormat::Q4_1 => Some(ScaleVectors {
                plane: 4 * nb,
                blocks: 4,
            }),
            _ => None,
        }
    }

    /// Loads `vec4` `cg` of the plane into `{p}sv` for the row at register
    /// `wrow` of `binding`: the scales of blocks `cg·blocks …`, which the
    /// chunk loop then indexes with `cj` (the row is padded to whole `vec4`s,
    /// so a last partial one is in range).
    pub(crate) fn write_load(self, w: &mut WgslWriter, (binding, p, wrow): (&str, &str, &str)) {
        wgsl!(
            w,
            "let {p}sv = {binding}[({wrow} + {}u) / 4u + cg];",
            self.plane
        );
    }
}

/// Writes the decoding of chunk `ci` of the row starting at the word held in
/// register `wrow` of binding `w` (declared [`WEIGHT_BINDING_TYPE`]) into
/// `let {p}{i}: vec4<f32>` (groups in element order) and returns its
/// sub-blocks. `nb` is the row's number of blocks. With `hoisted`, the scales
/// are read from `{p}sv` at chunk `cj` of the group (see [`ScaleVectors`]).
pub(crate) fn write_chunk(
    w: &mut WgslWriter,
    format: WeightFormat,
    (binding, p, wrow): (&str, &str, &str),
    nb: u64,
    hoisted: bool,
) -> Vec<SubBlock> {
    let rd = RowReader {
        binding,
        p,
        wrow,
        hoisted,
    };
    // Every format that reads a scale word has a scales plane.
    let scales = ScaleVectors::of(format, nb).unwrap_or(ScaleVectors {
        plane: 0,
        blocks: 4,
    });
    let plain = |groups| {
        vec![SubBlock {
            first: 0,
            groups,
            scale: None,
            offset: None,
        }]
    };
    match format {
        WeightFormat::F32 => {
            let x = rd.run(w, "v", "4u * ci", 4);
            wgsl!(
                w,
                "let {p}0 = bitcast<vec4<f32>>(vec4<u32>({}));",
                x.join(", ")
            );
            plain(1)
        }
        WeightFormat::F16 | WeightFormat::Bf16 => {
            let x = rd.run(w, "v", "4u * ci", 4);
            for g in 0..2 {
                let (x0, x1) = (&x[2 * g], &x[2 * g + 1]);
                if format == WeightFormat::F16 {
                    wgsl!(w, "let {p}{g} = vec4<f32>(f16_pair({x0}), f16_pair({x1}));");
                } else {
                    let hi = "0xffff0000u";
                    wgsl!(
                        w,
                        "let {p}{g} = bitcast<vec4<f32>>(vec4<u32>({x0} << 16u, {x0} & {hi}, {x1} << 16u, {x1} & {hi}));"
                    );
                }
            }
            plain(2)
        }
        WeightFormat::Q8_0 => {
            for (j, x) in rd.run(w, "v", "8u * ci", 8).iter().enumerate() {
                wgsl!(
                    w,
                    "let {p}{j} = vec4<f32>(bitcast<vec4<i32>>(vec4<u32>({x}) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));"
                );
            }
            let d = write_half_scale(w, p, &rd.scale_word(scales));
            vec![SubBlock {
                first: 0,
                groups: 8,
                scale: Some(d),
                offset: None,
            }]
        }
        WeightFormat::Q4_0 | WeightFormat::Q4_1 => {
            let nibbles = rd.run(w, "v", "4u * ci", 4);
            write_nibbles(w, p, &nibbles);
            let (d, m) = if format == WeightFormat::Q4_0 {
                let d = write_half_scale(w, p, &rd.scale_word(scales));
                let m = format!("-8.0 * {d}");
                (d, m)
            } else {
                wgsl!(w, "let {p}dm = f16_pair({});", rd.scale_word(scales));
                (format!("{p}dm.x"), format!("{p}dm.y"))
            };
            vec![SubBlock {
                first: 0,
                groups: 8,
                scale: Some(d),
                offset: Some(m),
            }]
        }
        WeightFormat::Q4K => write_q4k(w, &rd),
    }
}

/// `{p}d`: the f16 scale of block `ci` from half `ci % 2` of word `at`.
fn write_half_scale(w: &mut WgslWriter, p: &str, at: &str) -> String {
    wgsl!(w, "let {p}dd = f16_pair({at});");
    wgsl!(w, "let {p}d = select({p}dd.x, {p}dd.y, (ci & 1u) == 1u);");
    format!("{p}d")
}

/// Groups `{p}0 … {p}{2·n−1}` from the `n` words of nibble bytes `words`: the
/// low nibbles of word `j` are group `j`, the high nibbles group `n + j`.
fn write_nibbles(w: &mut WgslWriter, p: &str, words: &[String]) {
    let n = words.len();
    for (j, word) in words.iter().enumerate() {
        wgsl!(w, "let {p}x{j} = vec4<u32>({word});");
        wgsl!(
            w,
            "let {p}{j} = vec4<f32>(({p}x{j} >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(15u));"
        );
        wgsl!(
            w,
            "let {p}{} = vec4<f32>(({p}x{j} >> vec4<u32>(4u, 12u, 20u, 28u)) & vec4<u32>(15u));",
            n + j
        );
    }
}

/// `q4_k`: chunk `ci` is quarter `ci % 4` of super-block `ci / 4` — 32 nibble
/// bytes, low nibbles sub-block `2·(ci % 4)`, high nibbles the next one.
fn write_q4k(w: &mut WgslWriter, rd: &RowReader) -> Vec<SubBlock> {
    let p = rd.p;
    wgsl!(w, "let {p}sb = 36u * (ci / 4u);");
    wgsl!(w, "let {p}qt = ci % 4u;");
    let head = rd.run(w, "h", &format!("{p}sb"), 4);
    wgsl!(w, "let {p}dm = f16_pair({});", head[0]);
    wgsl!(w, "let {p}sc = vec3<u32>({});", head[1..].join(", "));
    let nibbles = rd.run(w, "v", &format!("{p}sb + 4u + 8u * {p}qt"), 8);
    write_nibbles(w, p, &nibbles);
    (0..2)
        .map(|s| {
            wgsl!(w, "let {p}sm{s} = q4k_scale_min({p}sc, 2u * {p}qt + {s}u);");
            SubBlock {
                first: 8 * s,
                groups: 8,
                scale: Some(format!("{p}dm.x * {p}sm{s}.x")),
                offset: Some(format!("-{p}dm.y * {p}sm{s}.y")),
            }
        })
        .collect()
}
