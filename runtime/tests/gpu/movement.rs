//! Data movement: concat, slice, slice update, gather.

use seam_shaders::{concat, gather, slice, slice_update, Dim, ScalarType};

use crate::common::*;

#[test]
fn concat_middle_axis() {
    let lim = limits();
    // [2, a_j, 3] for a = (1, 4, 2) along axis 1.
    let (outer, inner) = (2usize, 3usize);
    let lens = [1usize, 4, 2];
    let parts: Vec<Vec<i32>> = lens
        .iter()
        .enumerate()
        .map(|(j, &a)| rand_i32(j as u64, outer * a * inner, -99, 99))
        .collect();
    let total: usize = lens.iter().sum();
    let p = pipeline(&concat(3, ScalarType::I32, &lim).unwrap());
    let bufs: Vec<_> = parts.iter().map(|v| up(v)).collect();
    let o = out(outer * total * inner);
    run(
        &p,
        &[&bufs[0], &bufs[1], &bufs[2], &o],
        &[
            ("n", (outer * total * inner) as u32),
            ("outer", 2),
            ("inner", 3),
            ("a0", 1),
            ("a1", 4),
            ("a2", 2),
        ],
    );
    let mut want = Vec::new();
    for o_ in 0..outer {
        for (j, &a) in lens.iter().enumerate() {
            want.extend_from_slice(&parts[j][o_ * a * inner..(o_ + 1) * a * inner]);
        }
    }
    assert_eq!(read_i32(&o, want.len()), want);
}

#[test]
fn slice_and_slice_update() {
    let lim = limits();
    let (outer, a, inner) = (3usize, 7usize, 5usize);
    let x = rand_f32(1, outer * a * inner);
    let (start, len) = (2usize, 4usize);
    let p = pipeline(&slice(ScalarType::F32, &lim).unwrap());
    let o = out(outer * len * inner);
    let sizes = [
        ("n", (outer * len * inner) as u32),
        ("inner", inner as u32),
        ("a", a as u32),
        ("start", start as u32),
        ("len", len as u32),
    ];
    run(&p, &[&up(&x), &o], &sizes);
    let mut want = Vec::new();
    for o_ in 0..outer {
        want.extend_from_slice(&x[(o_ * a + start) * inner..(o_ * a + start + len) * inner]);
    }
    assert_eq!(read_f32(&o, want.len()), want);
    // Write the slice back (negated) into a copy of x: the rest stays.
    let neg: Vec<f32> = want.iter().map(|v| -v).collect();
    let dst = up(&x);
    let p = pipeline(&slice_update(ScalarType::F32, &lim).unwrap());
    run(&p, &[&up(&neg), &dst], &sizes);
    let mut expect = x.clone();
    for o_ in 0..outer {
        for j in 0..len {
            for r in 0..inner {
                let i = ((o_ * a) + start + j) * inner + r;
                expect[i] = -x[i];
            }
        }
    }
    assert_eq!(read_f32(&dst, expect.len()), expect);
}

#[test]
fn gather_embedding_rows_with_clamped_ids() {
    let lim = limits();
    let (v, d) = (11usize, 33usize);
    let table = rand_f32(3, v * d);
    let ids = [0i32, 10, 3, 3, -5, 99, 7];
    for dim in [Dim::Dynamic, Dim::Fixed(d as u32)] {
        let p = pipeline(&gather(ScalarType::F32, dim, &lim).unwrap());
        let o = out(ids.len() * d);
        run(
            &p,
            &[&up(&table), &up(&ids), &o],
            &[
                ("tokens", ids.len() as u32),
                ("v", v as u32),
                ("d", d as u32),
            ],
        );
        let mut want = Vec::new();
        for &id in &ids {
            let r = id.clamp(0, v as i32 - 1) as usize;
            want.extend_from_slice(&table[r * d..(r + 1) * d]);
        }
        assert_eq!(read_f32(&o, want.len()), want);
    }
}
