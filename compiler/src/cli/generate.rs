//! `seam generate`: prefill a prompt and decode tokens with a bundle's KV cache.

use std::path::PathBuf;

use clap::Args;
use seam_ir::Tensor;
use seam_runtime::bundle::BundleReader;
use seam_runtime::generate::{generate, Sampler, Sampling, PREFILL};

use super::device::DeviceArgs;
use super::eval::{refuse_existing, write_npy_file};
use super::CliError;

/// Arguments of `seam generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The bundle (`.seamb`), compiled from a model with a KV cache
    /// (`prefill` and `decode` entry points).
    pub bundle: PathBuf,
    /// The prompt's token ids, comma-separated: `1,2,3`.
    #[arg(long, value_name = "IDS", value_delimiter = ',', num_args = 1.., required = true)]
    pub prompt_ids: Vec<i64>,
    /// How many tokens to generate.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_new_tokens: usize,
    /// Sample at this temperature (above 0) instead of choosing greedily.
    #[arg(long, value_name = "T")]
    pub temperature: Option<f32>,
    /// Sample from the smallest set of tokens holding this much probability, in (0, 1].
    #[arg(long, value_name = "P")]
    pub top_p: Option<f32>,
    /// Seed of the sampler (with --temperature or --top-p).
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Write the prompt's logits `[n, vocab]` as f32 `.npy` to this path.
    #[arg(long, value_name = "PATH")]
    pub logits_out: Option<PathBuf>,
    /// Replace the `--logits-out` file if it exists.
    #[arg(long)]
    pub force: bool,
    /// The device.
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl GenerateArgs {
    /// The sampling the options ask for: greedy unless a temperature or top-p is given.
    fn sampling(&self) -> Result<Sampling, CliError> {
        if self.temperature.is_none() && self.top_p.is_none() {
            return Ok(Sampling::Greedy);
        }
        let sampling = Sampling::TopP {
            temperature: self.temperature.unwrap_or(1.0),
            top_p: self.top_p.unwrap_or(1.0),
            seed: self.seed,
        };
        sampling
            .validate()
            .map_err(|e| CliError::Usage(e.to_string()))?;
        Ok(sampling)
    }

    fn prompt(&self) -> Result<Vec<i32>, CliError> {
        self.prompt_ids
            .iter()
            .map(|&id| {
                i32::try_from(id)
                    .ok()
                    .filter(|&x| x >= 0)
                    .ok_or_else(|| CliError::Usage(format!("prompt id {id} is not a token id")))
            })
            .collect()
    }
}

/// Runs `seam generate`.
pub fn run(args: &GenerateArgs) -> Result<(), CliError> {
    refuse_existing(args.logits_out.as_deref(), args.force)?;
    let prompt = args.prompt()?;
    let mut sampler = Sampler::new(args.sampling()?).map_err(|e| CliError::Usage(e.to_string()))?;
    let bundle = BundleReader::open(&args.bundle).map_err(seam_runtime::RunError::from)?;
    if !bundle
        .manifest()
        .entry_points
        .iter()
        .any(|e| e.name == PREFILL && e.state_length.is_some())
    {
        return Err(CliError::Input(format!(
            "`{}` has no KV cache: compile a model built with one (prefill and decode entry points)",
            args.bundle.display()
        )));
    }
    let rt = args.device.open()?;
    println!(
        "device: {} ({:?})",
        rt.gpu().adapter().name,
        rt.gpu().adapter().backend
    );
    let model = rt.load_bundle(bundle)?;
    let mut session = model.session(PREFILL)?;
    let g = generate(&mut session, &prompt, args.max_new_tokens, &mut sampler)?;
    let ids: Vec<String> = g.tokens.iter().map(ToString::to_string).collect();
    println!("generated: {}", ids.join(","));
    println!(
        "prefill: {} tokens in {:.2} ms ({:.1} tokens/s)",
        prompt.len(),
        g.prefill_time.as_secs_f64() * 1e3,
        g.prefill_tokens_per_s()
    );
    match g.decode_tokens_per_s() {
        Some(rate) => println!(
            "decode: {} tokens in {:.2} ms ({rate:.1} tokens/s)",
            g.decode_steps,
            g.decode_time.as_secs_f64() * 1e3
        ),
        None => println!("decode: no steps"),
    }
    if let Some(path) = &args.logits_out {
        let t = &g.prefill_logits;
        let tensor =
            Tensor::f32(t.shape.clone(), t.to_f32()).map_err(|e| CliError::Input(e.to_string()))?;
        write_npy_file(path, &tensor, args.force)?;
    }
    Ok(())
}
