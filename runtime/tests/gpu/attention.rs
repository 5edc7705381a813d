//! Causal and non-causal grouped-query attention.

use seam_shaders::{attention, AttentionConfig, Dim};

use crate::common::*;

#[allow(clippy::too_many_arguments)]
fn reference(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    t: usize,
    s: usize,
    hq: usize,
    hkv: usize,
    dh: usize,
    causal: bool,
    scale: f64,
) -> (Vec<f64>, Vec<f64>) {
    let mut out = vec![0.0; t * hq * dh];
    let mut mag = vec![0.0; t * hq * dh];
    for ti in 0..t {
        for h in 0..hq {
            let kh = h / (hq / hkv);
            let limit = if causal {
                (ti + s + 1).saturating_sub(t).min(s)
            } else {
                s
            };
            let qo = (ti * hq + h) * dh;
            let logits: Vec<f64> = (0..limit)
                .map(|j| {
                    let ko = (j * hkv + kh) * dh;
                    (0..dh)
                        .map(|d| f64::from(q[qo + d]) * f64::from(k[ko + d]))
                        .sum::<f64>()
                        * scale
                })
                .collect();
            if logits.is_empty() {
                continue;
            }
            let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = logits.iter().map(|l| (l - m).exp()).sum();
            for (j, l) in logits.iter().enumerate() {
                let p = (l - m).exp() / z;
                let vo = (j * hkv + kh) * dh;
                for d in 0..dh {
                    out[qo + d] += p * f64::from(v[vo + d]);
                    mag[qo + d] += p * f64::from(v[vo + d]).abs();
                }
            }
        }
    }
    (out, mag)
}

#[test]
fn attention_gqa_causal_and_full() {
    let lim = limits();
    let (hq, hkv, dh) = (4usize, 2usize, 16usize);
    // (T, S): decode, prefill, chunked prefill, S < T (early queries see nothing).
    for &(t, s) in &[(1usize, 7usize), (5, 5), (3, 9), (4, 2), (33, 40)] {
        let q = rand_f32(1 + t as u64, t * hq * dh);
        let k = rand_f32(2 + s as u64, s * hkv * dh);
        let v = rand_f32(3 + s as u64, s * hkv * dh);
        for causal in [true, false] {
            for wg in [None, Some(16u32)] {
                let mut cfg = AttentionConfig::new(
                    causal,
                    None,
                    Dim::Fixed(hq as u32),
                    Dim::Dynamic,
                    dh as u32,
                    &lim,
                );
                if let Some(w) = wg {
                    cfg.workgroup = w;
                }
                let p = pipeline(&attention(&cfg).unwrap());
                let o = out(t * hq * dh);
                run(
                    &p,
                    &[&up(&q), &up(&k), &up(&v), &o],
                    &[
                        ("tokens", t as u32),
                        ("kv_len", s as u32),
                        ("kv_heads", hkv as u32),
                    ],
                );
                let (want, mag) = reference(
                    &q,
                    &k,
                    &v,
                    t,
                    s,
                    hq,
                    hkv,
                    dh,
                    causal,
                    1.0 / (dh as f64).sqrt(),
                );
                assert_close_scaled(
                    &format!("attention t={t} s={s} causal={causal} wg={wg:?}"),
                    &read_f32(&o, t * hq * dh),
                    &want,
                    &mag,
                );
            }
        }
    }
}

#[test]
fn attention_explicit_scale_reads_a_cache_prefix() {
    // k and v are the first S rows of a larger cache buffer.
    let lim = limits();
    let (t, s, cap, h, dh) = (2usize, 6usize, 16usize, 2usize, 8usize);
    let q = rand_f32(11, t * h * dh);
    let kc = rand_f32(12, cap * h * dh);
    let vc = rand_f32(13, cap * h * dh);
    let cfg = AttentionConfig::new(true, Some(0.3), Dim::Dynamic, Dim::Dynamic, dh as u32, &lim);
    let p = pipeline(&attention(&cfg).unwrap());
    let o = out(t * h * dh);
    run(
        &p,
        &[&up(&q), &up(&kc), &up(&vc), &o],
        &[
            ("tokens", t as u32),
            ("kv_len", s as u32),
            ("heads", h as u32),
            ("kv_heads", h as u32),
        ],
    );
    let (want, mag) = reference(
        &q,
        &kc[..s * h * dh],
        &vc[..s * h * dh],
        t,
        s,
        h,
        h,
        dh,
        true,
        0.3,
    );
    assert_close_scaled(
        "attention cache prefix",
        &read_f32(&o, t * h * dh),
        &want,
        &mag,
    );
}
