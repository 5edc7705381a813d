//! Every grouped MoE expert product on row-plane weights (format × kernel ×
//! tile family, the GPU tiles included) parses, validates with naga and emits
//! SPIR-V with the `f32` MoE kernels' bindings; bad configurations are named
//! errors.

use seam_shaders::*;

/// The tiles of each reduction: none (lavapipe), subgroup shuffles (a GPU with
/// subgroups of 32), workgroup tree (a GPU without subgroups).
fn tiles(format: WeightFormat) -> Vec<QuantTile> {
    let gpu = DeviceLimits {
        subgroup_size: Some(32),
        ..DeviceLimits::default()
    };
    vec![
        QuantTile::for_device(&DeviceLimits::lavapipe(), format, 4),
        QuantTile::for_device(&gpu, format, 4),
        QuantTile::for_device(&DeviceLimits::default(), format, 2),
    ]
}

/// The MoE layer `E = 8, D, F` in `format` on `tile` (a plan of `tile.rows`-row blocks).
fn config(format: WeightFormat, (d, f): (u32, u32), tile: QuantTile) -> QuantMoeConfig {
    let lim = DeviceLimits::lavapipe();
    let variant = MatmulVariant::RowBlocked(RowTile {
        rows: tile.rows,
        cols: 1,
        workgroup: 64,
        unroll: 4,
    });
    let moe = MoeConfig::with(
        8,
        d,
        f,
        GatedAct::SwiGlu,
        variant,
        BLayout::RowMajor,
        &lim,
        256,
    )
    .unwrap();
    QuantMoeConfig {
        tile,
        ..QuantMoeConfig::new(moe, format, &lim)
    }
}

fn binding_names(kern: &Kernel) -> Vec<&str> {
    kern.bindings.iter().map(|b| b.name.as_str()).collect()
}

#[test]
fn every_grouped_quant_kernel_validates() {
    let mut count = 0;
    for format in WeightFormat::ALL {
        let shape = if format == WeightFormat::Q4K {
            (768, 512)
        } else {
            (576, 320)
        };
        for tile in tiles(format) {
            let cfg = config(format, shape, tile);
            let kernels = [
                (
                    moe_gate_up_quant(&cfg),
                    &["a", "block_expert", "pairs", "w_gate", "w_up", "out"][..],
                ),
                (moe_down_quant(&cfg), &["a", "block_expert", "w", "out"][..]),
                (
                    moe_down_to_tokens_quant(&cfg, false),
                    &["a", "block_expert", "pairs", "w", "out"][..],
                ),
                (
                    moe_down_to_tokens_quant(&cfg, true),
                    &["a", "block_expert", "pairs", "w", "r", "out"][..],
                ),
            ];
            for (kern, want) in kernels {
                let kern = kern.unwrap();
                validate(&kern).unwrap_or_else(|e| panic!("{e}\n{}", kern.wgsl));
                emit(&kern, Target::Spirv).unwrap_or_else(|e| panic!("{e}"));
                let mut want = want.to_vec();
                want.push("params");
                assert_eq!(binding_names(&kern), want, "{}", kern.name);
                count += 1;
            }
        }
    }
    assert_eq!(count, 7 * 3 * 4);
}

#[test]
fn grouped_quant_kernels_refuse_bad_configs() {
    let refused =
        |k: Result<Kernel, ShaderError>| matches!(k, Err(ShaderError::InvalidConfig { .. }));
    let tile = tiles(WeightFormat::Q4K)[0];
    // K (= D for gate‖up, F for down) not a multiple of the block.
    let cfg = config(WeightFormat::Q4K, (768, 320), tile);
    assert!(moe_gate_up_quant(&cfg).is_ok());
    assert!(refused(moe_down_quant(&cfg)));
    // A tile whose rows are not the plan's blocks.
    let mut cfg = config(WeightFormat::Q4_0, (576, 320), tile);
    cfg.tile.rows += 1;
    assert!(refused(moe_gate_up_quant(&cfg)));
    // A stack over the binding limit: 8 experts of 4096 × 14336 in q8_0 are
    // 8 · 14336 · 4352 bytes (≈ 500 MB), one expert ≈ 62 MB.
    let cfg = config(WeightFormat::Q8_0, (4096, 14336), tile);
    let cfg = QuantMoeConfig {
        max_binding_bytes: 128 << 20,
        ..cfg
    };
    assert!(refused(moe_gate_up_quant(&cfg)));
}
