//! Every generator's output is parsed and validated by naga and translates to
//! SPIR-V, MSL and HLSL — for CPU-like (lavapipe) and default (GPU) limits. No
//! device needed.

use seam_shaders::*;

fn all_kernels(lim: &DeviceLimits) -> Vec<Kernel> {
    let mut v = Vec::new();
    let dims = [Dim::Dynamic, Dim::Fixed(64)];
    for layout in [BLayout::RowMajor, BLayout::Transposed] {
        for &d in &dims {
            let cfg = MatmulConfig::new(Dim::Dynamic, d, d, lim).with_layout(layout, lim);
            v.push(matmul(&cfg).unwrap());
            let mut b = cfg.clone();
            b.batch = Some(Dim::Dynamic);
            b.b_batched = true;
            v.push(matmul(&b).unwrap());
            v.push(matmul(&b.with_epilogue(Epilogue::AddResidual)).unwrap());
        }
        for variant in [
            MatmulVariant::RowBlocked(RowTile::large()),
            MatmulVariant::Tiled(TiledTile::default()),
            MatmulVariant::SubgroupBlocked(SubgroupTile::new(8, 8)),
            MatmulVariant::SubgroupBlocked(SubgroupTile::new(1, 8)),
            MatmulVariant::SubgroupBlocked(SubgroupTile {
                rows: 16,
                cols: 2,
                subgroup: 8,
                workgroup: 64,
            }),
        ] {
            let mut cfg = MatmulConfig::new(Dim::Dynamic, Dim::Fixed(4096), Dim::Fixed(512), lim);
            cfg.variant = variant;
            cfg.b_layout = layout;
            cfg.b_split = match layout {
                BLayout::RowMajor => WeightSplit {
                    parts: 2,
                    rows_per_part: 256,
                },
                BLayout::Transposed => WeightSplit {
                    parts: 2,
                    rows_per_part: 2048,
                },
            };
            // Every epilogue on every variant, layout and split.
            for epilogue in [
                Epilogue::None,
                Epilogue::Gated(GatedAct::SwiGlu),
                Epilogue::Gated(GatedAct::GeGlu),
                Epilogue::AddBias,
                Epilogue::AddResidual,
            ] {
                v.push(matmul(&cfg.clone().with_epilogue(epilogue)).unwrap());
            }
        }
    }
    v.push(matmul(&MatmulConfig::gemv(8, 11008, 4096, lim, 256).unwrap()).unwrap());
    v.push(matmul(&MatmulConfig::gemv(1, 11008, 4096, lim, 256).unwrap()).unwrap());
    for &op in UnaryFn::ALL {
        v.push(unary(op, lim).unwrap());
    }
    for &op in BinaryFn::ALL {
        for t in [ScalarType::F32, ScalarType::I32, ScalarType::U32] {
            v.push(binary(op, t, IndexMap::Repeat(Dim::Dynamic), lim).unwrap());
        }
    }
    for (a, b) in [
        (ScalarType::F32, ScalarType::I32),
        (ScalarType::I32, ScalarType::F32),
        (ScalarType::U32, ScalarType::F32),
    ] {
        v.push(cast(a, b, lim).unwrap());
    }
    v.push(fill(f64::NEG_INFINITY, ScalarType::F32, lim).unwrap());
    v.push(fill(-7.0, ScalarType::I32, lim).unwrap());
    v.push(iota(1, 3, ScalarType::I32, lim).unwrap());
    v.push(transpose(&[2, 0, 1], ScalarType::F32, lim).unwrap());
    for op in [
        RowOp::RmsNorm { eps: 1e-5 },
        RowOp::LayerNorm { eps: 1e-6 },
        RowOp::Softmax,
        RowOp::Sum,
    ] {
        v.push(row_kernel(&RowConfig::new(op, Dim::Dynamic, lim)).unwrap());
        v.push(row_kernel(&RowConfig::new(op, Dim::Fixed(4096), lim)).unwrap());
    }
    v.push(concat(3, ScalarType::F32, lim).unwrap());
    v.push(split(4, ScalarType::I32, lim).unwrap());
    v.push(slice(ScalarType::I32, lim).unwrap());
    v.push(slice_update(ScalarType::F32, lim).unwrap());
    v.push(gather(ScalarType::F32, Dim::Fixed(4096), lim).unwrap());
    v.push(rope(10000.0, Dim::Fixed(32), Dim::Fixed(128), lim).unwrap());
    let rope128 = Some(PieceRope {
        theta: 500000.0,
        head_dim: 128,
    });
    for (k_dest, width) in [
        (PieceDest::Tail, Dim::Fixed(6144)),
        (PieceDest::Rows, Dim::Dynamic),
    ] {
        let piece = |start, len, rope, dest| SplitPiece {
            start,
            len,
            rope,
            dest,
        };
        let pieces = [
            piece(0, 4096, rope128, PieceDest::Out),
            piece(4096, 1024, rope128, k_dest),
            piece(5120, 1024, None, k_dest),
        ];
        v.push(rotary_split(&pieces, width, lim).unwrap());
    }
    for causal in [false, true] {
        v.push(
            attention(&AttentionConfig::new(
                causal,
                None,
                Dim::Fixed(32),
                Dim::Fixed(8),
                128,
                lim,
            ))
            .unwrap(),
        );
    }
    v.push(write_rows(ScalarType::F32, lim).unwrap());
    for (heads, kv_heads, head_dim) in [
        (Dim::Fixed(32), Dim::Fixed(8), 128),
        (Dim::Dynamic, Dim::Dynamic, 32),
    ] {
        let cfg = PooledAttentionConfig::new(Some(0.125), heads, kv_heads, head_dim, lim);
        v.push(pooled_attention(&cfg).unwrap());
    }
    v.push(topk(2, Dim::Fixed(8), lim).unwrap());
    for mode in RouteMode::ALL {
        for renorm in [true, false] {
            v.push(route(2, mode, renorm, Dim::Dynamic, lim).unwrap());
        }
    }
    for act in [GatedAct::SwiGlu, GatedAct::GeGlu] {
        let cfg = MoeConfig::new(8, 256, 512, act, lim, 256).unwrap();
        v.push(moe_plan(&cfg, lim).unwrap());
        v.push(moe_gate_up(&cfg).unwrap());
        v.push(moe_down(&cfg).unwrap());
        v.push(moe_down_to_tokens(&cfg, true).unwrap());
        v.push(moe_down_to_tokens(&cfg, false).unwrap());
        v.push(moe_combine(&cfg, true, lim).unwrap());
        v.push(moe_combine(&cfg, false, lim).unwrap());
    }
    v
}

#[test]
fn every_kernel_validates_and_emits() {
    for lim in [DeviceLimits::lavapipe(), DeviceLimits::default()] {
        let kernels = all_kernels(&lim);
        assert!(kernels.len() > 60);
        for k in &kernels {
            validate(k).unwrap_or_else(|e| panic!("{e}\n{}", k.wgsl));
            for t in [Target::Spirv, Target::Msl, Target::Hlsl] {
                let out = emit(k, t).unwrap_or_else(|e| panic!("{e}"));
                assert!(!out.is_empty(), "{} {}", k.name, t.name());
            }
            // Bindings are dense, in order, with the uniform last.
            for (i, b) in k.bindings.iter().enumerate() {
                assert_eq!(b.binding, i as u32, "{}", k.name);
            }
            let dynamic = k.sizes.iter().any(|s| s.dim == Dim::Dynamic);
            assert_eq!(k.params_binding().is_some(), dynamic, "{}", k.name);
        }
    }
}

#[test]
fn invalid_configs_are_errors() {
    let lim = DeviceLimits::lavapipe();
    let mut cfg = MatmulConfig::new(Dim::Dynamic, Dim::Fixed(30), Dim::Fixed(30), &lim);
    cfg.variant = MatmulVariant::SubgroupBlocked(SubgroupTile::new(8, 8));
    assert!(matches!(
        matmul(&cfg),
        Err(ShaderError::InvalidConfig { .. })
    ));
    // A gated epilogue needs one shared pair of weights, not per-batch ones.
    let mut batched = MatmulConfig::new(Dim::Dynamic, Dim::Fixed(32), Dim::Fixed(32), &lim)
        .with_epilogue(Epilogue::Gated(GatedAct::SwiGlu));
    batched.batch = Some(Dim::Dynamic);
    batched.b_batched = true;
    assert!(matches!(
        matmul(&batched),
        Err(ShaderError::InvalidConfig { .. })
    ));
    assert!(row_kernel(&RowConfig {
        op: RowOp::Softmax,
        rows: Dim::Dynamic,
        d: Dim::Dynamic,
        workgroup: 12
    })
    .is_err());
    assert!(transpose(&[0, 0], ScalarType::F32, &lim).is_err());
    assert!(topk(0, Dim::Fixed(4), &lim).is_err());
    assert!(rope(10000.0, Dim::Dynamic, Dim::Fixed(7), &lim).is_err());
    let grouped = PooledAttentionConfig::new(None, Dim::Fixed(6), Dim::Fixed(4), 64, &lim);
    assert!(pooled_attention(&grouped).is_err());
    let bad = ElementwiseConfig::new(
        "bad",
        Expr::unary(UnaryFn::Exp, Expr::Input(0)),
        ScalarType::F32,
        &lim,
    )
    .input(ScalarType::I32, IndexMap::Same);
    assert!(elementwise(&bad).is_err());
}

#[test]
fn lavapipe_defaults_pick_the_subgroup_variant() {
    let lim = DeviceLimits::lavapipe();
    let cfg = MatmulConfig::new(Dim::Dynamic, Dim::Fixed(1024), Dim::Fixed(1024), &lim)
        .with_layout(BLayout::Transposed, &lim);
    assert!(matches!(cfg.variant, MatmulVariant::SubgroupBlocked(_)));
    let cfg = MatmulConfig::new(Dim::Dynamic, Dim::Dynamic, Dim::Dynamic, &lim);
    assert!(matches!(cfg.variant, MatmulVariant::RowBlocked(_)));
    let gpu = DeviceLimits::default();
    let cfg = MatmulConfig::new(Dim::Dynamic, Dim::Fixed(1024), Dim::Fixed(1024), &gpu);
    assert!(matches!(cfg.variant, MatmulVariant::Tiled(_)));
    // 180 MB GEMV weight: two parts under lavapipe's 128 MiB binding limit.
    let g = MatmulConfig::gemv(1, 11008, 4096, &lim, 256).unwrap();
    assert_eq!(g.b_split.parts, 2);
}
