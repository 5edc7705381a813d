//! A minimal app embedding Seam: load a compiled bundle, run it on the default
//! device (lavapipe where there is no GPU), print the greedy next token.
//!
//! ```sh
//! seam compile examples/readme_moe.seam -o out/readme_moe.seamb --random-weights 7
//! cargo run -p seam-embed-example -- out/readme_moe.seamb 1 2 3 4
//! ```

use std::path::PathBuf;

use seam_runtime::{DeviceOptions, Entry, Error, HostTensor, Model, Runtime, Session};

/// What an app keeps: the loaded model, the entry point it runs (looked up
/// once) and a session (its buffers and states), side by side.
struct NextToken {
    model: Model,
    forward: Entry,
    session: Session,
}

impl NextToken {
    fn new(model: Model) -> Result<NextToken, Error> {
        Ok(NextToken {
            forward: model.entry("forward")?,
            session: model.session()?,
            model,
        })
    }

    /// The logits of `ids`, `[tokens, vocab]`.
    fn logits(&mut self, ids: &[i32]) -> Result<HostTensor, Box<dyn std::error::Error>> {
        let input = HostTensor::from_i32(vec![ids.len()], ids)?;
        let outputs = self.session.run(&self.forward, &[input])?;
        Ok(outputs
            .into_iter()
            .next()
            .ok_or("`forward` returns no logits")?)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    let mut app = NextToken::new(runtime.load(&bundle)?)?;

    let logits = app.logits(&ids)?;
    let vocab = *logits
        .shape()
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
        app.model.manifest().model,
        runtime.adapter().name
    );
    Ok(())
}
