//! Kernel throughput on the current device next to a native CPU sgemm, in one run.
//!
//! `cargo bench -p seam-runtime --bench kernels` prints:
//! - matmul 1024³ GFLOP/s for the device's chosen variant (and, with
//!   `SEAM_BENCH_SWEEP=1`, a sweep of row-blocked tiles and the tiled variant);
//! - GEMV GFLOP/s and GB/s at M = 1 and M = 8 with K = 4096, N = 11008 (a 180 MB
//!   f32 weight, over lavapipe's 128 MiB binding limit: stored transposed and
//!   bound as two sub-ranges of one buffer);
//! - `matrixmultiply::sgemm` on the same shapes;
//! - dispatch and submit overhead;
//! - first, the host's memory bandwidth (copy, and reads by 1 and 2 threads)
//!   and GEMV (M = 1) with the weight in every `WeightFormat` (`quant_matmul`)
//!   at K = 4096, N = 11008 and SmolLM2's K = 576, N = 1536 and K = 1536,
//!   N = 576, in GB/s of the weight's ggml bytes (what a decode step streams);
//!   `SEAM_BENCH_QUANT_ONLY=1` stops after them, `SEAM_BENCH_SWEEP=1` also
//!   times the tiles `QuantTile::for_device` was chosen from.
//!
//! Set `WGPU_BACKEND` to choose the back end (Vulkan by default).
//!
//! Measured on the 2-core AMD EPYC (AVX2) development machine, lavapipe from
//! Mesa 25.0.7 (bookworm-backports, LLVM 15), while other builds shared the CPUs
//! (load average 3–7, so wall-clock numbers vary ±2×; "per CPU-second" divides by
//! the process's CPU time and is steadier):
//!
//! | case | seam | native `matrixmultiply` |
//! | --- | --- | --- |
//! | matmul 1024³, b transposed (`sg16x2`) | 13.9–14.8 GFLOP/s (7.1 per CPU-s) | 49 GFLOP/s (busy machine) |
//! | matmul 1024³, b row-major (`sg8x1`) | 5.8 GFLOP/s (5.8–8.2 per CPU-s) | |
//! | GEMV M=1, K=4096, N=11008, 2 parts | 48.7 ms, 3.7 GB/s | 62 ms (its M=1 path packs b) |
//! | GEMV M=8 | 122.9 ms, 5.9 GFLOP/s | 52.9 ms, 13.6 GFLOP/s |
//! | scalar row-blocked / shared-memory tiled 1024³ | 1.2–1.5 / 1.0 GFLOP/s | |
//!
//! Quantized GEMV, M = 1, the device's tile (one invocation per column, `a`
//! shared by subgroup broadcasts), in GB/s of ggml weight bytes; in the same
//! run the host read 4.1 GB/s (memcpy 4.5 GB/s) and the f32 GEMV above
//! (K = 4096, N = 11008) took 84 ms, 2.15 GB/s (load average ~15 from other
//! builds, so ±30% between runs):
//!
//! | format | K=4096 N=11008 | K=576 N=1536 | K=1536 N=576 |
//! | --- | --- | --- | --- |
//! | f32 | over the binding limit | 2.56 | 2.70 |
//! | f16 | 88 ms, 1.02 | 2.15 | 2.04 |
//! | bf16 | 70 ms, 1.29 | 2.30 | 2.55 |
//! | q8_0 | 37 ms, 1.28 | 1.96 | 1.88 |
//! | q4_0 | 32 ms, 0.78 | 1.42 | 1.46 |
//! | q4_1 | 37 ms, 0.75 | 1.58 | 1.66 |
//! | q4_k | 39 ms, 0.65 | — | 1.21 |
//!
//! So a q4_0 token step is 2.6× faster than f32's, but at 19–31% of the read
//! bandwidth, not the 50% aimed at: lavapipe runs every storage load as a
//! per-lane loop, so loads, not bytes, set the speed. Since then rows are
//! padded to whole `vec4`s (every format is read 16 bytes at a time), the
//! scales of 8 blocks are one load, and on a CPU each invocation computes 4
//! columns sharing its loads of `a` (`QuantTile::for_device` has the sweep's
//! numbers). The ceiling the loads leave: a kernel that only XORs the q4_0
//! weight's `vec4`s, one row per invocation, streamed 5.1 GB/s on the same
//! machine (30% of the 2-thread read bandwidth), so the GEMV cannot reach
//! 50% on this Mesa with storage buffers.
//!
//! Overhead: submit + wait ≈ 140 µs, each extra dispatch in one pass ≈ 26–39 µs,
//! recording ≈ 15 µs per dispatch.

use std::time::{Duration, Instant};

use seam_core::quant::{pack_rows, quantize};
use seam_runtime::device::{BufferView, DeviceOptions, Gpu, KernelPipeline};
use seam_shaders::{
    matmul, quant_matmul, BLayout, DeviceLimits, Dim, MatmulConfig, MatmulVariant,
    QuantMatmulConfig, QuantTile, RowTile, SubgroupTile, TiledTile, WeightFormat, WeightSplit,
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

struct Timing {
    median: Duration,
    /// Process CPU seconds per run (all threads): throughput per core, which a
    /// busy shared machine disturbs less than wall time.
    cpu_per_run: f64,
    /// Pipeline creation plus the first run (lavapipe compiles lazily).
    first: Duration,
}

fn run_case(gpu: &Gpu, c: &Case<'_>, reps: usize, created: Instant) -> Res<Timing> {
    let mut b = gpu.batch();
    b.dispatch(&c.pipeline, &c.buffers, &c.sizes)?;
    let rec = b.finish()?;
    gpu.run(&rec)?;
    let first = created.elapsed();
    let (median, cpu_per_run) = time_cpu(reps, || Ok(gpu.run(&rec)?))?;
    Ok(Timing {
        median,
        cpu_per_run,
        first,
    })
}

/// Like [`time`], also returning the process CPU seconds per run.
fn time_cpu(reps: usize, mut f: impl FnMut() -> Res<()>) -> Res<(Duration, f64)> {
    let c0 = cpu_secs();
    let (med, _) = time(reps, &mut f)?;
    let cpu = (cpu_secs() - c0) / (reps + 1) as f64;
    Ok((med, cpu.max(1e-9)))
}

/// User + system CPU time of this process in seconds (Linux; 0 elsewhere).
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn transpose(x: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut t = vec![0f32; r * c];
    for i in 0..r {
        for j in 0..c {
            t[j * r + i] = x[i * c + j];
        }
    }
    t
}

fn main() -> Res<()> {
    let opts = DeviceOptions {
        backends: seam_runtime::device::wgpu::Backends::VULKAN,
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
    memory_bandwidth();
    quant_gemv(&gpu, &lim, sweep)?;
    if std::env::var("SEAM_BENCH_QUANT_ONLY").is_ok_and(|v| v == "1") {
        return Ok(());
    }

    // ---- matmul 1024^3 ----
    let n = 1024usize;
    let a = filled(n * n, 1);
    let b = filled(n * n, 2);
    let bt = transpose(&b, n, n);
    let ab = gpu.upload("a", &a)?;
    let bb = gpu.upload("b", &b)?;
    let btb = gpu.upload("b_t", &bt)?;
    let ob = gpu.create_buffer("out", (n * n * 4) as u64)?;
    let flops = 2.0 * (n * n * n) as f64;
    println!("\n== matmul {n}x{n}x{n} f32 (seam: K, N fixed; M dynamic) ==");
    let nd = Dim::Fixed(n as u32);
    let base = MatmulConfig::new(Dim::Dynamic, nd, nd, &lim);
    // (config, trusted)
    let mut cases = vec![
        (base.clone().with_layout(BLayout::Transposed, &lim), true),
        (base.clone().with_layout(BLayout::Transposed, &lim), false),
        (base.clone(), true),
    ];
    if sweep {
        let sg = lim.subgroup_size.unwrap_or(8);
        for (rows, cols, layout) in [
            (sg, 1, BLayout::Transposed),
            (sg, 2, BLayout::Transposed),
            (2 * sg, 1, BLayout::Transposed),
            (4 * sg, 1, BLayout::Transposed),
            (sg, 2, BLayout::RowMajor),
            (2 * sg, 1, BLayout::RowMajor),
        ] {
            let mut c = base.clone().with_layout(layout, &lim);
            c.variant = MatmulVariant::SubgroupBlocked(SubgroupTile {
                rows,
                cols,
                subgroup: sg,
                workgroup: 8 * sg,
            });
            cases.push((c, true));
        }
        for layout in [BLayout::RowMajor, BLayout::Transposed] {
            let mut c = base.clone().with_layout(layout, &lim);
            c.variant = MatmulVariant::RowBlocked(RowTile::large());
            cases.push((c.clone(), true));
            c.variant = MatmulVariant::Tiled(TiledTile::default());
            cases.push((c, true));
        }
    }
    for (cfg, trusted) in cases {
        let kern = matmul(&cfg)?;
        let t0 = Instant::now();
        let pipeline = if trusted {
            // SAFETY: the buffers below hold exactly m·k, k·n and m·n floats.
            unsafe { gpu.pipeline_trusted(&kern)? }
        } else {
            gpu.pipeline(&kern)?
        };
        let wb = if cfg.b_layout == BLayout::Transposed {
            &btb
        } else {
            &bb
        };
        let case = Case {
            pipeline,
            buffers: vec![ab.view(), wb.view(), ob.view()],
            sizes: vec![("m", n as u32)],
        };
        let r = run_case(&gpu, &case, 5, t0)?;
        println!(
            "  seam {:<26} b {:<10} {:<9} {:6.2} GFLOP/s  (median {:6.1} ms; {:5.2} GFLOP per CPU-s; first run {:5.0} ms)",
            kern.name,
            format!("{:?}", cfg.b_layout),
            if trusted { "unchecked" } else { "checked" },
            gflops(flops, r.median),
            r.median.as_secs_f64() * 1e3,
            flops / r.cpu_per_run / 1e9,
            r.first.as_secs_f64() * 1e3
        );
    }
    let mut c = vec![0f32; n * n];
    let (med, cpu) = time_cpu(5, || {
        sgemm(&a, &b, &mut c, n, n, n);
        Ok(())
    })?;
    println!(
        "  native matrixmultiply::sgemm                                {:6.2} GFLOP/s  (median {:6.1} ms; {:5.2} GFLOP per CPU-s)",
        gflops(flops, med),
        med.as_secs_f64() * 1e3,
        flops / cpu / 1e9
    );
    drop((ab, bb, btb, ob));

    // ---- GEMV K=4096, N=11008 ----
    let (k, nn) = (4096usize, 11008usize);
    println!(
        "\n== GEMV K={k} N={nn} f32 (weight {} MB > {} MiB binding limit: split) ==",
        k * nn * 4 / 1_000_000,
        lim.max_storage_buffer_binding_size >> 20
    );
    let w = filled(k * nn, 3); // [K, N] row-major (the IR layout)
    let wt = transpose(&w, k, nn); // [N, K]
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
        let mut cfgs = vec![MatmulConfig::gemv(
            m as u32, nn as u32, k as u32, &lim, align,
        )?];
        if sweep {
            // The row-major weight, split along K, with the large-product variant.
            let mut c = MatmulConfig::new(
                Dim::Dynamic,
                Dim::Fixed(nn as u32),
                Dim::Fixed(k as u32),
                &lim,
            );
            c.b_split = WeightSplit::plan(
                k as u32,
                (nn * 4) as u64,
                lim.max_storage_buffer_binding_size,
                4,
                align,
            )?;
            cfgs.push(c);
        }
        for cfg in cfgs {
            let kern = matmul(&cfg)?;
            let t0 = Instant::now();
            // SAFETY: x, the weight parts and y match the kernel's shapes.
            let pipeline = unsafe { gpu.pipeline_trusted(&kern)? };
            let (wbuf, stored_rows, row_bytes) = match cfg.b_layout {
                BLayout::Transposed => (&wtb, nn, k * 4),
                BLayout::RowMajor => (&wb, k, nn * 4),
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
            let r = run_case(&gpu, &case, 5, t0)?;
            println!(
                "  seam M={m} {:<26} {} parts {:6.2} GFLOP/s {:6.2} GB/s (median {:7.2} ms; {:5.2} GFLOP per CPU-s)",
                kern.name,
                cfg.b_split.parts,
                gflops(flops, r.median),
                bytes / r.median.as_secs_f64() / 1e9,
                r.median.as_secs_f64() * 1e3,
                flops / r.cpu_per_run / 1e9
            );
        }
        let mut y = vec![0f32; m * nn];
        let (med, cpu) = time_cpu(5, || {
            sgemm(&x, &w, &mut y, m, k, nn);
            Ok(())
        })?;
        println!(
            "  native M={m} matrixmultiply::sgemm                 {:6.2} GFLOP/s {:6.2} GB/s (median {:7.2} ms; {:5.2} GFLOP per CPU-s)",
            gflops(flops, med),
            bytes / med.as_secs_f64() / 1e9,
            med.as_secs_f64() * 1e3,
            flops / cpu / 1e9
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
    // Recording cost: building a batch of 100 dispatches (bind groups, params).
    let t0 = Instant::now();
    let mut b = gpu.batch();
    for _ in 0..100 {
        b.dispatch(&tiny, &views, &sizes)?;
    }
    let rec = b.finish()?;
    let record = t0.elapsed().as_secs_f64() / 100.0;
    drop(rec);
    println!(
        "  submit + wait, 1 dispatch: {:7.1} us; each extra dispatch in the same pass: {:6.1} us; recording: {:5.1} us per dispatch",
        per[0].as_secs_f64() * 1e6,
        per_dispatch * 1e6,
        record * 1e6
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

/// The host's memory bandwidth, for the roofline: a 256 MiB copy, and a read
/// of 256 MiB summed by one thread and by two.
fn memory_bandwidth() {
    let words = 32usize << 20;
    let src: Vec<u64> = (0..words as u64).collect();
    let mut dst = vec![0u64; words];
    let bytes = (words * 8) as f64;
    let (copy, _) = time(5, || {
        dst.copy_from_slice(&src);
        Ok(())
    })
    .unwrap_or_default();
    let read = |threads: usize| {
        time(5, || {
            let parts = src.chunks(words.div_ceil(threads));
            let sum: u64 = std::thread::scope(|s| {
                let hs: Vec<_> = parts
                    .map(|p| s.spawn(move || p.iter().fold(0u64, |a, &x| a.wrapping_add(x))))
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap_or(0)).sum()
            });
            std::hint::black_box(sum);
            Ok(())
        })
        .unwrap_or_default()
        .0
    };
    let (r1, r2) = (read(1), read(2));
    let gbs = |d: Duration| bytes / d.as_secs_f64().max(1e-9) / 1e9;
    println!(
        "\n== host memory (256 MiB) ==\n  memcpy {:6.2} GB/s copied; read {:6.2} GB/s (1 thread), {:6.2} GB/s (2 threads)",
        gbs(copy),
        gbs(r1),
        gbs(r2)
    );
    std::hint::black_box(&dst);
}

/// The tiles to time for one shape: the device's choice, and with `sweep`
/// the alternatives `QuantTile::for_device` was chosen from.
fn quant_tiles(lim: &DeviceLimits, format: WeightFormat, sweep: bool) -> Vec<QuantTile> {
    let mut tiles = vec![QuantTile::for_device(lim, format, 1)];
    if sweep {
        let sg = lim.subgroup_size;
        for (threads, cols, col_reps, subgroup) in [
            (1, 64, 1, sg),
            (1, 64, 2, sg),
            (1, 64, 8, sg),
            (1, 32, 4, sg),
            (1, 128, 4, sg),
            (1, 64, 1, None),
            (sg.unwrap_or(8), 8, 1, sg),
            (sg.unwrap_or(8), 32, 1, sg),
            (4, 16, 1, sg),
            (32, 4, 1, None),
        ] {
            tiles.push(QuantTile {
                rows: 1,
                threads,
                cols,
                col_reps,
                one_row_reps: 1,
                subgroup,
            });
        }
    }
    tiles
}

/// GEMV (M = 1) with the weight in each format at K = 4096, N = 11008 and
/// SmolLM2's K = 576, N = 1536 and K = 1536, N = 576: GB/s of the weight's
/// ggml bytes streamed per token.
fn quant_gemv(gpu: &Gpu, lim: &DeviceLimits, sweep: bool) -> Res<()> {
    for (k, n) in [(4096usize, 11008usize), (576, 1536), (1536, 576)] {
        println!("\n== quantized GEMV M=1 K={k} N={n} (GB/s of ggml weight bytes) ==");
        let w = filled(k * n, 5); // row n holds output column n's K weights
        let x = filled(k, 6);
        let xb = gpu.upload("x", &x)?;
        let yb = gpu.create_buffer("y", (n * 4) as u64)?;
        for format in WeightFormat::ALL {
            if !format.fits(k as u64) {
                println!("  {format:<5} K={k} is not a whole number of blocks");
                continue;
            }
            let words = pack_rows(format, &quantize(format, &w)?, n as u64, k as u64)?;
            let ggml = format.ggml_row_bytes(k as u64).unwrap_or(0) as f64 * n as f64;
            if (words.len() * 4) as u64 > lim.max_storage_buffer_binding_size {
                println!(
                    "  {format:<5} weight over the binding limit (see the split f32 GEMV below)"
                );
                continue;
            }
            let wb = gpu.upload("w", &words)?;
            for tile in quant_tiles(lim, format, sweep) {
                let mut cfg = QuantMatmulConfig::new(
                    format,
                    (Dim::Dynamic, Dim::Fixed(n as u32), k as u32),
                    1,
                    lim,
                );
                cfg.tile = tile;
                let kern = quant_matmul(&cfg)?;
                let t0 = Instant::now();
                // SAFETY: x holds K floats, the weight N rows of row_words(K) words, y N floats.
                let pipeline = unsafe { gpu.pipeline_trusted(&kern)? };
                let case = Case {
                    pipeline,
                    buffers: vec![xb.view(), wb.view(), yb.view()],
                    sizes: vec![("m", 1)],
                };
                let r = run_case(gpu, &case, 9, t0)?;
                // Process CPU time is counted in 10 ms ticks: too coarse for short runs.
                let per_cpu = if r.cpu_per_run >= 0.02 {
                    format!("{:6.2} GB per CPU-s", ggml / r.cpu_per_run / 1e9)
                } else {
                    "CPU time under a tick".to_string()
                };
                println!(
                    "  {format:<5} {:<28} {:7.2} GB/s  (median {:7.3} ms; {per_cpu}; {:5.2} bits/weight)",
                    kern.name,
                    ggml / r.median.as_secs_f64() / 1e9,
                    r.median.as_secs_f64() * 1e3,
                    format.bits_per_weight()
                );
            }
        }
    }
    Ok(())
}
