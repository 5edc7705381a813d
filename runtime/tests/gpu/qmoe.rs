//! The grouped MoE expert products with expert stacks stored in a
//! `WeightFormat` (`moe_gate_up_quant`, `moe_down_quant`,
//! `moe_down_to_tokens_quant`), run between the `f32` plan and combine: every
//! format × E ∈ {4, 8} × top-k ∈ {1, 2} × tokens ∈ {1, 3, 17} (repeated
//! experts, experts without a token, an out-of-range id) on D and F an odd
//! number of blocks (q4_k: D = 256·3, F = 256), on the device's tile and, for
//! `E = 8`, on one of the other reductions per format. Weights are seam-core's quantizer
//! output; the reference is an f64 loop on their decoded values.
//!
//! Checked: the layer's output, `|got − want| ≤ 1e-4 · max|want| + 1e-6`;
//! gate‖up's rows of every block that has an expert (real pairs to the same
//! tolerance, padding rows exactly zero); for top-1 cases the down projection
//! written in token order, with and without the shared expert's output added.

use seam_core::quant::{pack_rows, quantize, unpack_rows};
use seam_runtime::device::GpuBuffer;
use seam_shaders::{
    moe_combine, moe_down_quant, moe_down_to_tokens_quant, moe_gate_up_quant, moe_max_blocks,
    moe_plan, BLayout, GatedAct, MatmulVariant, MoeConfig, QuantMoeConfig, QuantTile, RowTile,
    WeightFormat,
};

use crate::common::*;
use crate::moe::act;

/// Relative tolerance against the largest magnitude of the checked output.
const QTOL: f64 = 1e-4;

/// `(D, F)` for a format: an odd number of blocks (or decode chunks) each.
fn shape(format: WeightFormat) -> (usize, usize) {
    match format {
        WeightFormat::F32 => (36, 20),
        WeightFormat::F16 | WeightFormat::Bf16 => (40, 24),
        WeightFormat::Q4K => (768, 256),
        _ => (96, 160),
    }
}

/// A routing case: tokens, top-k, experts and the ids.
struct Case {
    t: usize,
    k: usize,
    e: usize,
    ids: Vec<i32>,
}

/// The cases; all but the first share `E = 8`, so their kernels are compiled
/// once (lavapipe's shader compiles dominate the test's time).
fn cases() -> Vec<Case> {
    let mut ids17 = rand_i32(77, 17 * 2, 0, 8);
    ids17[5] = -1;
    ids17[6] = ids17[7];
    vec![
        Case {
            t: 1,
            k: 1,
            e: 4,
            ids: vec![2],
        },
        Case {
            t: 3,
            k: 2,
            e: 8,
            ids: vec![7, 1, 1, 7, 0, 7],
        },
        Case {
            t: 17,
            k: 2,
            e: 8,
            ids: ids17,
        },
        Case {
            t: 17,
            k: 1,
            e: 8,
            ids: rand_i32(78, 17, 0, 5),
        },
    ]
}

/// `cfg` on `tile`, with a plan of `tile.rows`-row blocks.
fn with_tile(cfg: &QuantMoeConfig, tile: QuantTile) -> QuantMoeConfig {
    let m = &cfg.moe;
    let variant = MatmulVariant::RowBlocked(RowTile {
        rows: tile.rows,
        cols: 2,
        workgroup: 8,
        unroll: 2,
    });
    let moe = MoeConfig::with(
        m.experts,
        m.hidden,
        m.ffn,
        m.act,
        variant,
        BLayout::RowMajor,
        &limits(),
        256,
    )
    .unwrap();
    QuantMoeConfig { moe, tile, ..*cfg }
}

/// A stack of `e` matrices of `n` columns over `k`, quantized: its words and
/// decoded rows (`[e·n, k]`).
fn stack(
    format: WeightFormat,
    (e, n, k): (usize, usize, usize),
    seed: u64,
) -> (Vec<u32>, Vec<f32>) {
    let rows = (e * n) as u64;
    let blocks = quantize(format, &rand_f32(seed, e * n * k)).unwrap();
    let words = pack_rows(format, &blocks, rows, k as u64).unwrap();
    let decoded = unpack_rows(format, &words, rows, k as u64).unwrap();
    (words, decoded)
}

/// `Σ_p x[p]·w[row·k + p]` in f64.
fn dot(x: &[f32], w: &[f32], row: usize, k: usize) -> f64 {
    (0..k)
        .map(|p| f64::from(x[p]) * f64::from(w[row * k + p]))
        .sum()
}

/// Asserts `got` matches `want` within the tolerance relative to max|want|.
fn check_close(what: &str, got: &[f32], want: &[f64]) {
    let max = want.iter().fold(0.0f64, |x, y| x.max(y.abs()));
    assert!(max > 0.0, "{what}: an all-zero reference checks nothing");
    for (i, (&g, &y)) in got.iter().zip(want).enumerate() {
        let d = (f64::from(g) - y).abs();
        assert!(
            d <= QTOL * max + 1e-6,
            "{what}: element {i}: got {g}, want {y} (|diff| {d:e}, max|want| {max:e})"
        );
    }
}

/// The decoded stacks of one layer and the reference's pieces.
struct Layer {
    x: Vec<f32>,
    gate: (Vec<u32>, Vec<f32>),
    up: (Vec<u32>, Vec<f32>),
    down: (Vec<u32>, Vec<f32>),
}

impl Layer {
    fn new(format: WeightFormat, case: &Case, (d, f): (usize, usize), seed: u64) -> Self {
        Layer {
            x: rand_f32(seed, case.t * d),
            gate: stack(format, (case.e, f, d), seed + 1),
            up: stack(format, (case.e, f, d), seed + 2),
            down: stack(format, (case.e, d, f), seed + 3),
        }
    }

    /// `act(x_t·Wg[e]) * (x_t·Wu[e])`.
    fn h(&self, a: GatedAct, t: usize, e: usize, (d, f): (usize, usize)) -> Vec<f64> {
        let x = &self.x[t * d..(t + 1) * d];
        (0..f)
            .map(|j| act(a, dot(x, &self.gate.1, e * f + j, d)) * dot(x, &self.up.1, e * f + j, d))
            .collect()
    }

    /// `h·Wd[e]`.
    fn y(&self, h: &[f64], e: usize, (d, f): (usize, usize)) -> Vec<f64> {
        (0..d)
            .map(|c| {
                let row = &self.down.1[(e * d + c) * f..(e * d + c + 1) * f];
                h.iter().zip(row).map(|(hv, w)| hv * f64::from(*w)).sum()
            })
            .collect()
    }
}

/// Runs plan → gate‖up → down → combine (and for top-1 the down projection in
/// token order, with and without an added residual) and checks them.
fn run_case(cfg: &QuantMoeConfig, case: &Case, layer: &Layer, seed: u64) {
    let lim = limits();
    let moe = &cfg.moe;
    let (d, f) = (moe.hidden as usize, moe.ffn as usize);
    let (t, k, e) = (case.t, case.k, case.e);
    let w = rand_f32(seed + 4, t * k);
    let resid = rand_f32(seed + 5, t * d);
    let valid = |id: i32| id >= 0 && (id as usize) < e;

    let mut want = vec![0.0; t * d];
    let mut want_unit = vec![0.0; t * d];
    for ti in 0..t {
        for j in 0..k {
            let id = case.ids[ti * k + j];
            if !valid(id) {
                continue;
            }
            let y = layer.y(
                &layer.h(moe.act, ti, id as usize, (d, f)),
                id as usize,
                (d, f),
            );
            for c in 0..d {
                want[ti * d + c] += f64::from(w[ti * k + j]) * y[c];
                want_unit[ti * d + c] += y[c];
            }
        }
    }

    let r = moe.block_rows() as usize;
    let blocks = moe_max_blocks(t as u32, k as u32, e as u32, r as u32);
    let nb = blocks as usize;
    let (xb, idb, wb, rb) = (up(&layer.x), up(&case.ids), up(&w), up(&resid));
    let (gb, ub, db) = (up(&layer.gate.0), up(&layer.up.0), up(&layer.down.0));
    let (block_expert, pairs, pair_pos) = (out(nb), out(nb * r), out(t * k));
    let (h, y, o) = (out(nb * r * f), out(nb * r * d), out(t * d));
    let (o_unit, o_shared) = (out(t * d), out(t * d));
    let plan = pipeline(&moe_plan(moe, &lim).unwrap());
    let gate_up = pipeline(&moe_gate_up_quant(cfg).unwrap());
    let down = pipeline(&moe_down_quant(cfg).unwrap());
    let combine = pipeline(&moe_combine(moe, false, &lim).unwrap());
    let (tt, kk) = (t as u32, k as u32);
    let plan_sizes = [("tokens", tt), ("topk", kk), ("blocks", blocks)];
    let (all, blocks_only) = (&plan_sizes[..], &plan_sizes[2..]);
    let g = gpu();
    let mut batch = g.batch();
    let unit = k == 1 && case.ids.iter().all(|&id| valid(id));
    let to_tokens = |shared| pipeline(&moe_down_to_tokens_quant(cfg, shared).unwrap());
    let steps = [
        Some((plan, vec![&idb, &block_expert, &pairs, &pair_pos], all)),
        Some((gate_up, vec![&xb, &block_expert, &pairs, &gb, &ub, &h], all)),
        Some((down, vec![&h, &block_expert, &db, &y], blocks_only)),
        Some((combine, vec![&y, &wb, &pair_pos, &o], all)),
        unit.then(|| {
            let bufs = vec![&h, &block_expert, &pairs, &db, &o_unit];
            (to_tokens(false), bufs, all)
        }),
        unit.then(|| {
            let bufs = vec![&h, &block_expert, &pairs, &db, &rb, &o_shared];
            (to_tokens(true), bufs, all)
        }),
    ];
    for (p, bufs, sizes) in steps.iter().flatten() {
        let views: Vec<_> = bufs.iter().map(|b| b.view()).collect();
        batch.dispatch(p, &views, sizes).unwrap();
    }
    g.run(&batch.finish().unwrap()).unwrap();

    let name = format!(
        "{} {:?} E={e} T={t} k={k} D={d} F={f} {:?}",
        cfg.format, moe.act, cfg.tile
    );
    check_close(&format!("moe {name}"), &read_f32(&o, t * d), &want);
    if unit {
        let got = read_f32(&o_unit, t * d);
        check_close(&format!("moe_down_to_tokens {name}"), &got, &want_unit);
        let shared: Vec<f64> = want_unit
            .iter()
            .zip(&resid)
            .map(|(y, r)| y + f64::from(*r))
            .collect();
        let got = read_f32(&o_shared, t * d);
        check_close(&format!("moe_down_to_tokens +shared {name}"), &got, &shared);
    }
    check_gate_up(layer, moe, case, (&block_expert, &pairs, &h), &name);
}

/// Every row of a block with an expert: a real pair's `h` matches the
/// reference, a padding row is exactly zero.
fn check_gate_up(
    layer: &Layer,
    moe: &MoeConfig,
    case: &Case,
    (block_expert, pairs, h): (&GpuBuffer, &GpuBuffer, &GpuBuffer),
    name: &str,
) {
    let (d, f) = (moe.hidden as usize, moe.ffn as usize);
    let r = moe.block_rows() as usize;
    let nb = moe_max_blocks(case.t as u32, case.k as u32, case.e as u32, r as u32) as usize;
    let (be, pr) = (read_i32(block_expert, nb), read_i32(pairs, nb * r));
    let got = read_f32(h, nb * r * f);
    let (mut got_real, mut want_real) = (Vec::new(), Vec::new());
    let mut padding = 0;
    for (row, &pair) in pr.iter().enumerate() {
        let expert = be[row / r];
        if expert < 0 {
            continue;
        }
        let got_row = &got[row * f..(row + 1) * f];
        if pair < 0 {
            padding += 1;
            assert!(
                got_row.iter().all(|&v| v == 0.0),
                "gate_up {name}: padding row {row} is not zero"
            );
            continue;
        }
        let token = pair as usize / case.k;
        got_real.extend_from_slice(got_row);
        want_real.extend(layer.h(moe.act, token, expert as usize, (d, f)));
    }
    assert!(!got_real.is_empty(), "gate_up {name}: no routed rows");
    check_close(
        &format!("gate_up {name} ({padding} padding rows)"),
        &got_real,
        &want_real,
    );
}

#[test]
fn moe_quant_every_format_routing_and_tile() {
    let lim = limits();
    let mut seed = 0;
    for (fi, format) in WeightFormat::ALL.into_iter().enumerate() {
        let (d, f) = shape(format);
        let act = if fi % 2 == 0 {
            GatedAct::SwiGlu
        } else {
            GatedAct::GeGlu
        };
        for case in &cases() {
            let moe = MoeConfig::new(case.e as u32, d as u32, f as u32, act, &lim, 256).unwrap();
            let cfg = QuantMoeConfig::new(moe, format, &lim);
            seed += 10;
            let layer = Layer::new(format, case, (d, f), seed);
            run_case(&cfg, case, &layer, seed);
            if case.e == 8 {
                let other = with_tile(&cfg, crate::qmatmul::reduction_tiles()[fi % 3]);
                run_case(&other, case, &layer, seed);
            }
        }
    }
}

#[test]
fn moe_quant_refuses_a_tile_that_is_not_the_plan_block() {
    let lim = limits();
    let moe = MoeConfig::new(4, 64, 64, GatedAct::SwiGlu, &lim, 256).unwrap();
    let mut cfg = QuantMoeConfig::new(moe, WeightFormat::Q4_0, &lim);
    cfg.tile.rows = moe.block_rows() + 1;
    assert!(moe_gate_up_quant(&cfg).is_err());
    assert!(moe_down_quant(&cfg).is_err());
    assert!(moe_down_to_tokens_quant(&cfg, true).is_err());
}
