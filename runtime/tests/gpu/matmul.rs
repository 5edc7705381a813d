//! Matrix products: every variant, awkward shapes, batched, transposed and split weights.

use seam_shaders::{
    matmul, BLayout, Dim, MatmulConfig, MatmulVariant, RowTile, TiledTile, WeightSplit,
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
            let mut want = Vec::new();
            let mut scale = Vec::new();
            for i in 0..bt {
                let bi = if b_batched {
                    &b[i * k * n..(i + 1) * k * n]
                } else {
                    &b[..]
                };
                let (c, s) = ref_matmul(&a[i * m * k..(i + 1) * m * k], bi, m, n, k);
                want.extend(c);
                scale.extend(s);
            }
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
