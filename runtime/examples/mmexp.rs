//! Matmul tile experiment: `SEAM_TILE=rows,cols,wg,unroll SEAM_N=1024 cargo run --release --example mmexp`.
use std::time::Instant;

use seam_runtime::{DeviceOptions, Gpu};
use seam_shaders::{matmul, BLayout, Dim, MatmulConfig, MatmulVariant, RowTile, SubgroupTile};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gpu = Gpu::new(&DeviceOptions {
        backends: seam_runtime::wgpu::Backends::VULKAN,
        ..Default::default()
    })?;
    let lim = gpu.shader_limits();
    let n: usize = std::env::var("SEAM_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let m: usize = std::env::var("SEAM_M")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    let kd: usize = std::env::var("SEAM_K")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    let reps: usize = std::env::var("SEAM_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let tiles = std::env::var("SEAM_TILE").unwrap_or("8,2,64,4".into());
    let bt = std::env::var("SEAM_BT").is_ok_and(|v| v == "1");
    let a = vec![0.5f32; m * kd];
    let b = vec![0.25f32; kd * n];
    let (ab, bb) = (gpu.upload("a", &a)?, gpu.upload("b", &b)?);
    let ob = gpu.create_buffer("o", (m * n * 4) as u64)?;
    for t in tiles.split(';') {
        let (sg, spec) = match t.strip_prefix("sg:") {
            Some(r) => (true, r),
            None => (false, t),
        };
        let v: Vec<u32> = spec.split(',').map(|x| x.trim().parse().unwrap()).collect();
        let mut cfg = MatmulConfig::new(
            Dim::Fixed(m as u32),
            Dim::Fixed(n as u32),
            Dim::Fixed(kd as u32),
            &lim,
        );
        cfg.variant = if sg {
            MatmulVariant::SubgroupBlocked(SubgroupTile {
                rows: v[0],
                cols: v[1],
                subgroup: 8,
                workgroup: v[2],
            })
        } else {
            MatmulVariant::RowBlocked(RowTile {
                rows: v[0],
                cols: v[1],
                workgroup: v[2],
                unroll: v[3],
            })
        };
        if bt {
            cfg.b_layout = BLayout::Transposed;
        }
        let k = matmul(&cfg)?;
        if let Err(e) = seam_shaders::validate(&k) {
            println!("{e}");
        }
        if std::env::var("SEAM_DUMP").is_ok() {
            println!("{}", k.wgsl);
        }
        let tc = Instant::now();
        let p = unsafe { gpu.pipeline_trusted(&k)? };
        println!(
            "{t}: pipeline {:.0} ms, {} WGSL lines",
            tc.elapsed().as_secs_f64() * 1e3,
            k.wgsl.lines().count()
        );
        let mut batch = gpu.batch();
        batch.dispatch(&p, &[ab.view(), bb.view(), ob.view()], &[])?;
        let rec = batch.finish()?;
        let tf = Instant::now();
        gpu.run(&rec)?;
        println!("{t}: first run {:.0} ms", tf.elapsed().as_secs_f64() * 1e3);
        let mut best = f64::MAX;
        let c0 = cpu_secs();
        for _ in 0..reps {
            let t0 = Instant::now();
            gpu.run(&rec)?;
            best = best.min(t0.elapsed().as_secs_f64());
        }
        let cpu = (cpu_secs() - c0) / reps as f64;
        let got: Vec<f32> = gpu.read_range(&ob, 0, 1)?;
        let fl = 2.0 * (m * n * kd) as f64;
        println!(
            "{t:>14}: {:6.2} GFLOP/s best ({:.1} ms), {:5.2} GFLOP per CPU-second, check {}",
            fl / best / 1e9,
            best * 1e3,
            fl / cpu / 1e9,
            got[0]
        );
    }
    Ok(())
}

/// User + system CPU time of this process (Linux), in seconds.
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}
