//! The importer's tensor origins (for external weights): every byte range it
//! names holds exactly the parameter's values in the stated layout, and the
//! ranges cover what they should (every llama weight; the fused experts'
//! `down_proj`, not the `gate_up_proj` slices).

mod hf_common;

use hf_common::*;
use seam_frontends::hf::{import, ImportOptions, OriginLayout};
use seam_ir::eval::tensor::f32s_from_le_bytes;

/// `[.., rows, cols]` → `[.., cols, rows]`, written out here independently of
/// the compiler's packing.
fn swap_last2(v: &[f32], shape: &[usize]) -> Vec<f32> {
    let (r, c) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let mut out = Vec::with_capacity(v.len());
    for m in v.chunks(r * c) {
        for j in 0..c {
            for i in 0..r {
                out.push(m[i * c + j]);
            }
        }
    }
    out
}

/// Checks every origin of the imported checkpoint byte for byte; returns how many
/// parameters have one and the names of those that have none.
fn check_origins(m: &seam_frontends::hf::Imported) -> (usize, Vec<String>) {
    let mut found = 0;
    let mut missing = Vec::new();
    for (i, (decl, origin)) in m.model.params.iter().zip(&m.origins).enumerate() {
        let Some(o) = origin else {
            missing.push(decl.name.clone());
            continue;
        };
        found += 1;
        let file = std::fs::read(&o.file).unwrap();
        let stored = f32s_from_le_bytes(&file[o.offset as usize..(o.offset + o.bytes) as usize]);
        let values = m
            .weights
            .get(seam_ir::ParamId(i as u32))
            .unwrap()
            .to_f32_vec();
        let expected = match o.layout {
            OriginLayout::AsIs => values,
            OriginLayout::TransposedLast2 => swap_last2(&values, &decl.sizes()),
        };
        assert!(
            stored
                .iter()
                .map(|x| x.to_bits())
                .eq(expected.iter().map(|x| x.to_bits())),
            "`{}`: the bytes at {} of {} are not its values ({:?})",
            decl.name,
            o.offset,
            o.file.display(),
            o.layout
        );
    }
    (found, missing)
}

#[test]
fn every_llama_weight_has_an_exact_origin() {
    let (found, missing) = check_origins(&imported("llama"));
    assert!(found > 0 && missing.is_empty(), "{missing:?}");
}

#[test]
fn fused_experts_down_proj_has_an_origin_and_gate_up_slices_do_not() {
    let m = import(&fixture_dir("mixtral_fused"), &ImportOptions::default()).unwrap();
    let (found, missing) = check_origins(&m);
    assert!(found > 0);
    // Mixtral's expert params: w1 (gate) and w3 (up) are slices of the fused
    // `gate_up_proj`; w2 (down) is the whole `down_proj`.
    assert!(
        missing.len() == 4
            && missing
                .iter()
                .all(|n| n.ends_with("experts.w1") || n.ends_with("experts.w3")),
        "{missing:?}"
    );
}

#[test]
fn origins_of_the_other_fixtures_are_exact() {
    for name in ["mixtral", "qwen2_moe", "olmoe", "readme"] {
        check_origins(&imported(name));
    }
}
