//! Every variant of the quantized-weight product (format × epilogue × tile
//! family × fixed or dynamic N) parses, validates with naga and emits SPIR-V;
//! bad configurations are named errors. Each format is generated with a `K`
//! whose rows allow `vec4` weight loads and, where the layout has one, a `K`
//! whose rows do not (the scalar loads).

use seam_shaders::*;

const EPILOGUES: [Epilogue; 5] = [
    Epilogue::None,
    Epilogue::AddBias,
    Epilogue::AddResidual,
    Epilogue::Gated(GatedAct::SwiGlu),
    Epilogue::Gated(GatedAct::GeGlu),
];

/// The tiles of each reduction: none (CPU), subgroup shuffles, workgroup tree.
fn tiles(format: WeightFormat) -> Vec<QuantTile> {
    let lav = DeviceLimits::lavapipe();
    let gpu = DeviceLimits {
        subgroup_size: Some(32),
        ..DeviceLimits::default()
    };
    vec![
        QuantTile::for_device(&lav, format, 8),
        QuantTile::for_device(&lav, format, 1),
        QuantTile::for_device(&gpu, format, 1),
        QuantTile::for_device(&DeviceLimits::default(), format, 3),
        QuantTile {
            rows: 2,
            threads: 4,
            cols: 8,
            col_reps: 1,
            one_row_reps: 1,
            subgroup: Some(8),
        },
        QuantTile {
            rows: 5,
            threads: 1,
            cols: 16,
            col_reps: 1,
            one_row_reps: 1,
            subgroup: None,
        },
        QuantTile {
            rows: 1,
            threads: 1,
            cols: 16,
            col_reps: 8,
            one_row_reps: 1,
            subgroup: None,
        },
    ]
}

#[test]
fn every_quant_matmul_variant_validates() {
    let lim = DeviceLimits::lavapipe();
    let mut count = 0;
    for (format, k) in WeightFormat::ALL
        .into_iter()
        .flat_map(|f| ks(f).into_iter().map(move |k| (f, k)))
    {
        for tile in tiles(format) {
            for epilogue in EPILOGUES {
                for n in [Dim::Dynamic, Dim::Fixed(100)] {
                    let mut cfg = QuantMatmulConfig::new(format, (Dim::Dynamic, n, k), 1, &lim)
                        .with_epilogue(epilogue);
                    cfg.tile = tile;
                    let kern = quant_matmul(&cfg).unwrap();
                    validate(&kern).unwrap_or_else(|e| panic!("{e}\n{}", kern.wgsl));
                    emit(&kern, Target::Spirv).unwrap_or_else(|e| panic!("{e}"));
                    let names: Vec<&str> = kern.bindings.iter().map(|b| b.name.as_str()).collect();
                    let mut want = vec!["a"];
                    want.extend(if epilogue.gated().is_some() {
                        &["w_gate", "w_up"][..]
                    } else {
                        &["w"][..]
                    });
                    if epilogue.adds() {
                        want.push("r");
                    }
                    want.extend(["out", "params"]);
                    assert_eq!(names, want, "{}", kern.name);
                    let binding = "w: array<vec4<u32>>;";
                    let weight = if epilogue.gated().is_some() {
                        "w_up: "
                    } else {
                        "w: "
                    };
                    assert!(
                        kern.wgsl.contains(&binding.replacen("w: ", weight, 1)),
                        "{} K={k}: no `{binding}`\n{}",
                        kern.name,
                        kern.wgsl
                    );
                    count += 1;
                }
            }
        }
    }
    assert_eq!(count, 10 * 7 * 5 * 2);
}

/// The `K`s generated for a format: 576 (`q4_k`: 768), and for the 32-weight
/// block formats also 512, whose planes fill whole `vec4`s where those of
/// 576 are padded.
fn ks(format: WeightFormat) -> Vec<u32> {
    match format {
        WeightFormat::Q4K => vec![768],
        WeightFormat::Q8_0 | WeightFormat::Q4_0 | WeightFormat::Q4_1 => vec![576, 512],
        _ => vec![576],
    }
}

#[test]
fn quant_matmul_refuses_bad_configs() {
    let lim = DeviceLimits::lavapipe();
    let make =
        |format, k| QuantMatmulConfig::new(format, (Dim::Dynamic, Dim::Fixed(64), k), 1, &lim);
    let refused = |cfg: &QuantMatmulConfig| {
        matches!(quant_matmul(cfg), Err(ShaderError::InvalidConfig { .. }))
    };
    // K not a multiple of the block, of the chunk, or zero.
    assert!(refused(&make(WeightFormat::Q4_0, 48)));
    assert!(refused(&make(WeightFormat::Q4K, 576)));
    assert!(refused(&make(WeightFormat::F16, 12)));
    assert!(refused(&make(WeightFormat::F32, 0)));
    // Rows outside 1..=16, threads not a power of two, a tree too large.
    let mut cfg = make(WeightFormat::Q8_0, 64);
    cfg.tile.rows = 0;
    assert!(refused(&cfg));
    cfg.tile.rows = 17;
    assert!(refused(&cfg));
    cfg.tile = QuantTile {
        rows: 1,
        threads: 3,
        cols: 4,
        col_reps: 1,
        one_row_reps: 1,
        subgroup: None,
    };
    assert!(refused(&cfg));
    for (rows, col_reps) in [(1, 0), (1, 9), (2, 2)] {
        cfg.tile = QuantTile {
            rows,
            threads: 1,
            cols: 4,
            col_reps,
            one_row_reps: 1,
            subgroup: None,
        };
        assert!(
            refused(&cfg),
            "{rows} rows, {col_reps} columns per invocation"
        );
    }
    cfg.tile = QuantTile {
        rows: 8,
        threads: 256,
        cols: 4,
        col_reps: 1,
        one_row_reps: 1,
        subgroup: None,
    };
    assert!(refused(
        &cfg.clone().with_epilogue(Epilogue::Gated(GatedAct::SwiGlu))
    ));
    // A weight over the binding limit (f32, 4096 × 11008: 180 MB > 128 MiB).
    let big = QuantMatmulConfig::new(
        WeightFormat::F32,
        (Dim::Dynamic, Dim::Fixed(11008), 4096),
        1,
        &lim,
    );
    assert!(refused(&big));
    let q = QuantMatmulConfig::new(
        WeightFormat::Q4_0,
        (Dim::Dynamic, Dim::Fixed(11008), 4096),
        1,
        &lim,
    );
    assert!(quant_matmul(&q).is_ok());
}

/// A one-row lavapipe tile takes 3 or 2 columns per invocation where that
/// leaves fewer columns in a partly empty last workgroup; ties, other tiles
/// and a dynamic N keep theirs.
#[test]
fn one_row_cpu_tiles_fit_their_columns() {
    let lav = DeviceLimits::lavapipe();
    let reps = |format, rows, n| {
        QuantMatmulConfig::new(format, (Dim::Dynamic, n, 576), rows, &lav)
            .tile
            .col_reps
    };
    let q4 = WeightFormat::Q4_0;
    assert_eq!(reps(q4, 1, Dim::Dynamic), 4);
    // 128 per workgroup: 576 = 4.5 and 960 = 7.5 workgroups; of 96: 6 and 10.
    assert_eq!(reps(q4, 1, Dim::Fixed(576)), 3);
    assert_eq!(reps(q4, 1, Dim::Fixed(960)), 3);
    // Whole workgroups of 128 already: kept.
    assert_eq!(reps(q4, 1, Dim::Fixed(1536)), 4);
    assert_eq!(reps(q4, 1, Dim::Fixed(11008)), 4);
    // 64 = 2 columns of 32 fills its only workgroup.
    assert_eq!(reps(q4, 1, Dim::Fixed(64)), 2);
    assert_eq!(reps(WeightFormat::F16, 1, Dim::Fixed(576)), 3);
    // One column per invocation (q8_0), several rows: unchanged.
    assert_eq!(reps(WeightFormat::Q8_0, 1, Dim::Fixed(576)), 1);
    assert_eq!(reps(q4, 8, Dim::Fixed(576)), 1);
}
