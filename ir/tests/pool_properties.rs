//! Properties of the slot-pool ops on random shapes and data: a slot's
//! `pooled_attention` is causal `attention` over that slot's rows, and
//! `write_rows` then `pooled_attention` over a batch mixing sequences is
//! attention per sequence over its cache and its new rows.
//! Tolerance: max |pooled − reference| ≤ 1e-6 · max(1, max |reference|).

#[path = "support/one_op.rs"]
mod one_op;

use one_op::{max_abs, max_diff, run};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seam_ir::{random_tensor, DType, Tensor};

/// Random attention shapes: query heads, kv heads, head dim.
fn heads(rng: &mut ChaCha8Rng) -> (usize, usize, usize) {
    let hkv = rng.random_range(1..=3);
    let group = [1, 2, 4][rng.random_range(0..3)];
    let dh = [1, 2, 4, 8, 16][rng.random_range(0..5)];
    (hkv * group, hkv, dh)
}

fn floats(shape: &[usize], seed: u64) -> Tensor {
    random_tensor(DType::F32, shape, seed).unwrap()
}

fn i32s(v: Vec<i32>) -> Tensor {
    Tensor::i32(vec![v.len()], v).unwrap()
}

/// Rows `rows` (each of `row` elements) of `t`, in that order, as a tensor of
/// `shape`.
fn rows(t: &Tensor, row: usize, rows: &[usize], shape: Vec<usize>) -> Tensor {
    let v = t.to_f32_vec();
    let picked = rows
        .iter()
        .flat_map(|&r| v[r * row..(r + 1) * row].to_vec())
        .collect();
    Tensor::f32(shape, picked).unwrap()
}

/// `attention(q, k, v, causal=true)` with an optional scale.
fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: &str) -> Tensor {
    let ty = one_op::type_of(q);
    run(
        &[("q", q), ("k", k), ("v", v)],
        &format!("%a = attention(%q, %k, %v, causal=true{scale}) : {ty}"),
        &ty,
        "%a",
    )
    .unwrap()
}

fn scale_attr(rng: &mut ChaCha8Rng) -> String {
    if rng.random_bool(0.5) {
        format!(", scale={}", rng.random_range(0.05f32..1.0))
    } else {
        String::new()
    }
}

fn assert_close(got: &Tensor, want: &Tensor, what: &str) {
    let err = max_diff(got, want);
    let tol = 1e-6 * max_abs(want).max(1.0);
    assert!(err <= tol, "{what}: max abs error {err} over {tol}");
}

#[test]
fn pooled_attention_of_a_slot_is_causal_attention_over_its_rows() {
    for seed in 0..60 {
        let rng = &mut ChaCha8Rng::seed_from_u64(seed);
        let (hq, hkv, dh) = heads(rng);
        let (slots, len, tokens) = (
            rng.random_range(1..=4),
            rng.random_range(1..=9),
            rng.random_range(1..=6),
        );
        let q = floats(&[tokens, hq, dh], seed * 10);
        let kp = floats(&[slots, len, hkv, dh], seed * 10 + 1);
        let vp = floats(&[slots, len, hkv, dh], seed * 10 + 2);
        let slot: Vec<i32> = (0..tokens)
            .map(|_| rng.random_range(0..slots) as i32)
            .collect();
        let pos: Vec<i32> = (0..tokens)
            .map(|_| rng.random_range(0..len) as i32)
            .collect();
        let scale = scale_attr(rng);
        let (s, p) = (i32s(slot.clone()), i32s(pos.clone()));
        let ty = one_op::type_of(&q);
        let out = run(
            &[("q", &q), ("k", &kp), ("v", &vp), ("s", &s), ("p", &p)],
            &format!("%a = pooled_attention(%q, %k, %v, %s, %p{scale}) : {ty}"),
            &ty,
            "%a",
        )
        .unwrap();
        for t in 0..tokens {
            let seen: Vec<usize> = (0..=pos[t] as usize)
                .map(|r| slot[t] as usize * len + r)
                .collect();
            let kv_shape = vec![seen.len(), hkv, dh];
            let k = rows(&kp, hkv * dh, &seen, kv_shape.clone());
            let v = rows(&vp, hkv * dh, &seen, kv_shape);
            let want = attention(&rows(&q, hq * dh, &[t], vec![1, hq, dh]), &k, &v, &scale);
            let got = rows(&out, hq * dh, &[t], vec![1, hq, dh]);
            assert_close(&got, &want, &format!("seed {seed} token {t}"));
        }
    }
}

#[test]
fn a_batch_of_sequences_written_and_attended_is_attention_per_sequence() {
    for seed in 0..40 {
        let rng = &mut ChaCha8Rng::seed_from_u64(1000 + seed);
        let (hq, hkv, dh) = heads(rng);
        let (slots, len) = (rng.random_range(1..=4), 12);
        // Each sequence has `cached` rows and appends `new` tokens.
        let cached: Vec<usize> = (0..slots).map(|_| rng.random_range(0..=6)).collect();
        let mut batch: Vec<(usize, usize)> = (0..slots)
            .flat_map(|s| (0..rng.random_range(0..=3)).map(move |j| (s, j)))
            .collect();
        if batch.is_empty() {
            batch.push((0, 0));
        }
        batch.shuffle(rng);
        let tokens = batch.len();
        let q = floats(&[tokens, hq, dh], seed * 10);
        let kn = floats(&[tokens, hkv, dh], seed * 10 + 1);
        let vn = floats(&[tokens, hkv, dh], seed * 10 + 2);
        let kp = floats(&[slots, len, hkv, dh], seed * 10 + 3);
        let vp = floats(&[slots, len, hkv, dh], seed * 10 + 4);
        let s = i32s(batch.iter().map(|&(s, _)| s as i32).collect());
        let p = i32s(batch.iter().map(|&(s, j)| (cached[s] + j) as i32).collect());
        let scale = scale_attr(rng);
        let (ty, pool) = (one_op::type_of(&q), one_op::type_of(&kp));
        let body = format!(
            "%k2 = write_rows(%kp, %s, %p, %kn) : {pool}\n  %v2 = write_rows(%vp, %s, %p, %vn) : {pool}\n  %a = pooled_attention(%q, %k2, %v2, %s, %p{scale}) : {ty}"
        );
        let inputs = [
            ("q", &q),
            ("kn", &kn),
            ("vn", &vn),
            ("kp", &kp),
            ("vp", &vp),
            ("s", &s),
            ("p", &p),
        ];
        let out = run(&inputs, &body, &ty, "%a").unwrap();
        for (seq, &cache) in cached.iter().enumerate() {
            // The sequence's tokens in position order, then its cache and new rows.
            let mut mine: Vec<usize> = (0..tokens).filter(|&t| batch[t].0 == seq).collect();
            mine.sort_by_key(|&t| batch[t].1);
            if mine.is_empty() {
                continue;
            }
            let kv = |pool: &Tensor, new: &Tensor| {
                let mut all = rows(
                    pool,
                    hkv * dh,
                    &(seq * len..seq * len + cache).collect::<Vec<_>>(),
                    vec![cache, hkv, dh],
                )
                .to_f32_vec();
                all.extend(rows(new, hkv * dh, &mine, vec![mine.len(), hkv, dh]).to_f32_vec());
                Tensor::f32(vec![cache + mine.len(), hkv, dh], all).unwrap()
            };
            let qs = rows(&q, hq * dh, &mine, vec![mine.len(), hq, dh]);
            let want = attention(&qs, &kv(&kp, &kn), &kv(&vp, &vn), &scale);
            let got = rows(&out, hq * dh, &mine, vec![mine.len(), hq, dh]);
            assert_close(&got, &want, &format!("seed {seed} sequence {seq}"));
        }
    }
}
