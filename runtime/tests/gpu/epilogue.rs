//! Matmul epilogues (gated `act(a·b_gate) * (a·b_up)`, bias and residual adds)
//! on every variant and weight layout, awkward shapes, against f64 loops.

use seam_shaders::{
    matmul, BLayout, Dim, Epilogue, GatedAct, MatmulConfig, MatmulVariant, RowTile, SubgroupTile,
    TiledTile,
};

use crate::common::*;
use crate::moe::act;

const EPILOGUES: [Epilogue; 4] = [
    Epilogue::Gated(GatedAct::SwiGlu),
    Epilogue::Gated(GatedAct::GeGlu),
    Epilogue::AddBias,
    Epilogue::AddResidual,
];

/// Runs `cfg` on random operands of `m × n × k` and checks it against f64 loops.
fn check(cfg: &MatmulConfig, m: usize, n: usize, k: usize, seed: u64) {
    let a = rand_f32(seed, m * k);
    let b = rand_f32(seed + 1, k * n);
    let b_up = rand_f32(seed + 2, k * n);
    let (prod, scale) = ref_matmul(&a, &b, m, n, k);
    let (want, scale) = match cfg.epilogue {
        Epilogue::Gated(g) => {
            let (u, us) = ref_matmul(&a, &b_up, m, n, k);
            // d(act(g)·u) ≈ |u|·|dg|·max|act'| + |act(g)|·|du|, act' bounded by 1.13.
            let want: Vec<f64> = prod.iter().zip(&u).map(|(&p, &u)| act(g, p) * u).collect();
            let scale = (0..m * n)
                .map(|i| 1.13 * scale[i] * u[i].abs() + act(g, prod[i]).abs() * us[i])
                .collect();
            (want, scale)
        }
        Epilogue::AddBias | Epilogue::AddResidual => {
            let r = rand_f32(seed + 3, m * n);
            let at = |i: usize| {
                f64::from(if cfg.epilogue == Epilogue::AddBias {
                    r[i % n]
                } else {
                    r[i]
                })
            };
            let want = (0..m * n).map(|i| prod[i] + at(i)).collect();
            let scale = (0..m * n).map(|i| scale[i] + at(i).abs()).collect();
            (want, scale)
        }
        Epilogue::None => (prod, scale),
    };
    let store = |w: &[f32]| match cfg.b_layout {
        BLayout::RowMajor => up(w),
        BLayout::Transposed => up(&transpose(w, k, n)),
    };
    let kern = matmul(cfg).unwrap();
    let p = pipeline(&kern);
    let ab = up(&a);
    let mut bufs = vec![ab, store(&b)];
    if cfg.epilogue.gated().is_some() {
        bufs.push(store(&b_up));
    }
    if cfg.epilogue.adds() {
        let r = rand_f32(seed + 3, m * n);
        let len = if cfg.epilogue == Epilogue::AddBias {
            n
        } else {
            m * n
        };
        bufs.push(up(&r[..len]));
    }
    bufs.push(out(m * n));
    let sizes: Vec<(&str, u32)> = [("m", m as u32), ("n", n as u32), ("k", k as u32)]
        .into_iter()
        .filter(|(s, _)| {
            kern.sizes
                .iter()
                .any(|d| d.name == *s && d.dim == Dim::Dynamic)
        })
        .collect();
    let refs: Vec<&_> = bufs.iter().collect();
    run(&p, &refs, &sizes);
    let got = read_f32(bufs.last().expect("out"), m * n);
    assert_close_scaled(&format!("{} {m}x{n}x{k}", kern.name), &got, &want, &scale);
}

#[test]
fn epilogues_on_scalar_and_tiled_variants() {
    let lim = limits();
    let variants = [
        MatmulVariant::RowBlocked(RowTile::large()),
        MatmulVariant::RowBlocked(RowTile {
            rows: 3,
            cols: 1,
            workgroup: 8,
            unroll: 1,
        }),
        MatmulVariant::Tiled(TiledTile::default()),
        MatmulVariant::Tiled(TiledTile {
            block: 32,
            depth: 8,
        }),
    ];
    for (vi, v) in variants.into_iter().enumerate() {
        for layout in [BLayout::RowMajor, BLayout::Transposed] {
            for (ei, e) in EPILOGUES.into_iter().enumerate() {
                let mut cfg = MatmulConfig::new(Dim::Dynamic, Dim::Dynamic, Dim::Dynamic, &lim)
                    .with_epilogue(e);
                cfg.variant = v;
                cfg.b_layout = layout;
                for (si, &(m, n, k)) in [(1, 33, 7), (7, 5, 33), (33, 17, 13)].iter().enumerate() {
                    check(&cfg, m, n, k, (vi * 1000 + ei * 10 + si) as u64);
                }
            }
        }
    }
}

#[test]
fn epilogues_on_subgroup_variants() {
    let lim = limits();
    let sg = lim
        .subgroup_size
        .expect("lavapipe has fixed-size subgroups");
    let tiles = [
        (SubgroupTile::new(1, sg), (1, 36, 8)),
        (
            SubgroupTile {
                rows: 2 * sg,
                cols: 2,
                subgroup: sg,
                workgroup: sg * 8,
            },
            (33, 20, 12),
        ),
    ];
    for (ti, (tile, (m, n, k))) in tiles.into_iter().enumerate() {
        for layout in [BLayout::RowMajor, BLayout::Transposed] {
            for (ei, e) in EPILOGUES.into_iter().enumerate() {
                let mut cfg = MatmulConfig::new(
                    Dim::Dynamic,
                    Dim::Fixed(n as u32),
                    Dim::Fixed(k as u32),
                    &lim,
                )
                .with_epilogue(e);
                cfg.variant = MatmulVariant::SubgroupBlocked(tile);
                cfg.b_layout = layout;
                check(&cfg, m, n, k, (ti * 100 + ei) as u64);
            }
        }
    }
}

/// A batched product with a residual of the output's shape.
#[test]
fn batched_residual_epilogue() {
    let lim = limits();
    let (bt, m, n, k) = (3usize, 5usize, 9usize, 6usize);
    let a = rand_f32(1, bt * m * k);
    let b = rand_f32(2, bt * k * n);
    let r = rand_f32(3, bt * m * n);
    let mut want = Vec::new();
    let mut scale = Vec::new();
    for i in 0..bt {
        let (c, s) = ref_matmul(
            &a[i * m * k..(i + 1) * m * k],
            &b[i * k * n..(i + 1) * k * n],
            m,
            n,
            k,
        );
        for j in 0..m * n {
            let rv = f64::from(r[i * m * n + j]);
            want.push(c[j] + rv);
            scale.push(s[j] + rv.abs());
        }
    }
    for v in [
        MatmulVariant::RowBlocked(RowTile::large()),
        MatmulVariant::Tiled(TiledTile::default()),
    ] {
        let mut cfg = MatmulConfig::new(Dim::Dynamic, Dim::Dynamic, Dim::Dynamic, &lim)
            .with_epilogue(Epilogue::AddResidual);
        cfg.variant = v;
        cfg.batch = Some(Dim::Dynamic);
        cfg.b_batched = true;
        let kern = matmul(&cfg).unwrap();
        let (ab, bb, rb, o) = (up(&a), up(&b), up(&r), out(bt * m * n));
        let sizes = [
            ("m", m as u32),
            ("n", n as u32),
            ("k", k as u32),
            ("batch", bt as u32),
        ];
        run(&pipeline(&kern), &[&ab, &bb, &rb, &o], &sizes);
        assert_close_scaled(&kern.name, &read_f32(&o, bt * m * n), &want, &scale);
    }
}
