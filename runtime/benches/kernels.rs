//! Kernel throughput on the current device next to a native CPU sgemm, in one run.
//!
//! `cargo bench -p seam-runtime --bench kernels` prints:
//! - matmul 1024³ GFLOP/s for the device's chosen variant (and, with
//!   `SEAM_BENCH_SWEEP=1`, a sweep of row-blocked tiles and the tiled variant);
//! - GEMV GFLOP/s and GB/s at M = 1 and M = 8 with K = 4096, N = 11008 (a 180 MB
//!   f32 weight, over lavapipe's 128 MiB binding limit: stored transposed and
//!   bound as two sub-ranges of one buffer);
//! - `matrixmultiply::sgemm` on the same shapes;
//! - dispatch and submit overhead.
//!
//! Set `WGPU_BACKEND` to choose the back end (Vulkan by default).

use std::time::{Duration, Instant};

use seam_runtime::{BufferView, DeviceOptions, Gpu, GpuBuffer, KernelPipeline};
use seam_shaders::{
    matmul, BLayout, Dim, MatmulConfig, MatmulVariant, RowTile, TiledTile, WeightSplit,
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn filled(n: usize, seed: u32) -> Vec<f32> {
    // A cheap deterministic pattern in [-1, 1).
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(12345);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// Median and minimum of `reps` timed runs of `f` after one warm-up.
fn time(reps: usize, mut f: impl FnMut() -> Res<()>) -> Res<(Duration, Duration)> {
    f()?;
    let mut ts = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        ts.push(t.elapsed());
    }
    ts.sort();
    Ok((ts[ts.len() / 2], ts[0]))
}

fn gflops(flops: f64, d: Duration) -> f64 {
    flops / d.as_secs_f64() / 1e9
}

struct Case<'a> {
    pipeline: KernelPipeline,
    buffers: Vec<BufferView<'a>>,
    sizes: Vec<(&'static str, u32)>,
}

fn run_case(gpu: &Gpu, c: &Case<'_>, reps: usize) -> Res<(Duration, Duration)> {
    let mut b = gpu.batch();
    b.dispatch(&c.pipeline, &c.buffers, &c.sizes)?;
    let rec = b.finish()?;
    time(reps, || Ok(gpu.run(&rec)?))
}

fn main() -> Res<()> {
    let opts = DeviceOptions {
        backends: seam_runtime::wgpu::Backends::VULKAN,
        ..DeviceOptions::default()
    };
    let gpu = Gpu::new(&opts)?;
    let lim = gpu.shader_limits();
    println!("device: {}", gpu.adapter());
    println!(
        "limits: max binding {} MiB, workgroup storage {} KiB, subgroup {:?}, class {:?}",
        lim.max_storage_buffer_binding_size >> 20,
        lim.workgroup_storage_bytes >> 10,
        lim.subgroup_size,
        lim.class
    );
    let sweep = std::env::var("SEAM_BENCH_SWEEP").is_ok_and(|v| v == "1");

    // ---- matmul 1024^3 ----
    let n = 1024usize;
    let a = filled(n * n, 1);
    let b = filled(n * n, 2);
    let ab = gpu.upload("a", &a)?;
    let bb = gpu.upload("b", &b)?;
    let ob = gpu.create_buffer("out", (n * n * 4) as u64)?;
    let flops = 2.0 * (n * n * n) as f64;
    println!("\n== matmul {n}x{n}x{n} f32 ==");
    let mut variants = vec![MatmulVariant::for_device(&lim, None)];
    if sweep {
        for (rows, cols, wg) in [
            (4, 4, 64),
            (8, 1, 64),
            (8, 2, 32),
            (8, 2, 64),
            (8, 2, 128),
            (6, 2, 64),
            (12, 1, 64),
            (8, 4, 64),
            (16, 1, 64),
            (4, 2, 64),
        ] {
            variants.push(MatmulVariant::RowBlocked(RowTile {
                rows,
                cols,
                workgroup: wg,
                unroll: 4,
            }));
        }
        variants.push(MatmulVariant::Tiled(TiledTile::default()));
    }
    for (i, v) in variants.iter().enumerate() {
        for fixed in [false, true] {
            if i > 0 && !fixed {
                continue;
            }
            let (m_dim, nk) = if fixed {
                (Dim::Fixed(n as u32), Dim::Fixed(n as u32))
            } else {
                (Dim::Dynamic, Dim::Dynamic)
            };
            let mut cfg = MatmulConfig::new(m_dim, nk, nk, &lim);
            cfg.variant = *v;
            let kern = matmul(&cfg)?;
            for trusted in [false, true] {
                if i > 0 && !trusted {
                    continue;
                }
                let t0 = Instant::now();
                let pipeline = if trusted {
                    // SAFETY: the buffers below hold exactly m·k, k·n and m·n floats.
                    unsafe { gpu.pipeline_trusted(&kern)? }
                } else {
                    gpu.pipeline(&kern)?
                };
                let build = t0.elapsed();
                let sizes: Vec<(&str, u32)> = ["m", "n", "k"]
                    .into_iter()
                    .filter(|s| {
                        kern.sizes
                            .iter()
                            .any(|d| d.name == *s && d.dim == Dim::Dynamic)
                    })
                    .map(|s| (s, n as u32))
                    .collect();
                let case = Case {
                    pipeline,
                    buffers: vec![ab.view(), bb.view(), ob.view()],
                    sizes,
                };
                let (med, min) = run_case(&gpu, &case, 5)?;
                println!(
                    "  seam {:<28} {:<7} {:<9} {:6.2} GFLOP/s (median {:7.1} ms, best {:6.2} GFLOP/s; pipeline {:5.1} ms)",
                    kern.name,
                    if fixed { "fixed" } else { "dynamic" },
                    if trusted { "unchecked" } else { "checked" },
                    gflops(flops, med),
                    med.as_secs_f64() * 1e3,
                    gflops(flops, min),
                    build.as_secs_f64() * 1e3
                );
            }
        }
    }
    let mut c = vec![0f32; n * n];
    let (med, _) = time(5, || {
        sgemm(&a, &b, &mut c, n, n, n);
        Ok(())
    })?;
    println!(
        "  native matrixmultiply::sgemm                          {:6.2} GFLOP/s (median {:7.1} ms)",
        gflops(flops, med),
        med.as_secs_f64() * 1e3
    );
    drop((ab, bb, ob));

    // ---- GEMV K=4096, N=11008 ----
    let (k, nn) = (4096usize, 11008usize);
    println!(
        "\n== GEMV K={k} N={nn} f32 (weight {} MB) ==",
        k * nn * 4 / 1_000_000
    );
    let w = filled(k * nn, 3); // [K, N] row-major (the IR layout)
    let mut wt = vec![0f32; k * nn]; // [N, K]
    for i in 0..k {
        for j in 0..nn {
            wt[j * k + i] = w[i * nn + j];
        }
    }
    let align = u64::from(gpu.limits().min_storage_buffer_offset_alignment);
    let wtb = gpu.upload("w_t", &wt)?;
    let wb = gpu.upload("w", &w)?;
    drop(wt);
    for m in [1usize, 8] {
        let x = filled(m * k, 4);
        let xb = gpu.upload("x", &x)?;
        let yb = gpu.create_buffer("y", (m * nn * 4) as u64)?;
        let flops = 2.0 * (m * k * nn) as f64;
        let bytes = (k * nn * 4) as f64;
        let mut layouts = vec![BLayout::Transposed];
        if sweep {
            layouts.push(BLayout::RowMajor);
        }
        for layout in layouts {
            let mut tiles = vec![RowTile::gemv(m as u32)];
            if sweep {
                for (cols, wg) in [(1, 64), (2, 32), (4, 64), (1, 256), (2, 128)] {
                    tiles.push(RowTile {
                        rows: m as u32,
                        cols,
                        workgroup: wg,
                        unroll: 4,
                    });
                }
            }
            for tile in tiles {
                let mut cfg = MatmulConfig::gemv(m as u32, nn as u32, k as u32, &lim, align)?;
                cfg.variant = MatmulVariant::RowBlocked(tile);
                cfg.b_layout = layout;
                let (stored_rows, row_bytes) = match layout {
                    BLayout::Transposed => (nn, k * 4),
                    BLayout::RowMajor => (k, nn * 4),
                };
                let row_align = if layout == BLayout::Transposed {
                    tile.workgroup * tile.cols
                } else {
                    1
                };
                cfg.b_split = WeightSplit::plan(
                    stored_rows as u32,
                    row_bytes as u64,
                    lim.max_storage_buffer_binding_size,
                    row_align,
                    align,
                )?;
                let kern = matmul(&cfg)?;
                // SAFETY: x, the weight parts and y match the kernel's shapes.
                let pipeline = unsafe { gpu.pipeline_trusted(&kern)? };
                let wbuf: &GpuBuffer = if layout == BLayout::Transposed {
                    &wtb
                } else {
                    &wb
                };
                let mut buffers = vec![xb.view()];
                for p in 0..cfg.b_split.parts {
                    let (r0, rn) = cfg.b_split.part_rows(stored_rows as u32, p);
                    buffers.push(wbuf.slice(
                        u64::from(r0) * row_bytes as u64,
                        u64::from(rn) * row_bytes as u64,
                    ));
                }
                buffers.push(yb.view());
                let case = Case {
                    pipeline,
                    buffers,
                    sizes: vec![("m", m as u32)],
                };
                let (med, _) = run_case(&gpu, &case, 5)?;
                println!(
                    "  seam M={m} {:<30} parts {} {:6.2} GFLOP/s {:6.2} GB/s (median {:7.2} ms)",
                    kern.name,
                    cfg.b_split.parts,
                    gflops(flops, med),
                    bytes / med.as_secs_f64() / 1e9,
                    med.as_secs_f64() * 1e3
                );
            }
        }
        let mut y = vec![0f32; m * nn];
        let (med, _) = time(5, || {
            sgemm(&x, &w, &mut y, m, k, nn);
            Ok(())
        })?;
        println!(
            "  native M={m} matrixmultiply::sgemm             {:6.2} GFLOP/s {:6.2} GB/s (median {:7.2} ms)",
            gflops(flops, med),
            bytes / med.as_secs_f64() / 1e9,
            med.as_secs_f64() * 1e3
        );
    }
    drop((wtb, wb));

    // ---- dispatch and submit overhead ----
    println!("\n== overhead ==");
    let mut cfg = MatmulConfig::new(Dim::Dynamic, Dim::Dynamic, Dim::Dynamic, &lim);
    cfg.variant = MatmulVariant::RowBlocked(RowTile {
        rows: 1,
        cols: 1,
        workgroup: 1,
        unroll: 1,
    });
    let tiny = gpu.pipeline(&matmul(&cfg)?)?;
    let one = gpu.upload("one", &[1.0f32])?;
    let o1 = gpu.create_buffer("o1", 4)?;
    let sizes = [("m", 1u32), ("n", 1), ("k", 1)];
    let views = [one.view(), one.view(), o1.view()];
    let mut per = Vec::new();
    for count in [1usize, 101] {
        let mut b = gpu.batch();
        for _ in 0..count {
            b.dispatch(&tiny, &views, &sizes)?;
        }
        let rec = b.finish()?;
        let (med, _) = time(20, || Ok(gpu.run(&rec)?))?;
        per.push(med);
    }
    let per_dispatch = (per[1].saturating_sub(per[0])).as_secs_f64() / 100.0;
    println!(
        "  submit + wait (1 dispatch): {:7.1} us; per extra dispatch in one pass: {:6.1} us",
        per[0].as_secs_f64() * 1e6,
        per_dispatch * 1e6
    );
    Ok(())
}

fn sgemm(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    // SAFETY: a is m×k, b is k×n and c is m×n, all row-major and in bounds.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}
