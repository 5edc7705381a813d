//! A minimal app embedding Seam: load a compiled bundle, run it on the default
//! device (lavapipe where there is no GPU), print the greedy next token.
//!
//! ```sh
//! seam compile examples/readme_moe.seam -o out/readme_moe.seamb --random-weights 7
//! cargo run -p seam-embed-example -- out/readme_moe.seamb 1 2 3 4
//! ```

use std::error::Error;
use std::path::PathBuf;

use seam_runtime::{DeviceOptions, HostTensor, Runtime};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let bundle = PathBuf::from(
        args.next()
            .ok_or("usage: seam-embed-example BUNDLE TOKEN...")?,
    );
    let ids: Vec<i32> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Err("give at least one token id".into());
    }

    // Open a device once; load (and verify) the bundle once; run many times.
    let runtime = Runtime::new(&DeviceOptions::default())?;
    let model = runtime.load(&bundle)?;
    let mut session = model.session("forward")?;

    let logits = session.run(&[HostTensor::from_i32(vec![ids.len()], &ids)?])?;
    let logits = &logits[0];
    let vocab = *logits
        .shape
        .last()
        .ok_or("logits have no vocabulary axis")?;
    let last_row = &logits.to_f32()[(ids.len() - 1) * vocab..];
    let (next, score) =
        last_row
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                if v > best.1 {
                    (i, v)
                } else {
                    best
                }
            });
    println!(
        "{} on {}: next token {next} (logit {score:.4})",
        model.manifest().model,
        runtime.gpu().adapter().name
    );
    Ok(())
}
