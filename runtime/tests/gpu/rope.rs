//! Rotary position embedding (rotate-half).

use seam_shaders::{rope, Dim};

use crate::common::*;

#[test]
fn rope_rotate_half() {
    let lim = limits();
    for &(t, h, dh, theta) in &[
        (1usize, 1usize, 2usize, 10000.0f32),
        (5, 3, 8, 10000.0),
        (7, 2, 64, 500000.0),
    ] {
        let x = rand_f32(t as u64, t * h * dh);
        let pos = rand_i32(9, t, 0, 200);
        for (hd, dd) in [
            (Dim::Dynamic, Dim::Dynamic),
            (Dim::Fixed(h as u32), Dim::Fixed(dh as u32)),
        ] {
            let p = pipeline(&rope(theta, hd, dd, &lim).unwrap());
            let o = out(t * h * dh);
            run(
                &p,
                &[&up(&x), &up(&pos), &o],
                &[
                    ("tokens", t as u32),
                    ("heads", h as u32),
                    ("head_dim", dh as u32),
                ],
            );
            let half = dh / 2;
            let mut want = vec![0.0f64; t * h * dh];
            let mut scale = vec![0.0f64; t * h * dh];
            for ti in 0..t {
                for hi in 0..h {
                    let base = (ti * h + hi) * dh;
                    for i in 0..half {
                        let freq = f64::from(theta).powf(-2.0 * i as f64 / dh as f64);
                        let ang = f64::from(pos[ti]) * freq;
                        let (s, c) = ang.sin_cos();
                        let (x0, x1) = (f64::from(x[base + i]), f64::from(x[base + i + half]));
                        want[base + i] = x0 * c - x1 * s;
                        want[base + i + half] = x1 * c + x0 * s;
                        // The angle is computed in f32: allow its rounding (|pos|·ulp).
                        let e = 1.0 + f64::from(pos[ti]).abs() * 1e-3;
                        scale[base + i] = (x0.abs() + x1.abs()) * e;
                        scale[base + i + half] = scale[base + i];
                    }
                }
            }
            assert_close_scaled(
                &format!("rope t={t} h={h} dh={dh}"),
                &read_f32(&o, t * h * dh),
                &want,
                &scale,
            );
        }
    }
}
