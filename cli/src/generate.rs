//! `seam generate`: prefill a prompt and decode tokens with a bundle's KV
//! cache — on the batched engine (the bundle's `step`, as `seam serve` runs
//! it) whenever the options allow, else on the single-sequence `prefill` and
//! `decode` entry points.

use std::path::PathBuf;

use clap::{ArgGroup, Args};

use crate::model_args::ModelArgs;
use seam_bundle::Bundle;
use seam_ir::Tensor;
use seam_runtime::generate::{
    generate_until, GenerateOptions, Generation, Sampler, Sampling, PREFILL,
};
use seam_runtime::serving::{complete_all, Completion, Engine, EngineOptions, Request, STEP};

use super::device::{warm_up, warming_up};
use super::eval::{refuse_existing, write_npy_file};
use super::tokenizer::{TextTokenizer, TOKENIZER_FILE};
use super::CliError;
use crate::experts::offload::expert_report;
use crate::experts::trace::{from_decisions, to_json_lines};
use crate::output::write_atomic;
use crate::ranks;

/// Arguments of `seam generate`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("input").required(true).args(["prompt", "prompt_ids"])))]
pub struct GenerateArgs {
    /// The bundle (`.seamb`), compiled from a model with a KV cache. It runs
    /// on the batched engine (the bundle's `step`, as `seam serve` does);
    /// --logits-out, --host-sampling and --max-new-tokens 0 use the
    /// single-sequence `prefill` and `decode` entry points.
    pub bundle: PathBuf,
    /// The prompt's token ids, comma-separated: `1,2,3`.
    #[arg(long, value_name = "IDS", value_delimiter = ',', num_args = 1..)]
    pub prompt_ids: Vec<i64>,
    /// The prompt as text, encoded with the bundle's tokenizer (embedded by
    /// `seam compile` from the checkpoint's tokenizer.json) or --tokenizer.
    #[arg(long, value_name = "TEXT")]
    pub prompt: Option<String>,
    /// A Hugging Face tokenizer.json to encode --prompt and decode the output
    /// with, instead of the one in the bundle.
    #[arg(long, value_name = "PATH")]
    pub tokenizer: Option<PathBuf>,
    /// How many tokens to generate. A count the bundle's KV cache cannot hold
    /// (prompt + N - 1 positions over its capacity) is refused, not clamped.
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
    /// Write every routing decision of the generation as JSON lines, one
    /// `{"step": s, "seq": q, "layer": l, "expert": e}` a line (the trace
    /// `seam cache-sim --trace` replays; `seq` is the request, 0 here). Runs
    /// on the batched engine only.
    #[arg(long, value_name = "PATH")]
    pub routing_trace: Option<PathBuf>,
    /// Replace the `--logits-out` or `--routing-trace` file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Pick each token on the host from read-back logits instead of on the
    /// device (the same ids; for comparison).
    #[arg(long)]
    pub host_sampling: bool,
    /// Decode past the model's end-of-sequence ids. By default generation
    /// stops after the first one (the ids `seam compile` stored in the
    /// bundle's generation metadata; see `seam inspect`).
    #[arg(long)]
    pub ignore_eos: bool,
    /// External weights, the device, the experts kept on it.
    #[command(flatten)]
    pub model: ModelArgs,
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

    /// The tokenizer: `--tokenizer`, else the bundle's own, else none.
    fn tokenizer(&self, bundle: &Bundle) -> Result<Option<TextTokenizer>, CliError> {
        if let Some(path) = &self.tokenizer {
            return Ok(Some(TextTokenizer::read(path)?.0));
        }
        bundle
            .tokenizer()
            .map(|json| {
                let origin = format!("embedded in `{}`", self.bundle.display());
                TextTokenizer::parse(json, origin)
            })
            .transpose()
    }

    /// The prompt's ids: `--prompt` encoded with `tokenizer`, or `--prompt-ids`.
    fn prompt(&self, tokenizer: Option<&TextTokenizer>) -> Result<Vec<i32>, CliError> {
        if let Some(text) = &self.prompt {
            let tokenizer = tokenizer.ok_or_else(|| {
                CliError::Usage(format!(
                    "--prompt needs a tokenizer and `{}` holds none: pass --tokenizer \
                     PATH/{TOKENIZER_FILE}, or compile from a checkpoint folder with a \
                     {TOKENIZER_FILE} beside its config.json (or use --prompt-ids)",
                    self.bundle.display()
                ))
            })?;
            return tokenizer.encode(text);
        }
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

/// The runtime's record of a generation, for a request the engine completed.
fn generation_of(done: Completion, prompt_tokens: usize) -> Generation {
    Generation {
        decode_steps: done.tokens.len().saturating_sub(1),
        decode_time: done.total.saturating_sub(done.first_token),
        tokens: done.tokens,
        prompt_tokens,
        prefill_logits: None,
        prefill_time: done.first_token,
    }
}

/// Runs `seam generate`.
pub fn run(args: &GenerateArgs) -> Result<(), CliError> {
    refuse_existing(args.logits_out.as_deref(), args.force)?;
    refuse_existing(args.routing_trace.as_deref(), args.force)?;
    ranks::refuse_routing_trace(args.routing_trace.as_deref())?;
    let sampling = args.sampling()?;
    let (bundle, ranks) = ranks::open_bundle(&args.model.weights, &args.bundle)?;
    let tokenizer = args.tokenizer(&bundle)?;
    let prompt = args.prompt(tokenizer.as_ref())?;
    let entries = &bundle.manifest().entry_points;
    // The batched engine runs every generation it can; the prompt's logits,
    // host sampling and a prefill alone need the single-sequence entries.
    let batched = entries.iter().any(|e| e.name == STEP)
        && args.logits_out.is_none()
        && !args.host_sampling
        && args.max_new_tokens > 0;
    if args.routing_trace.is_some() && !batched {
        return Err(CliError::Usage(
            "--routing-trace records the batched engine's steps: it needs a bundle with `step`, \
             and cannot go with --logits-out, --host-sampling or --max-new-tokens 0"
                .into(),
        ));
    }
    if !batched
        && !entries
            .iter()
            .any(|e| e.name == PREFILL && e.state_length.is_some())
    {
        return Err(CliError::Input(format!(
            "`{}` has no KV cache: compile a model built with one (`step`, or prefill and decode entry points)",
            args.bundle.display()
        )));
    }
    let rt = args.model.device.open()?;
    println!(
        "device: {} ({:?})",
        rt.gpu().adapter().name,
        rt.gpu().adapter().backend
    );
    if let Some(t) = tokenizer.as_ref().filter(|_| args.prompt.is_some()) {
        let ids: Vec<String> = prompt.iter().map(ToString::to_string).collect();
        println!("prompt: {} (tokenizer {})", ids.join(","), t.origin());
    }
    let stop_ids = stop_ids(&bundle, args.ignore_eos);
    let model = args.model.load(&rt, bundle)?;
    let (g, experts) = if batched {
        let request = Request {
            prompt: prompt.clone(),
            max_new_tokens: args.max_new_tokens,
            sampling,
            stop_ids: stop_ids.clone(),
        };
        let options = EngineOptions {
            max_batch: Some(1),
            communicator: ranks.clone(),
            ..EngineOptions::default()
        };
        let mut engine = warming_up(|| Engine::new(&model, options))?;
        let before = engine.stats().experts;
        engine.record_routing(args.routing_trace.is_some());
        let done = complete_all(&mut engine, 0, vec![request])?.remove(0);
        if let Some(path) = &args.routing_trace {
            let records = from_decisions(&engine.take_routing());
            write_atomic(path, to_json_lines(&records).as_bytes(), args.force)?;
            println!(
                "routing trace: {} decisions -> {}",
                records.len(),
                path.display()
            );
        }
        let g = generation_of(done, prompt.len());
        (g, (before, engine.stats().experts))
    } else {
        let mut session = model.session()?;
        if let Some(c) = ranks {
            session.set_communicator(c);
        }
        warm_up(&mut session)?;
        let before = session.expert_stats();
        let options = GenerateOptions {
            prefill_logits: args.logits_out.is_some(),
            host_sampling: args.host_sampling,
        };
        let mut sampler = Sampler::new(sampling).map_err(|e| CliError::Usage(e.to_string()))?;
        let g = generate_until(
            &mut session,
            &prompt,
            args.max_new_tokens,
            &mut sampler,
            options,
            &stop_ids,
        )?;
        (g, (before, session.expert_stats()))
    };
    let ids: Vec<String> = g.tokens.iter().map(ToString::to_string).collect();
    println!("generated: {}", ids.join(","));
    if let Some(eos) = g.tokens.last().filter(|t| stop_ids.contains(t)) {
        println!("stopped at end-of-sequence id {eos}");
    }
    if let Some(t) = &tokenizer {
        println!("text: {}", t.decode(&g.tokens)?);
    }
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
    let tokens = prompt.len() + g.tokens.len();
    if let Some(line) = expert_report(&model, experts.0, experts.1, tokens) {
        println!("{line}");
    }
    let logits = g.prefill_logits.as_ref().filter(|_| ranks::is_leader());
    if let Some((path, t)) = args.logits_out.as_ref().zip(logits) {
        let tensor = Tensor::f32(t.shape().to_vec(), t.to_f32())?;
        write_npy_file(path, &tensor, args.force)?;
    }
    Ok(())
}

/// The ids generation stops at: the bundle's end-of-sequence ids, unless ignored.
pub fn stop_ids(bundle: &Bundle, ignore_eos: bool) -> Vec<i32> {
    let eos = bundle.generation().map(|g| g.eos_token_ids.as_slice());
    if ignore_eos {
        return Vec::new();
    }
    eos.unwrap_or_default()
        .iter()
        .filter_map(|&id| i32::try_from(id).ok())
        .collect()
}
