//! Prints one of the MoE example models (or the ladder example) at other
//! sizes as IR text, for benchmarks that need a bigger model than the
//! checked-in examples:
//!
//! ```sh
//! cargo run --release -p seam-frontends --example moe_text -- \
//!     pregated_topk --d-model 512 --ffn 1408 --layers 8 --kv-cache 256 > big.seam
//! ```
//!
//! Models: `readme_moe`, `pregated_topk`, `mixtral_tiny`, `ladder_residual`
//! (`standard_residual`: the same with the standard residual). Options (each
//! followed by a number): `--d-model`, `--ffn` (each expert's, and the shared
//! expert's), `--layers`, `--experts`, `--vocab`, `--kv-cache` (positions;
//! adds `prefill`, `decode` and the batched `step`); the ladder models take
//! `--d-model`, `--ffn`, `--layers`, `--vocab` and `--heads`.

use std::process::ExitCode;

use seam_frontends::examples::{
    ladder_residual, mixtral_tiny, pregated_topk, readme_moe, MoeTransformerConfig,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let built = match args.first().map(String::as_str) {
        Some("ladder_residual" | "standard_residual") => ladder(args),
        _ => config(args).map(|c| c.build()),
    };
    match built {
        Ok(built) => match built {
            Ok(model) => {
                print!("{}", seam_ir::text::print(&model));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("error: {e}\nusage: moe_text readme_moe|pregated_topk|mixtral_tiny|ladder_residual|standard_residual [--d-model N] [--ffn N] [--layers N] [--experts N] [--vocab N] [--kv-cache N] [--heads N]");
            ExitCode::from(2)
        }
    }
}

/// The model the arguments name, resized as they ask.
fn config(args: Vec<String>) -> Result<MoeTransformerConfig, String> {
    let (name, options) = args.split_first().ok_or("name a model")?;
    let mut c = match name.as_str() {
        "readme_moe" => readme_moe(),
        "pregated_topk" => pregated_topk(),
        "mixtral_tiny" => mixtral_tiny(),
        other => return Err(format!("unknown model `{other}`")),
    };
    for (flag, n) in numeric_options(options)? {
        match flag {
            "--d-model" => c.d_model = n,
            "--ffn" => {
                c.ffn = n;
                c.shared_ffn = c.shared_ffn.map(|_| n);
            }
            "--layers" => c.layers = n as usize,
            "--experts" => c.experts = n,
            "--vocab" => c.vocab = n,
            "--kv-cache" => c = c.with_kv_cache(n),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(c)
}

/// The ladder example (or its standard-residual form), resized.
fn ladder(
    args: Vec<String>,
) -> Result<Result<seam_ir::Model, seam_frontends::builder::BuildError>, String> {
    let (name, options) = args.split_first().ok_or("name a model")?;
    let mut c = ladder_residual();
    if name == "standard_residual" {
        c.ladder = false;
        c.name = "standard_residual".into();
    }
    for (flag, n) in numeric_options(options)? {
        match flag {
            "--d-model" => c.d_model = n,
            "--ffn" => c.ffn = n,
            "--layers" => c.layers = n as usize,
            "--vocab" => c.vocab = n,
            "--heads" => c.heads = n,
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(c.build())
}

/// `--flag N` pairs, each N a number.
fn numeric_options(options: &[String]) -> Result<Vec<(&str, u64)>, String> {
    options
        .chunks(2)
        .map(|pair| {
            let [flag, value] = pair else {
                return Err(format!("`{}` needs a value", pair[0]));
            };
            let n = value
                .parse()
                .map_err(|_| format!("`{flag}` needs a number, not `{value}`"))?;
            Ok((flag.as_str(), n))
        })
        .collect()
}
