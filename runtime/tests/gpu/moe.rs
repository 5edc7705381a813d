//! The grouped MoE kernels end to end: plan → gate/up → down → combine, recorded
//! in one batch, against a per-token dense reference. Repeated experts, experts
//! with no token, k = 1 and 2, out-of-range ids, with and without a shared expert,
//! every variant and weight layout; for top-1 cases also the down projection
//! written straight into token order (weight 1, no combine).

use seam_runtime::device::GpuBuffer;
use seam_shaders::{
    matmul, moe_combine, moe_down, moe_down_to_tokens, moe_gate_up, moe_max_blocks, moe_plan,
    BLayout, Dim, Epilogue, GatedAct, MatmulConfig, MatmulVariant, MoeConfig, RowTile,
    SubgroupTile,
};

use crate::common::*;

/// The gated activation in f64.
pub(crate) fn act(a: GatedAct, x: f64) -> f64 {
    match a {
        GatedAct::SwiGlu => x / (1.0 + (-x).exp()),
        GatedAct::GeGlu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
    }
}

/// `(act(x·wg) * (x·wu))·wd` for one row, with the magnitude of its terms.
fn ffn(
    a: GatedAct,
    x: &[f32],
    wg: &[f32],
    wu: &[f32],
    wd: &[f32],
    d: usize,
    f: usize,
) -> (Vec<f64>, Vec<f64>) {
    let mut h = vec![0.0; f];
    let mut hm = vec![0.0; f];
    for j in 0..f {
        let (mut g, mut u, mut gm, mut um) = (0.0, 0.0, 0.0, 0.0);
        for i in 0..d {
            let xi = f64::from(x[i]);
            g += xi * f64::from(wg[i * f + j]);
            u += xi * f64::from(wu[i * f + j]);
            gm += (xi * f64::from(wg[i * f + j])).abs();
            um += (xi * f64::from(wu[i * f + j])).abs();
        }
        h[j] = act(a, g) * u;
        hm[j] = (gm + 1.0) * (um + 1.0);
    }
    let mut y = vec![0.0; d];
    let mut ym = vec![0.0; d];
    for c in 0..d {
        for j in 0..f {
            y[c] += h[j] * f64::from(wd[j * d + c]);
            ym[c] += hm[j] * f64::from(wd[j * d + c]).abs();
        }
    }
    (y, ym)
}

/// Per-expert `[E, r, c]` row-major → stored layout (transposed per expert).
fn store(w: &[f32], e: usize, r: usize, c: usize, layout: BLayout) -> Vec<f32> {
    match layout {
        BLayout::RowMajor => w.to_vec(),
        BLayout::Transposed => (0..e)
            .flat_map(|i| transpose(&w[i * r * c..(i + 1) * r * c], r, c))
            .collect(),
    }
}

struct Case {
    t: usize,
    k: usize,
    ids: Vec<i32>,
    shared: bool,
}

fn run_case(cfg: &MoeConfig, case: &Case, seed: u64) {
    let (e, d, f) = (cfg.experts as usize, cfg.hidden as usize, cfg.ffn as usize);
    let (t, k) = (case.t, case.k);
    let lim = limits();
    let x = rand_f32(seed, t * d);
    let w = rand_f32(seed + 1, t * k);
    let wg = rand_f32(seed + 2, e * d * f);
    let wu = rand_f32(seed + 3, e * d * f);
    let wd = rand_f32(seed + 4, e * f * d);
    let fs = 8usize;
    let (sg, su, sd) = (
        rand_f32(seed + 5, d * fs),
        rand_f32(seed + 6, d * fs),
        rand_f32(seed + 7, fs * d),
    );

    // Reference.
    let mut want = vec![0.0; t * d];
    let mut mag = vec![0.0; t * d];
    // The same with every routing weight 1 (the top-1 path without a combine).
    let mut want_unit = vec![0.0; t * d];
    let mut mag_unit = vec![0.0; t * d];
    for ti in 0..t {
        let xt = &x[ti * d..(ti + 1) * d];
        for j in 0..k {
            let id = case.ids[ti * k + j];
            if id < 0 || id as usize >= e {
                continue;
            }
            let ei = id as usize;
            let (y, ym) = ffn(
                cfg.act,
                xt,
                &wg[ei * d * f..(ei + 1) * d * f],
                &wu[ei * d * f..(ei + 1) * d * f],
                &wd[ei * f * d..(ei + 1) * f * d],
                d,
                f,
            );
            let wt = f64::from(w[ti * k + j]);
            for c in 0..d {
                want[ti * d + c] += wt * y[c];
                mag[ti * d + c] += wt.abs() * ym[c];
                want_unit[ti * d + c] += y[c];
                mag_unit[ti * d + c] += ym[c];
            }
        }
        if case.shared {
            let (y, ym) = ffn(cfg.act, xt, &sg, &su, &sd, d, fs);
            for c in 0..d {
                want[ti * d + c] += y[c];
                mag[ti * d + c] += ym[c];
                want_unit[ti * d + c] += y[c];
                mag_unit[ti * d + c] += ym[c];
            }
        }
    }

    // Device.
    let r = cfg.block_rows() as usize;
    let blocks = moe_max_blocks(t as u32, k as u32, e as u32, r as u32);
    let nb = blocks as usize;
    let (gu_stored, d_stored) = (
        (
            store(&wg, e, d, f, cfg.layout),
            store(&wu, e, d, f, cfg.layout),
        ),
        store(&wd, e, f, d, cfg.layout),
    );
    let (xb, idb, wb) = (up(&x), up(&case.ids), up(&w));
    let (gb, ub, db) = (up(&gu_stored.0), up(&gu_stored.1), up(&d_stored));
    let (block_expert, pairs, pair_pos) = (out(nb), out(nb * r), out(t * k));
    let (h, y, o) = (out(nb * r * f), out(nb * r * d), out(t * d));
    let plan = pipeline(&moe_plan(cfg, &lim).unwrap());
    let gate_up = pipeline(&moe_gate_up(cfg).unwrap());
    let down = pipeline(&moe_down(cfg).unwrap());
    let combine = pipeline(&moe_combine(cfg, case.shared, &lim).unwrap());
    let (tt, kk) = (t as u32, k as u32);
    let g = gpu();
    let mut batch = g.batch();
    batch
        .dispatch(
            &plan,
            &[
                idb.view(),
                block_expert.view(),
                pairs.view(),
                pair_pos.view(),
            ],
            &[("tokens", tt), ("topk", kk), ("blocks", blocks)],
        )
        .unwrap();
    batch
        .dispatch(
            &gate_up,
            &[
                xb.view(),
                block_expert.view(),
                pairs.view(),
                gb.view(),
                ub.view(),
                h.view(),
            ],
            &[("tokens", tt), ("topk", kk), ("blocks", blocks)],
        )
        .unwrap();
    batch
        .dispatch(
            &down,
            &[h.view(), block_expert.view(), db.view(), y.view()],
            &[("blocks", blocks)],
        )
        .unwrap();
    let shared_bufs: Option<(GpuBuffer, GpuBuffer, GpuBuffer, GpuBuffer, GpuBuffer)> = case
        .shared
        .then(|| (up(&sg), up(&su), up(&sd), out(t * fs), out(t * d)));
    if let Some((sgb, sub, sdb, hs, so)) = &shared_bufs {
        let tile = MatmulVariant::RowBlocked(RowTile::gemv(4));
        let mut gcfg = MatmulConfig::new(
            Dim::Dynamic,
            Dim::Fixed(fs as u32),
            Dim::Fixed(d as u32),
            &lim,
        )
        .with_epilogue(Epilogue::Gated(cfg.act));
        gcfg.variant = tile;
        let gm = pipeline(&matmul(&gcfg).unwrap());
        batch
            .dispatch(
                &gm,
                &[xb.view(), sgb.view(), sub.view(), hs.view()],
                &[("m", tt)],
            )
            .unwrap();
        let mm = pipeline(
            &matmul(&MatmulConfig::new(
                Dim::Dynamic,
                Dim::Fixed(d as u32),
                Dim::Fixed(fs as u32),
                &lim,
            ))
            .unwrap(),
        );
        batch
            .dispatch(&mm, &[hs.view(), sdb.view(), so.view()], &[("m", tt)])
            .unwrap();
        batch
            .dispatch(
                &combine,
                &[y.view(), wb.view(), pair_pos.view(), so.view(), o.view()],
                &[("tokens", tt), ("topk", kk), ("blocks", blocks)],
            )
            .unwrap();
    } else {
        batch
            .dispatch(
                &combine,
                &[y.view(), wb.view(), pair_pos.view(), o.view()],
                &[("tokens", tt), ("topk", kk), ("blocks", blocks)],
            )
            .unwrap();
    }
    // Top-1 with weight 1 (every id in range): the down projection straight
    // into token order, the shared expert added in its epilogue, no combine.
    let unit = k == 1 && case.ids.iter().all(|&id| id >= 0 && (id as usize) < e);
    let o_unit = out(t * d);
    if unit {
        let kern = moe_down_to_tokens(cfg, case.shared).unwrap();
        let p = pipeline(&kern);
        let mut bufs = vec![h.view(), block_expert.view(), pairs.view(), db.view()];
        if let Some((_, _, _, _, so)) = &shared_bufs {
            bufs.push(so.view());
        }
        bufs.push(o_unit.view());
        batch
            .dispatch(
                &p,
                &bufs,
                &[("tokens", tt), ("topk", kk), ("blocks", blocks)],
            )
            .unwrap();
    }
    let rec = batch.finish().unwrap();
    g.run(&rec).unwrap();
    if unit {
        let name = format!(
            "moe_down_to_tokens {:?} {:?} t={t}",
            cfg.variant, cfg.layout
        );
        assert_close_scaled(&name, &read_f32(&o_unit, t * d), &want_unit, &mag_unit);
    }
    let name = format!(
        "moe {:?} {:?} {:?} t={t} k={k} shared={}",
        cfg.variant, cfg.layout, cfg.act, case.shared
    );
    assert_close_scaled(&name, &read_f32(&o, t * d), &want, &mag);

    // The plan itself: every in-range pair lands in a block of its expert, in token order.
    let (be, pr, pp) = (
        read_i32(&block_expert, nb),
        read_i32(&pairs, nb * r),
        read_i32(&pair_pos, t * k),
    );
    for (i, &id) in case.ids.iter().enumerate() {
        if id < 0 || id as usize >= e {
            assert_eq!(pp[i], -1, "{name}: dropped pair {i}");
            continue;
        }
        let pos = pp[i] as usize;
        assert_eq!(pr[pos], i as i32, "{name}: pair {i}");
        assert_eq!(be[pos / r], id, "{name}: block of pair {i}");
    }
}

fn configs(act: GatedAct) -> Vec<MoeConfig> {
    let lim = limits();
    let sg = lim.subgroup_size.unwrap();
    let (e, d, f) = (5u32, 16u32, 24u32);
    let mut v = vec![MoeConfig::new(e, d, f, act, &lim, 256).unwrap()];
    for layout in [BLayout::RowMajor, BLayout::Transposed] {
        v.push(
            MoeConfig::with(
                e,
                d,
                f,
                act,
                MatmulVariant::RowBlocked(RowTile {
                    rows: 3,
                    cols: 2,
                    workgroup: 8,
                    unroll: 2,
                }),
                layout,
                &lim,
                256,
            )
            .unwrap(),
        );
        v.push(
            MoeConfig::with(
                e,
                d,
                f,
                act,
                MatmulVariant::SubgroupBlocked(SubgroupTile::new(2, sg)),
                layout,
                &lim,
                256,
            )
            .unwrap(),
        );
    }
    v
}

#[test]
fn moe_swiglu_every_variant() {
    let cases = [
        // Decode, k = 2, one token whose two slots pick the same expert.
        Case {
            t: 1,
            k: 2,
            ids: vec![3, 3],
            shared: false,
        },
        // k = 1, repeated experts, experts 2 and 4 unused, with a shared expert.
        Case {
            t: 7,
            k: 1,
            ids: vec![0, 1, 1, 3, 0, 1, 3],
            shared: true,
        },
        // k = 2, uneven groups, an out-of-range and a negative id (dropped).
        Case {
            t: 9,
            k: 2,
            ids: vec![0, 1, 1, 2, 2, 0, 4, 1, 1, 0, 3, 4, 0, 9, 2, -1, 1, 4],
            shared: false,
        },
    ];
    for (i, cfg) in configs(GatedAct::SwiGlu).iter().enumerate() {
        for (j, case) in cases.iter().enumerate() {
            run_case(cfg, case, (i * 10 + j) as u64);
        }
    }
}

#[test]
fn moe_geglu_with_shared_expert() {
    let case = Case {
        t: 5,
        k: 2,
        ids: vec![4, 0, 0, 4, 2, 1, 4, 2, 1, 1],
        shared: true,
    };
    // The default (transposed, subgroup) and the scalar row-major configs: the
    // activation is the only difference from the SwiGLU test.
    let cfgs = configs(GatedAct::GeGlu);
    for (i, cfg) in [&cfgs[0], &cfgs[1]].into_iter().enumerate() {
        run_case(cfg, &case, 100 + i as u64);
    }
}

#[test]
fn moe_many_tokens_split_weights() {
    // 40 tokens, k = 2, gate/up and down weights split across bindings.
    let lim = limits();
    let mut tight = lim.clone();
    tight.max_storage_buffer_binding_size = 3 * 16 * 24 * 4;
    for layout in [BLayout::RowMajor, BLayout::Transposed] {
        let sg = lim.subgroup_size.unwrap();
        let cfg = MoeConfig::with(
            5,
            16,
            24,
            GatedAct::SwiGlu,
            MatmulVariant::SubgroupBlocked(SubgroupTile::new(4, sg)),
            layout,
            &tight,
            256,
        )
        .unwrap();
        assert!(
            cfg.gate_up_split.parts > 1 && cfg.down_split.parts > 1,
            "{cfg:?}"
        );
        // Bind each part as its own buffer: exercised through run_split below.
        run_split(&cfg, layout);
    }
}

fn run_split(cfg: &MoeConfig, layout: BLayout) {
    let (e, d, f) = (cfg.experts as usize, cfg.hidden as usize, cfg.ffn as usize);
    let (t, k) = (40usize, 2usize);
    let lim = limits();
    let ids: Vec<i32> = rand_i32(55, t * k, 0, e as i32);
    let x = rand_f32(56, t * d);
    let w = rand_f32(57, t * k);
    let wg = rand_f32(58, e * d * f);
    let wu = rand_f32(59, e * d * f);
    let wd = rand_f32(60, e * f * d);
    let mut want = vec![0.0; t * d];
    let mut mag = vec![0.0; t * d];
    for ti in 0..t {
        for j in 0..k {
            let ei = ids[ti * k + j] as usize;
            let (y, ym) = ffn(
                cfg.act,
                &x[ti * d..(ti + 1) * d],
                &wg[ei * d * f..(ei + 1) * d * f],
                &wu[ei * d * f..(ei + 1) * d * f],
                &wd[ei * f * d..(ei + 1) * f * d],
                d,
                f,
            );
            for c in 0..d {
                want[ti * d + c] += f64::from(w[ti * k + j]) * y[c];
                mag[ti * d + c] += f64::from(w[ti * k + j]).abs() * ym[c];
            }
        }
    }
    let parts = |data: &[f32], rows: usize, split: seam_shaders::WeightSplit| -> Vec<GpuBuffer> {
        let width = data.len() / rows;
        (0..split.parts)
            .map(|p| {
                let (r0, rn) = split.part_rows(rows as u32, p);
                up(&data[r0 as usize * width..(r0 + rn) as usize * width])
            })
            .collect()
    };
    let (gate_rows, down_rows) = match layout {
        BLayout::RowMajor => (e * d, e * f),
        BLayout::Transposed => (e * f, e * d),
    };
    let gparts = parts(&store(&wg, e, d, f, layout), gate_rows, cfg.gate_up_split);
    let uparts = parts(&store(&wu, e, d, f, layout), gate_rows, cfg.gate_up_split);
    let dparts = parts(&store(&wd, e, f, d, layout), down_rows, cfg.down_split);
    let r = cfg.block_rows() as usize;
    let blocks = moe_max_blocks(t as u32, k as u32, e as u32, r as u32);
    let nb = blocks as usize;
    let (xb, idb, wb) = (up(&x), up(&ids), up(&w));
    let (block_expert, pairs, pair_pos) = (out(nb), out(nb * r), out(t * k));
    let (h, y, o) = (out(nb * r * f), out(nb * r * d), out(t * d));
    let sizes = [("tokens", t as u32), ("topk", k as u32), ("blocks", blocks)];
    run(
        &pipeline(&moe_plan(cfg, &lim).unwrap()),
        &[&idb, &block_expert, &pairs, &pair_pos],
        &sizes,
    );
    let mut bufs = vec![&xb, &block_expert, &pairs];
    bufs.extend(gparts.iter());
    bufs.extend(uparts.iter());
    bufs.push(&h);
    run(&pipeline(&moe_gate_up(cfg).unwrap()), &bufs, &sizes);
    let mut bufs = vec![&h, &block_expert];
    bufs.extend(dparts.iter());
    bufs.push(&y);
    run(
        &pipeline(&moe_down(cfg).unwrap()),
        &bufs,
        &[("blocks", blocks)],
    );
    run(
        &pipeline(&moe_combine(cfg, false, &lim).unwrap()),
        &[&y, &wb, &pair_pos, &o],
        &sizes,
    );
    assert_close_scaled(
        &format!("moe split {layout:?}"),
        &read_f32(&o, t * d),
        &want,
        &mag,
    );
}
