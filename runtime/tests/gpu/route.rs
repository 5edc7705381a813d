//! Top-k and router decisions on the device.

use seam_shaders::{route, topk, Dim, RouteMode};

use crate::common::*;

/// Reference top-k: larger first, lower index first among equals, NaN skipped,
/// −1 / −inf past the selectable elements.
fn ref_topk(row: &[f32], k: usize) -> Vec<(f32, i32)> {
    let mut idx: Vec<usize> = (0..row.len()).filter(|&i| !row[i].is_nan()).collect();
    idx.sort_by(|&a, &b| row[b].partial_cmp(&row[a]).unwrap().then(a.cmp(&b)));
    (0..k)
        .map(|j| {
            idx.get(j)
                .map_or((f32::NEG_INFINITY, -1), |&i| (row[i], i as i32))
        })
        .collect()
}

fn rows_with_ties(rows: usize, e: usize) -> Vec<f32> {
    // Values on a coarse grid so ties are common.
    rand_i32(77, rows * e, -3, 4)
        .iter()
        .map(|&v| v as f32 * 0.5)
        .collect()
}

#[test]
fn topk_ties_go_to_the_lower_index() {
    let lim = limits();
    let e = 6usize;
    let mut x = rows_with_ties(9, e);
    x[2] = f32::NAN;
    x[7] = f32::INFINITY;
    for k in [1u32, 2, 6, 8] {
        for dim in [Dim::Dynamic, Dim::Fixed(e as u32)] {
            let p = pipeline(&topk(k, dim, &lim).unwrap());
            let (vals, ids) = (out(9 * k as usize), out(9 * k as usize));
            run(&p, &[&up(&x), &vals, &ids], &[("rows", 9), ("e", e as u32)]);
            let (gv, gi) = (
                read_f32(&vals, 9 * k as usize),
                read_i32(&ids, 9 * k as usize),
            );
            for r in 0..9 {
                let want = ref_topk(&x[r * e..(r + 1) * e], k as usize);
                for (j, &(v, i)) in want.iter().enumerate() {
                    let at = r * k as usize + j;
                    assert_eq!((gv[at], gi[at]), (v, i), "row {r} slot {j} k={k}");
                }
            }
        }
    }
}

#[test]
fn route_modes() {
    let lim = limits();
    let (rows, e) = (7usize, 8usize);
    let mut logits = rand_f32(5, rows * e);
    logits[3] = logits[5]; // a tie
    let scores = rand_f32(6, rows * e);
    for k in [1u32, 2, 3] {
        for (mode, renorm) in [
            (RouteMode::SoftmaxTopk, false),
            (RouteMode::SoftmaxTopk, true),
            (RouteMode::TopkSoftmax, false),
            (RouteMode::Take, false),
        ] {
            let p = pipeline(&route(k, mode, renorm, Dim::Fixed(e as u32), &lim).unwrap());
            let (ids, w) = (out(rows * k as usize), out(rows * k as usize));
            let (lb, sb) = (up(&logits), up(&scores));
            if mode == RouteMode::Take {
                run(&p, &[&lb, &sb, &ids, &w], &[("rows", rows as u32)]);
            } else {
                run(&p, &[&lb, &ids, &w], &[("rows", rows as u32)]);
            }
            let (gi, gw) = (
                read_i32(&ids, rows * k as usize),
                read_f32(&w, rows * k as usize),
            );
            let mut want_w = Vec::new();
            for r in 0..rows {
                let row = &logits[r * e..(r + 1) * e];
                let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
                let z: f64 = row.iter().map(|&v| (f64::from(v) - m).exp()).sum();
                let sel = ref_topk(row, k as usize);
                let mut ws: Vec<f64> = match mode {
                    RouteMode::SoftmaxTopk => sel
                        .iter()
                        .map(|&(v, _)| (f64::from(v) - m).exp() / z)
                        .collect(),
                    RouteMode::TopkSoftmax => {
                        let mk = f64::from(sel[0].0);
                        let zk: f64 = sel.iter().map(|&(v, _)| (f64::from(v) - mk).exp()).sum();
                        sel.iter()
                            .map(|&(v, _)| (f64::from(v) - mk).exp() / zk)
                            .collect()
                    }
                    RouteMode::Take => sel
                        .iter()
                        .map(|&(_, i)| f64::from(scores[r * e + i as usize]))
                        .collect(),
                };
                if renorm {
                    let s: f64 = ws.iter().sum();
                    ws.iter_mut().for_each(|w| *w /= s);
                }
                for (j, &(_, i)) in sel.iter().enumerate() {
                    assert_eq!(
                        gi[r * k as usize + j],
                        i,
                        "{mode:?} renorm={renorm} k={k} row {r}"
                    );
                }
                want_w.extend(ws);
            }
            assert_close(&format!("route {mode:?} k={k}"), &gw, &want_w);
        }
    }
}
