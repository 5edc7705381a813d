//! Optimizer time: the e-graph optimizer at `-O2` on the dense (per-expert
//! FFN) form of a 32-layer, 64-expert model, the bound being 2 s, and
//! on the examples. `cargo bench -p seam-compiler --bench optimize`

use std::time::Instant;

use seam_compiler::optimize::{optimize, OptLevel, OptimizeOptions};
use seam_frontends::examples::readme_moe;
use seam_ir::expand::expand_all_moe;
use seam_ir::Model;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Runs `-O2` on `model` `runs` times; prints the median and minimum time, the
/// last run's saturation time, the e-graph size and the instruction counts.
fn measure(label: &str, model: &Model, runs: usize) -> Res<()> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        let result = optimize(model, &OptimizeOptions::new(OptLevel::O2))?;
        times.push(started.elapsed().as_secs_f64());
        last = Some(result);
    }
    times.sort_by(f64::total_cmp);
    let (optimized, report) = last.ok_or("no run")?;
    let instrs = |m: &Model| m.functions.iter().map(|f| f.body.len()).sum::<usize>();
    println!(
        "{label:<30} {:>9.3} s {:>9.3} s {:>9.3} s {:>8} {:>8} {:>8}",
        times[times.len() / 2],
        times[0],
        report.saturation_time.as_secs_f64(),
        report.egraph_nodes,
        instrs(model),
        instrs(&optimized)
    );
    Ok(())
}

fn main() -> Res<()> {
    println!(
        "{:<30} {:>11} {:>11} {:>11} {:>8} {:>8} {:>8}",
        "model (-O2)", "median", "min", "saturating", "nodes", "instrs", "after"
    );
    for name in ["readme_moe", "mixtral_tiny", "pregated_topk"] {
        let path = format!("{}/../examples/{name}.seam", env!("CARGO_MANIFEST_DIR"));
        let (model, _) = seam_ir::text::parse_and_verify(&path, &std::fs::read_to_string(&path)?)?;
        measure(name, &model, 5)?;
        measure(
            &format!("{name} (dense experts)"),
            &expand_all_moe(&model)?,
            5,
        )?;
    }
    let mut config = readme_moe();
    config.layers = 32;
    config.experts = 64;
    let dense = expand_all_moe(&config.build()?)?;
    measure("32 layers x 64 experts", &dense, 3)?;
    Ok(())
}
