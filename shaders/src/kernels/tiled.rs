//! The shared-memory tiled matrix product for GPUs: 256 invocations (16×16) per
//! workgroup, a `block × block` output tile, `depth`-deep slices of `a` and `b`
//! staged in workgroup memory between two barriers, `(block/16)²` outputs per
//! invocation (strided by 16 so neighbouring invocations touch neighbouring
//! shared-memory words). Same bindings and sizes as [`super::matmul::matmul`].

use std::fmt::Write as _;

use crate::error::ShaderError;
use crate::kernel::{Grid, GridDim, Kernel};
use crate::wgsl::{KernelBuilder, ScalarType, ACTIVATIONS};

use super::matmul::{BLayout, Epilogue, MatmulConfig, TiledTile};
use super::rowblock::{acc, val};

pub(crate) fn generate(cfg: &MatmulConfig, tile: TiledTile) -> Result<Kernel, ShaderError> {
    let (bl, d) = (tile.block, tile.depth);
    if bl == 0 || bl % 16 != 0 || d == 0 || (bl * d) % 256 != 0 {
        return Err(ShaderError::config(
            "matmul_tiled",
            "block must be a positive multiple of 16 and block·depth a multiple of 256",
        ));
    }
    let mats = cfg.epilogue.mats();
    let tiles = 1 + mats.len() as u32;
    if (tiles * bl * d * 4) > 16384 {
        return Err(ShaderError::config(
            "matmul_tiled",
            "tiles exceed 16 KiB of workgroup memory",
        ));
    }
    let parts = cfg.b_split.parts.max(1);
    if parts > 1 && cfg.b_batched {
        return Err(ShaderError::config(
            "matmul_tiled",
            "a batched right operand cannot be split across bindings",
        ));
    }
    let t = bl / 16;
    let name = format!(
        "matmul_tiled{bl}x{d}{}{}{}",
        if cfg.b_layout == BLayout::Transposed {
            "_bt"
        } else {
            ""
        },
        if parts > 1 {
            format!("_p{parts}")
        } else {
            String::new()
        },
        cfg.epilogue.tag()
    );
    let mut kb = KernelBuilder::new(&name, 256);
    kb.size("m", cfg.m).size("n", cfg.n).size("k", cfg.k);
    if let Some(b) = cfg.batch {
        kb.size("batch", b);
    }
    kb.input("a", ScalarType::F32);
    let pn = |mat: &str, p: u32| {
        if parts == 1 {
            mat.to_string()
        } else {
            format!("{mat}_{p}")
        }
    };
    for mat in mats {
        for p in 0..parts {
            kb.input(&pn(mat, p), ScalarType::F32);
        }
    }
    if cfg.epilogue.adds() {
        kb.input("r", ScalarType::F32);
    }
    kb.output("out", ScalarType::F32);
    if cfg.epilogue.gated().is_some() {
        kb.item(ACTIVATIONS);
    }
    kb.item(format!("var<workgroup> tile_a: array<f32, {}>;", bl * d));
    let rp = u64::from(cfg.b_split.rows_per_part);
    for mat in mats {
        kb.item(format!(
            "var<workgroup> tile_{mat}: array<f32, {}>;",
            bl * d
        ));
        // load_{mat}(stored_row, col, width): element of the stored matrix.
        let mut f = format!("fn load_{mat}(row: u32, col: u32, width: u32) -> f32 {{\n");
        for p in 0..parts {
            let lo = (u64::from(p) * rp).min(u64::from(u32::MAX));
            if p + 1 < parts {
                let hi = (lo + rp).min(u64::from(u32::MAX));
                let _ = writeln!(
                    f,
                    "    if (row < {hi}u) {{ return {}[(row - {lo}u) * width + col]; }}",
                    pn(mat, p)
                );
            } else {
                let _ = writeln!(f, "    return {}[(row - {lo}u) * width + col];", pn(mat, p));
            }
        }
        f.push_str("}\n");
        kb.item(f);
    }

    let batched = cfg.batch.is_some();
    let mut s = String::new();
    let _ = writeln!(s, "let tx = lidx % 16u;");
    let _ = writeln!(s, "let ty = lidx / 16u;");
    let _ = writeln!(s, "let m0 = wid.y * {bl}u;");
    let _ = writeln!(s, "let n0 = wid.x * {bl}u;");
    let _ = writeln!(s, "let bat = {};", if batched { "wid.z" } else { "0u" });
    let _ = writeln!(s, "let a_boff = bat * M * K;");
    let _ = writeln!(s, "let out_boff = bat * M * N;");
    let b_base = if cfg.b_batched { "bat" } else { "0u" };
    let _ = writeln!(s, "let b_base = {b_base};");
    for mat in mats {
        for i in 0..t {
            for j in 0..t {
                let _ = writeln!(s, "var {}: f32 = 0.0;", acc(mat, i, j));
            }
        }
    }
    let per = bl * d / 256;
    let _ = writeln!(s, "for (var k0 = 0u; k0 < K; k0 += {d}u) {{");
    for l in 0..per {
        // a tile: [depth][block], element (kk, mm)
        let _ = writeln!(s, "    {{ let idx = lidx + {}u;", l * 256);
        let _ = writeln!(s, "      let mm = idx / {d}u; let kk = idx % {d}u;");
        let _ = writeln!(s, "      var v = 0.0; if (m0 + mm < M && k0 + kk < K) {{ v = a[a_boff + (m0 + mm) * K + k0 + kk]; }}");
        let _ = writeln!(s, "      tile_a[kk * {bl}u + mm] = v; }}");
        // b tiles: [depth][block], element (kk, nn)
        for mat in mats {
            let _ = writeln!(s, "    {{ let idx = lidx + {}u;", l * 256);
            match cfg.b_layout {
                BLayout::RowMajor => {
                    let _ = writeln!(s, "      let kk = idx / {bl}u; let nn = idx % {bl}u;");
                    let _ = writeln!(s, "      var v = 0.0; if (n0 + nn < N && k0 + kk < K) {{ v = load_{mat}(b_base * K + k0 + kk, n0 + nn, N); }}");
                }
                BLayout::Transposed => {
                    let _ = writeln!(s, "      let nn = idx / {d}u; let kk = idx % {d}u;");
                    let _ = writeln!(s, "      var v = 0.0; if (n0 + nn < N && k0 + kk < K) {{ v = load_{mat}(b_base * N + n0 + nn, k0 + kk, K); }}");
                }
            }
            let _ = writeln!(s, "      tile_{mat}[kk * {bl}u + nn] = v; }}");
        }
    }
    let _ = writeln!(s, "    workgroupBarrier();");
    let _ = writeln!(s, "    for (var kk = 0u; kk < {d}u; kk += 1u) {{");
    for i in 0..t {
        let _ = writeln!(
            s,
            "        let x_{i} = tile_a[kk * {bl}u + ty + {}u];",
            i * 16
        );
    }
    for mat in mats {
        for j in 0..t {
            let _ = writeln!(
                s,
                "        let {}_{j} = tile_{mat}[kk * {bl}u + tx + {}u];",
                val(mat),
                j * 16
            );
        }
        for i in 0..t {
            for j in 0..t {
                let c = acc(mat, i, j);
                let _ = writeln!(s, "        {c} = fma(x_{i}, {}_{j}, {c});", val(mat));
            }
        }
    }
    let _ = writeln!(s, "    }}");
    let _ = writeln!(s, "    workgroupBarrier();");
    let _ = writeln!(s, "}}");
    for i in 0..t {
        for j in 0..t {
            let (mi, nj) = (i * 16, j * 16);
            let o = format!("out_boff + (m0 + ty + {mi}u) * N + n0 + tx + {nj}u");
            let r_index = match cfg.epilogue {
                Epilogue::AddResidual => o.clone(),
                _ => format!("n0 + tx + {nj}u"),
            };
            let v = cfg.epilogue.value(|mat| acc(mat, i, j), false, &r_index);
            let _ = writeln!(
                s,
                "if (m0 + ty + {mi}u < M && n0 + tx + {nj}u < N) {{ out[{o}] = {v}; }}"
            );
        }
    }
    let z = if batched {
        GridDim::ceil("batch", 1)
    } else {
        GridDim::one()
    };
    Ok(kb.finish(
        &s,
        Grid::xyz(GridDim::ceil("n", bl), GridDim::ceil("m", bl), z),
    ))
}
