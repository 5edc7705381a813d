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

/// Writes the decoding of chunk `ci` of the row starting at word `wrow` of
/// binding `w` into `let {p}{i}: vec4<f32>` (groups in element order) and
/// returns its sub-blocks. `nb` is the row's number of blocks.
pub(crate) fn write_chunk(
    w: &mut WgslWriter,
    format: WeightFormat,
    (binding, p): (&str, &str),
    nb: u64,
) -> Vec<SubBlock> {
    let word = |i: String| format!("{binding}[wrow + {i}]");
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
            let x: Vec<String> = (0..4).map(|j| word(format!("4u * ci + {j}u"))).collect();
            wgsl!(
                w,
                "let {p}0 = bitcast<vec4<f32>>(vec4<u32>({}));",
                x.join(", ")
            );
            plain(1)
        }
        WeightFormat::F16 | WeightFormat::Bf16 => {
            for j in 0..4 {
                wgsl!(w, "let {p}x{j} = {};", word(format!("4u * ci + {j}u")));
            }
            for g in 0..2 {
                let (x0, x1) = (format!("{p}x{}", 2 * g), format!("{p}x{}", 2 * g + 1));
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
            for j in 0..8 {
                let x = word(format!("8u * ci + {j}u"));
                wgsl!(
                    w,
                    "let {p}{j} = vec4<f32>(bitcast<vec4<i32>>(vec4<u32>({x}) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));"
                );
            }
            let d = write_half_scale(w, p, &word(format!("{}u + ci / 2u", 8 * nb)));
            vec![SubBlock {
                first: 0,
                groups: 8,
                scale: Some(d),
                offset: None,
            }]
        }
        WeightFormat::Q4_0 | WeightFormat::Q4_1 => {
            write_nibbles(w, p, 4, &|j| word(format!("4u * ci + {j}u")));
            let (d, m) = if format == WeightFormat::Q4_0 {
                let d = write_half_scale(w, p, &word(format!("{}u + ci / 2u", 4 * nb)));
                let m = format!("-8.0 * {d}");
                (d, m)
            } else {
                wgsl!(
                    w,
                    "let {p}dm = f16_pair({});",
                    word(format!("{}u + ci", 4 * nb))
                );
                (format!("{p}dm.x"), format!("{p}dm.y"))
            };
            vec![SubBlock {
                first: 0,
                groups: 8,
                scale: Some(d),
                offset: Some(m),
            }]
        }
        WeightFormat::Q4K => write_q4k(w, p, &word),
    }
}

/// `{p}d`: the f16 scale of block `ci` from half `ci % 2` of word `at`.
fn write_half_scale(w: &mut WgslWriter, p: &str, at: &str) -> String {
    wgsl!(w, "let {p}dd = f16_pair({at});");
    wgsl!(w, "let {p}d = select({p}dd.x, {p}dd.y, (ci & 1u) == 1u);");
    format!("{p}d")
}

/// Groups `{p}0 … {p}{2·words−1}` from `words` words of nibble bytes: the low
/// nibbles of word `j` are group `j`, the high nibbles group `words + j`.
fn write_nibbles(w: &mut WgslWriter, p: &str, words: u32, word: &dyn Fn(u32) -> String) {
    for j in 0..words {
        wgsl!(w, "let {p}x{j} = vec4<u32>({});", word(j));
        wgsl!(
            w,
            "let {p}{j} = vec4<f32>(({p}x{j} >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(15u));"
        );
        wgsl!(
            w,
            "let {p}{} = vec4<f32>(({p}x{j} >> vec4<u32>(4u, 12u, 20u, 28u)) & vec4<u32>(15u));",
            words + j
        );
    }
}

/// `q4_k`: chunk `ci` is quarter `ci % 4` of super-block `ci / 4` — 32 nibble
/// bytes, low nibbles sub-block `2·(ci % 4)`, high nibbles the next one.
fn write_q4k(w: &mut WgslWriter, p: &str, word: &dyn Fn(String) -> String) -> Vec<SubBlock> {
    wgsl!(w, "let {p}sb = 36u * (ci / 4u);");
    wgsl!(w, "let {p}qt = ci % 4u;");
    wgsl!(w, "let {p}dm = f16_pair({});", word(format!("{p}sb")));
    let sc: Vec<String> = (1..4).map(|i| word(format!("{p}sb + {i}u"))).collect();
    wgsl!(w, "let {p}sc = vec3<u32>({});", sc.join(", "));
    write_nibbles(w, p, 8, &|j| {
        word(format!("{p}sb + 4u + 8u * {p}qt + {j}u"))
    });
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
