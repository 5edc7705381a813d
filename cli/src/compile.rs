//! `seam compile`: model file → bundle.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use seam_frontends::gguf::tokenizer::tokenizer_json;
use seam_frontends::hf::{ImportOptions, OriginLayout};
use seam_frontends::safetensors_weights::load_safetensors;
use seam_ir::text::print;
use seam_ir::Model;
use seam_shaders::Target as EmitTarget;

use super::device::DeviceArgs;
use super::eval::budgeted_random_weights;
use super::generation_meta;
use super::inspect::generation_summary;
use super::model_source::{counting_bar, load_source_with, ModelSource};
use super::output::write_atomic;
use super::tokenizer::{beside_checkpoint, TextTokenizer};
use super::CliError;
use seam_bundle::Packing;
use seam_compiler::compile::{compile, CompileError, CompileOptions, Compiled, ProgressHook};
use seam_compiler::emit::EmitError;
use seam_compiler::external::{ExternalOrigin, ExternalWeights};
use seam_compiler::formats::{FallbackReason, FormatReport, WeightPolicy};
use seam_compiler::lower::{Target, TargetKind};
use seam_compiler::optimize::OptLevel;
use seam_core::WeightFormat;

/// Arguments of `seam compile`.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// The model: a file in Seam's text format (`.seam`), a Hugging Face
    /// checkpoint folder (`config.json` + `*.safetensors`) or a GGUF file
    /// (`*.gguf`), which bring their weights.
    pub file: PathBuf,
    /// Where to write the bundle (`.seamb`).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// Fill every parameter with seeded random values (the same generator as `seam eval`).
    #[arg(long, value_name = "SEED", conflicts_with = "weights_file")]
    pub random_weights: Option<u64>,
    /// Read the parameters from a safetensors file, by name.
    #[arg(long, value_name = "FILE")]
    pub weights_file: Option<PathBuf>,
    /// Store product weights (attention and FFN projections) as `f32`, `f16`,
    /// `bf16`, `q8_0`, `q4_0`, `q4_1` or `q4_k` (ggml's block formats; a
    /// decode step streams 32, 16, 8.5, 4.5, 5 or 4.5 bits per weight). Stay
    /// higher precision by default: embedding tables, norms and biases (f32,
    /// always), routers (f32: --router-weights), and with a 4-bit format the LM
    /// head (q8_0: --lm-head-weights). A weight whose input size is not a
    /// multiple of the block falls back (q4_k → q4_1, 32-blocks → f16; the
    /// summary lists them), and the per-modality stacks of `grouped_matmul`
    /// stay f32 (no block-format kernel yet). Without this flag weights keep the format they came
    /// in (a GGUF file's blocks; f32 otherwise).
    #[arg(long, value_name = "FORMAT")]
    pub weights: Option<WeightFormat>,
    /// The LM head's format (default: see --weights).
    #[arg(long, value_name = "FORMAT", requires = "weights")]
    pub lm_head_weights: Option<WeightFormat>,
    /// Routers' format (default f32).
    #[arg(long, value_name = "FORMAT", requires = "weights")]
    pub router_weights: Option<WeightFormat>,
    /// Where a checkpoint folder's weights go: `copy` puts every weight in the
    /// bundle; `external` makes the bundle reference the checkpoint's
    /// safetensors files (by path relative to the bundle's folder, length and
    /// CRC-32) for every weight that is byte for byte a range of one (f32
    /// tensors, packed as stored); the rest (converted f16/bf16, folded or
    /// re-laid-out weights) is still copied. The bundle then loads only beside
    /// an unchanged checkpoint.
    #[arg(long, value_enum, default_value_t = WeightStorage::Copy, value_name = "MODE")]
    pub weight_storage: WeightStorage,
    /// The device kernels are specialised for: `local` (this machine's default
    /// adapter), `lavapipe` (CPU), or `gpu` (a discrete GPU).
    #[arg(long, default_value = "local", value_name = "TARGET")]
    pub target: TargetKind,
    /// Optimization level: 0 (op-by-op lowering), 1 (e-graph fusion rules), 2 (all
    /// rules: also router batching and communication scheduling).
    #[arg(short = 'O', default_value_t = OptLevel::O2, value_name = "LEVEL")]
    pub opt_level: OptLevel,
    /// Print what the optimizer did (rules fired, e-graph size, estimated cost).
    #[arg(long)]
    pub explain: bool,
    /// Also write FORMAT into DIR: every kernel as `wgsl`, `spirv`, `msl` or
    /// `hlsl`, or the model in the text format as the optimizer saw it
    /// (`ir-before`) and as it left it (`ir-after`). Repeatable.
    #[arg(long, num_args = 2, value_names = ["FORMAT", "DIR"])]
    pub emit: Vec<String>,
    /// The most positions the KV cache holds (the bound of the states' length
    /// dim), for text models built with one; a checkpoint folder is imported
    /// with a KV cache of this size (`prefill` and `decode`, for `seam generate`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_seq_len: Option<u64>,
    /// The most sequences a checkpoint imported with --max-seq-len decodes
    /// at once: the bundle's batched `step` (for `seam serve` and
    /// `seam generate`) keeps KV pools of this many slots of --max-seq-len
    /// positions each (device memory: slots × positions × layers × 2 × kv
    /// width × 4 bytes, allocated when the step first runs).
    #[arg(long, value_name = "B", default_value_t = DEFAULT_MAX_BATCH, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_batch: u64,
    /// Shard the model over N ranks (attention heads, FFN hidden units and
    /// MoE experts split as Megatron does; see docs/tensor-parallel.md) and
    /// write one bundle per rank, OUT with `.rankR` before its extension
    /// (`out.seamb` → `out.rank0.seamb`, …); run them together with
    /// `mpirun -np N seam run|generate OUT` (a `seam` built with `--features mpi`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub tensor_parallel: Option<u64>,
    /// Replace OUT (and files in the --emit DIR) if they exist.
    #[arg(long)]
    pub force: bool,
    /// The device used with `--target local`.
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// `--max-batch` when not given.
const DEFAULT_MAX_BATCH: u64 = 8;

/// Where `seam compile` puts a checkpoint's weights.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WeightStorage {
    /// Every weight in the bundle.
    Copy,
    /// Weights that are ranges of checkpoint files referenced, not copied.
    External,
}

/// What one `--emit FORMAT DIR` writes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum EmitFormat {
    /// Every kernel in a shading language.
    Kernels(EmitTarget),
    /// The model before optimization, in the text format.
    IrBefore,
    /// The model after optimization, in the text format.
    IrAfter,
}

fn emit_format(name: &str) -> Result<EmitFormat, CliError> {
    match name {
        "wgsl" => Ok(EmitFormat::Kernels(EmitTarget::Wgsl)),
        "spirv" => Ok(EmitFormat::Kernels(EmitTarget::Spirv)),
        "msl" => Ok(EmitFormat::Kernels(EmitTarget::Msl)),
        "hlsl" => Ok(EmitFormat::Kernels(EmitTarget::Hlsl)),
        "ir-before" => Ok(EmitFormat::IrBefore),
        "ir-after" => Ok(EmitFormat::IrAfter),
        other => Err(CliError::Usage(format!(
            "--emit format `{other}` is not one of wgsl, spirv, msl, hlsl, ir-before, ir-after"
        ))),
    }
}

fn create_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::Output {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })
}

/// Writes one `--emit` request.
fn emit(
    format: EmitFormat,
    dir: &Path,
    model: &Model,
    compiled: &Compiled,
    force: bool,
) -> Result<(), CliError> {
    create_dir(dir)?;
    let ir = |m: &Model, stage: &str| -> Result<(), CliError> {
        let path = dir.join(format!("{}.{stage}.seam", m.name));
        write_atomic(&path, print(m).as_bytes(), force)?;
        println!("wrote the model {stage} optimization to {}", path.display());
        Ok(())
    };
    match format {
        EmitFormat::IrBefore => ir(model, "before"),
        EmitFormat::IrAfter => ir(compiled.optimized.as_ref().unwrap_or(model), "after"),
        EmitFormat::Kernels(target) => {
            let bundle = &compiled.bundle;
            for (i, k) in bundle.manifest.kernels.iter().enumerate() {
                let kernel = k.with_source(bundle.kernel_source(i));
                let text = seam_shaders::emit(&kernel, target)?;
                let path = dir.join(format!("{i:03}_{}.{}", kernel.name, target.name()));
                write_atomic(&path, text.as_bytes(), force)?;
            }
            println!(
                "wrote {} kernels as {} to {}",
                bundle.manifest.kernels.len(),
                target.name(),
                dir.display()
            );
            Ok(())
        }
    }
}

/// Runs `seam compile`.
pub fn run(args: &CompileArgs) -> Result<(), CliError> {
    if args.emit.len() % 2 != 0 {
        return Err(CliError::Usage("--emit takes FORMAT DIR".into()));
    }
    let emits = args
        .emit
        .chunks(2)
        .map(|pair| Ok((emit_format(&pair[0])?, PathBuf::from(&pair[1]))))
        .collect::<Result<Vec<_>, CliError>>()?;
    let ranks = args.tensor_parallel.filter(|&n| n > 1).map(|n| n as usize);
    if let Some(n) = ranks {
        if !emits.is_empty() || args.weight_storage == WeightStorage::External {
            return Err(CliError::Usage(
                "--tensor-parallel writes one bundle per rank: it takes neither --emit nor --weight-storage external".into(),
            ));
        }
        super::compile_shards::refuse_existing_ranks(&args.output, n, args.force)?;
    } else if args.output.exists() && !args.force {
        return Err(CliError::Output {
            path: args.output.display().to_string(),
            reason: "the file exists (pass --force to replace it)".into(),
        });
    }
    // A checkpoint imported with --max-seq-len gets a KV cache of that size, and
    // its `tokens` dim (the prompt) the same bound: a longer prompt cannot fit
    // the cache, and buffers sized for `max_position_embeddings` tokens (logits
    // [32768, 32000] for Mixtral) exceed a device's binding limit.
    let import = ImportOptions {
        kv_cache: args.max_seq_len,
        max_tokens: args.max_seq_len,
        max_batch: Some(args.max_batch),
    };
    let mut source = load_source_with(&args.file, &import)?;
    if let Some(summary) = source.import_summary() {
        println!("{summary}");
    }
    if let Some(max) = args.max_seq_len {
        let dim = seam_ir::set_max_length(source.model_mut(), max).ok_or_else(|| {
            CliError::Usage(format!(
                "--max-seq-len applies to models with a KV cache (session states); `{}` has none",
                args.file.display()
            ))
        })?;
        tracing::info!(dim, max, "maximum sequence length set");
    }
    // A tokenizer.json beside the checkpoint travels in the bundle, for
    // `seam generate --prompt`; a malformed one stops the compile here.
    let tokenizer = match beside_checkpoint(&args.file) {
        Some(path) => {
            let (_, bytes) = TextTokenizer::read(&path)?;
            Some((path.display().to_string(), bytes))
        }
        None => gguf_tokenizer(&source),
    };
    let parsed = tokenizer
        .as_ref()
        .map(|(origin, bytes)| TextTokenizer::parse(bytes, origin.clone()))
        .transpose()?;
    let generation = generation_meta::read(&args.file, &source, parsed.as_ref())?;
    let model = source.model();
    let weights = match (source.weights(), &args.weights_file, args.random_weights) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(CliError::Usage(format!(
                "`{}` is a checkpoint folder or GGUF file with its own weights; drop --weights-file/--random-weights",
                args.file.display()
            )))
        }
        (Some(w), None, None) => w,
        (None, Some(path), _) => &load_safetensors(model, path)?,
        (None, None, Some(seed)) => &budgeted_random_weights(model, seed)?,
        (None, None, None) => {
            return Err(CliError::Usage(
                "give the weights: --weights-file FILE.safetensors or --random-weights SEED".into(),
            ))
        }
    };
    let target = match args.target {
        TargetKind::Lavapipe => Target::lavapipe(),
        TargetKind::Gpu => Target::gpu(),
        TargetKind::Local => match args.device.open() {
            Ok(rt) => Target::from_limits(rt.gpu().shader_limits()),
            Err(e) => {
                tracing::warn!("no local device ({e}); compiling for lavapipe");
                Target::lavapipe()
            }
        },
    };
    let started = std::time::Instant::now();
    let options = CompileOptions {
        external: match args.weight_storage {
            WeightStorage::Copy => None,
            WeightStorage::External => Some(external_weights(&source, &args.output)?),
        },
        weights: weight_policy(args),
        progress: Some(ProgressHook(Arc::new(counting_bar("encoding weights")))),
        ..CompileOptions::new(target, args.opt_level)
    };
    if let Some(n) = ranks {
        return super::compile_shards::compile_shard_set(
            model,
            weights,
            &options,
            n,
            &args.output,
            args.force,
            |bundle| {
                if let Some((_, bytes)) = &tokenizer {
                    bundle.set_tokenizer(bytes.clone());
                }
                if let Some(meta) = &generation {
                    bundle.set_generation(meta.clone());
                }
            },
        );
    }
    let mut compiled = compile(model, weights, &options)?;
    if let Some((origin, bytes)) = tokenizer {
        compiled.bundle.set_tokenizer(bytes);
        println!("embedding the tokenizer {origin}");
    }
    if let Some(meta) = generation {
        println!(
            "embedding generation metadata: {}",
            generation_summary(&meta)
        );
        compiled.bundle.set_generation(meta);
    }
    let compile_time = started.elapsed();
    print_formats(&compiled.formats);
    if args.explain {
        match &compiled.report {
            Some(r) => print!("{r}"),
            None => println!("optimizer not run at -O0"),
        }
    }
    for (format, dir) in &emits {
        emit(*format, dir, model, &compiled, args.force)?;
    }
    let bundle = &compiled.bundle;
    let bytes = bundle.to_bytes().map_err(seam_runtime::Error::from)?;
    write_atomic(&args.output, &bytes, args.force)?;
    let m = &bundle.manifest;
    let dispatches: Vec<String> = m
        .entry_points
        .iter()
        .map(|e| format!("{} {}", e.name, e.dispatches.len()))
        .collect();
    let external_bytes: u64 = m
        .weights
        .iter()
        .filter(|w| w.file.is_some())
        .map(|w| w.bytes)
        .sum();
    let storage = match args.weight_storage {
        WeightStorage::Copy => String::new(),
        WeightStorage::External => format!(
            " ({} embedded, {external_bytes} external in {} files)",
            m.stats.weight_bytes - external_bytes,
            m.external_files.len()
        ),
    };
    println!(
        "compiled {} in {:.0} ms: {} kernels, dispatches per call: {}, weights {} bytes{storage}, peak activations {} bytes -> {}",
        m.model,
        compile_time.as_secs_f64() * 1e3,
        m.kernels.len(),
        dispatches.join(", "),
        m.stats.weight_bytes,
        m.stats.peak_activation_bytes,
        args.output.display()
    );
    Ok(())
}

/// A GGUF file's tokenizer as a `tokenizer.json`, checked by parsing it; `None`
/// (with a warning) when the file has none or its kind is not supported, since
/// the bundle still runs from token ids.
fn gguf_tokenizer(source: &ModelSource) -> Option<(String, Vec<u8>)> {
    let ModelSource::Gguf(g) = source else {
        return None;
    };
    let vocab = g.vocab.as_ref()?;
    let converted = tokenizer_json(vocab)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            TextTokenizer::parse(&bytes, "the GGUF tokenizer".into())
                .map(|_| bytes)
                .map_err(|e| e.to_string())
        });
    match converted {
        Ok(bytes) => Some(("from the GGUF metadata".into(), bytes)),
        Err(e) => {
            eprintln!("warning: the GGUF's tokenizer is not embedded ({e}); `seam generate` will need --prompt-ids or --tokenizer");
            None
        }
    }
}

/// The weight formats `--weights`, `--lm-head-weights` and `--router-weights` ask for.
fn weight_policy(args: &CompileArgs) -> WeightPolicy {
    let Some(format) = args.weights else {
        return WeightPolicy::default();
    };
    let uniform = WeightPolicy::uniform(format);
    WeightPolicy {
        lm_head: args.lm_head_weights.or(uniform.lm_head),
        router: args.router_weights.or(uniform.router),
        ..uniform
    }
}

/// One line per weight format used, and the weights that fell back.
fn print_formats(report: &FormatReport) {
    let used: Vec<String> = report
        .by_format
        .iter()
        .map(|(f, (n, bytes))| format!("{f} {n} ({:.1} MB)", *bytes as f64 / 1e6))
        .collect();
    if !used.is_empty() {
        println!("product weights by format: {}", used.join(", "));
    }
    for f in &report.fallbacks {
        let why = match f.reason {
            FallbackReason::BlockSize => {
                format!("its input size does not fit {}'s blocks", f.asked)
            }
            FallbackReason::NoKernel => format!("grouped_matmul has no {} kernel yet", f.asked),
        };
        println!("  {}: stored as {} ({why})", f.param, f.used);
    }
}

/// The linker for `--weight-storage external`: the checkpoint's known f32
/// byte ranges, for a bundle written to `output`.
fn external_weights(source: &ModelSource, output: &Path) -> Result<ExternalWeights, CliError> {
    let ModelSource::Checkpoint(c) = source else {
        return Err(CliError::Usage(
            "--weight-storage external applies to checkpoint folders (their safetensors files are referenced)".into(),
        ));
    };
    let origins = c.model.params.iter().zip(&c.origins).filter_map(|(p, o)| {
        let o = o.as_ref()?;
        let packing = match o.layout {
            OriginLayout::AsIs => Packing::AsIs,
            OriginLayout::TransposedLast2 => Packing::TransposedLast2,
        };
        let origin = ExternalOrigin {
            file: o.file.clone(),
            offset: o.offset,
            bytes: o.bytes,
            packing,
        };
        Some((p.name.clone(), origin))
    });
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    ExternalWeights::new(dir, origins).map_err(|e| CompileError::from(EmitError::from(e)).into())
}
