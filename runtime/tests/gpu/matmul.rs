//! Matrix products: every variant, awkward shapes, batched, transposed and split weights.

use seam_shaders::{
    matmul, BLayout, Dim, MatmulConfig, MatmulVariant, RowTile, SubgroupTile, TiledTile,
    WeightSplit,
};

use crate::common::*;

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (1, 33, 7),
    (7, 5, 33),
    (33, 17, 13),
    (257, 65, 31),
    (8, 130, 257),
];

fn variants() -> Vec<MatmulVariant> {
    vec![
        MatmulVariant::RowBlocked(RowTile::large()),
        MatmulVariant::RowBlocked(RowTile {
            rows: 3,
            cols: 1,
            workgroup: 8,
            unroll: 1,
        }),
        MatmulVariant::RowBlocked(RowTile::gemv(1)),
        MatmulVariant::Tiled(TiledTile::default()),
        MatmulVariant::Tiled(TiledTile {
            block: 32,
            depth: 8,
        }),
    ]
}

fn check(cfg: &MatmulConfig, m: usize, n: usize, k: usize, seed: u64) {
    let a = rand_f32(seed, m * k);
    let b = rand_f32(seed + 1, k * n);
    let (want, scale) = ref_matmul(&a, &b, m, n, k);
    let stored = match cfg.b_layout {
        BLayout::RowMajor => b.clone(),
        BLayout::Transposed => transpose(&b, k, n),
    };
    let kern = matmul(cfg).unwrap();
    let p = pipeline(&kern);
    let ab = up(&a);
    let o = out(m * n);
    let sizes = [("m", m as u32), ("n", n as u32), ("k", k as u32)];
    let sizes: Vec<(&str, u32)> = sizes
        .into_iter()
        .filter(|(s, _)| {
            kern.sizes
                .iter()
                .any(|d| d.name == *s && d.dim == Dim::Dynamic)
        })
        .collect();
    if cfg.b_split.parts > 1 {
        // Bind each part as its own buffer.
        let width = stored.len()
            / match cfg.b_layout {
                BLayout::RowMajor => k,
                BLayout::Transposed => n,
            };
        let rows = stored.len() / width;
        let parts: Vec<_> = (0..cfg.b_split.parts)
            .map(|q| {
                let (r0, rn) = cfg.b_split.part_rows(rows as u32, q);
                up(&stored
                    [r0 as usize * width..(r0 + rn).max(r0 + 1).min(rows as u32) as usize * width])
            })
            .collect();
        let mut bufs = vec![&ab];
        bufs.extend(parts.iter());
        bufs.push(&o);
        run(&p, &bufs, &sizes);
    } else {
        let bb = up(&stored);
        run(&p, &[&ab, &bb, &o], &sizes);
    }
    let got = read_f32(&o, m * n);
    assert_close_scaled(&format!("{} {m}x{n}x{k}", kern.name), &got, &want, &scale);
}

#[test]
fn matmul_all_variants_awkward_shapes() {
    let lim = limits();
    for (vi, v) in variants().into_iter().enumerate() {
        for (si, &(m, n, k)) in SHAPES.iter().enumerate() {
            for layout in [BLayout::RowMajor, BLayout::Transposed] {
                let mut cfg = MatmulConfig::new(Dim::Dynamic, Dim::Dynamic, Dim::Dynamic, &lim);
                cfg.variant = v;
                cfg.b_layout = layout;
                check(&cfg, m, n, k, (vi * 100 + si) as u64);
            }
        }
    }
}

#[test]
fn matmul_fixed_sizes() {
    let lim = limits();
    for v in variants() {
        let mut cfg = MatmulConfig::new(Dim::Dynamic, Dim::Fixed(19), Dim::Fixed(37), &lim);
        cfg.variant = v;
        check(&cfg, 9, 19, 37, 7);
    }
}

#[test]
fn matmul_split_weights() {
    let lim = limits();
    // Row-major b [K=37, N=19] in parts of 16 rows; transposed b [N=300, K=9] in parts of 128.
    for v in [
        MatmulVariant::RowBlocked(RowTile::large()),
        MatmulVariant::Tiled(TiledTile::default()),
    ] {
        let mut cfg = MatmulConfig::new(Dim::Dynamic, Dim::Dynamic, Dim::Dynamic, &lim);
        cfg.variant = v;
        cfg.b_split = WeightSplit {
            parts: 3,
            rows_per_part: 16,
        };
        check(&cfg, 10, 19, 37, 11);
        cfg.b_layout = BLayout::Transposed;
        cfg.b_split = WeightSplit {
            parts: 3,
            rows_per_part: 128,
        };
        check(&cfg, 3, 300, 9, 12);
    }
}

#[test]
fn matmul_batched() {
    let lim = limits();
    let (bt, m, n, k) = (3usize, 5usize, 9usize, 7usize);
    for v in variants() {
        for b_batched in [false, true] {
            let mut cfg = MatmulConfig::new(Dim::Dynamic, Dim::Dynamic, Dim::Dynamic, &lim);
            cfg.variant = v;
            cfg.batch = Some(Dim::Dynamic);
            cfg.b_batched = b_batched;
            let a = rand_f32(1, bt * m * k);
            let b = rand_f32(2, if b_batched { bt } else { 1 } * k * n);
            let (want, scale) = ref_batched_matmul(&a, &b, b_batched, [bt, m, n, k]);
            let kern = matmul(&cfg).unwrap();
            let p = pipeline(&kern);
            let (ab, bb, o) = (up(&a), up(&b), out(bt * m * n));
            run(
                &p,
                &[&ab, &bb, &o],
                &[
                    ("m", m as u32),
                    ("n", n as u32),
                    ("k", k as u32),
                    ("batch", bt as u32),
                ],
            );
            assert_close_scaled(&kern.name, &read_f32(&o, bt * m * n), &want, &scale);
        }
    }
}

fn sg_variants() -> Vec<SubgroupTile> {
    let sg = limits()
        .subgroup_size
        .expect("lavapipe has fixed-size subgroups");
    vec![
        SubgroupTile::new(1, sg),
        SubgroupTile::new(2, sg),
        SubgroupTile {
            rows: sg,
            cols: 1,
            subgroup: sg,
            workgroup: sg * 8,
        },
        SubgroupTile {
            rows: sg,
            cols: 2,
            subgroup: sg,
            workgroup: sg,
        },
        SubgroupTile {
            rows: 2 * sg,
            cols: 2,
            subgroup: sg,
            workgroup: sg * 8,
        },
    ]
}

#[test]
fn matmul_subgroup_variant_awkward_shapes() {
    let lim = limits();
    // K and N fixed multiples of 4 (the variant's requirement); M awkward; K not a
    // multiple of the chunk (tail path); N not a multiple of the column block.
    let shapes = [
        (1, 4, 4),
        (7, 12, 36),
        (33, 260, 68),
        (257, 36, 100),
        (8, 44, 4),
    ];
    for (ti, tile) in sg_variants().into_iter().enumerate() {
        // Two shapes per tile keep the number of distinct (compiled) kernels small.
        for si in [ti % shapes.len(), (ti + 2) % shapes.len()] {
            let (m, n, k) = shapes[si];
            for layout in [BLayout::RowMajor, BLayout::Transposed] {
                let mut cfg = MatmulConfig::new(
                    Dim::Dynamic,
                    Dim::Fixed(n as u32),
                    Dim::Fixed(k as u32),
                    &lim,
                );
                cfg.variant = MatmulVariant::SubgroupBlocked(tile);
                cfg.b_layout = layout;
                check(&cfg, m, n, k, (ti * 100 + si) as u64);
            }
        }
    }
}

#[test]
fn matmul_subgroup_split_and_batched() {
    let lim = limits();
    let sg = lim.subgroup_size.unwrap();
    let tile = SubgroupTile {
        rows: sg,
        cols: 1,
        subgroup: sg,
        workgroup: sg * 2,
    };
    let mut cfg = MatmulConfig::new(Dim::Dynamic, Dim::Fixed(20), Dim::Fixed(40), &lim);
    cfg.variant = MatmulVariant::SubgroupBlocked(tile);
    cfg.b_split = WeightSplit {
        parts: 3,
        rows_per_part: 16,
    };
    check(&cfg, 10, 20, 40, 21);
    cfg.b_layout = BLayout::Transposed;
    cfg.n = Dim::Fixed(70);
    cfg.b_split = WeightSplit {
        parts: 3,
        rows_per_part: 2 * sg * 2 * tile.cols,
    };
    check(&cfg, 9, 70, 40, 22);
    // Batched, b batched or shared.
    let (bt, m, n, k) = (3usize, 5usize, 8usize, 12usize);
    for layout in [BLayout::RowMajor, BLayout::Transposed] {
        for b_batched in [false, true] {
            let mut cfg = MatmulConfig::new(
                Dim::Dynamic,
                Dim::Fixed(n as u32),
                Dim::Fixed(k as u32),
                &lim,
            );
            cfg.variant = MatmulVariant::SubgroupBlocked(tile);
            cfg.b_layout = layout;
            cfg.batch = Some(Dim::Dynamic);
            cfg.b_batched = b_batched;
            let a = rand_f32(1, bt * m * k);
            let nb = if b_batched { bt } else { 1 };
            let b = rand_f32(2, nb * k * n);
            let mut stored = Vec::new();
            for i in 0..nb {
                let bi = &b[i * k * n..(i + 1) * k * n];
                stored.extend(match layout {
                    BLayout::RowMajor => bi.to_vec(),
                    BLayout::Transposed => transpose(bi, k, n),
                });
            }
            let (want, scale) = ref_batched_matmul(&a, &b, b_batched, [bt, m, n, k]);
            let kern = matmul(&cfg).unwrap();
            let p = pipeline(&kern);
            let (ab, bb, o) = (up(&a), up(&stored), out(bt * m * n));
            run(
                &p,
                &[&ab, &bb, &o],
                &[("m", m as u32), ("batch", bt as u32)],
            );
            assert_close_scaled(&kern.name, &read_f32(&o, bt * m * n), &want, &scale);
        }
    }
}

#[test]
fn gemv_config_with_split_weight_bound_as_subranges() {
    // A GEMV whose transposed weight is split in two parts, bound as two
    // sub-ranges of one buffer (the 180 MB case in miniature).
    let mut lim = limits();
    let (n, k) = (1040usize, 64usize);
    lim.max_storage_buffer_binding_size = (n as u64 / 2) * k as u64 * 4;
    let align = u64::from(gpu().limits().min_storage_buffer_offset_alignment);
    for m in [1usize, 3, 8] {
        let cfg = MatmulConfig::gemv(m as u32, n as u32, k as u32, &lim, align).unwrap();
        assert!(cfg.b_split.parts >= 2, "{:?}", cfg.b_split);
        let a = rand_f32(5, m * k);
        let b = rand_f32(6, k * n);
        let (want, scale) = ref_matmul(&a, &b, m, n, k);
        let wt = up(&transpose(&b, k, n));
        let kern = matmul(&cfg).unwrap();
        let p = pipeline(&kern);
        let (ab, o) = (up(&a), out(m * n));
        let mut views = vec![ab.view()];
        for q in 0..cfg.b_split.parts {
            let (r0, rn) = cfg.b_split.part_rows(n as u32, q);
            views.push(wt.slice(u64::from(r0) * k as u64 * 4, u64::from(rn) * k as u64 * 4));
        }
        views.push(o.view());
        gpu().run_once(&p, &views, &[("m", m as u32)]).unwrap();
        assert_close_scaled(&kern.name, &read_f32(&o, m * n), &want, &scale);
    }
}

/// The reference of `bt` matmuls `[m, k] × [k, n]`, with one `b` per batch or
/// (`b_batched` false) one `b` for all: the products and their rounding scales.
fn ref_batched_matmul(
    a: &[f32],
    b: &[f32],
    b_batched: bool,
    [bt, m, n, k]: [usize; 4],
) -> (Vec<f64>, Vec<f64>) {
    let mut want = Vec::new();
    let mut scale = Vec::new();
    for i in 0..bt {
        let bi = if b_batched {
            &b[i * k * n..(i + 1) * k * n]
        } else {
            b
        };
        let (c, s) = ref_matmul(&a[i * m * k..(i + 1) * m * k], bi, m, n, k);
        want.extend(c);
        scale.extend(s);
    }
    (want, scale)
}
