//! The `seam` command-line tool: argument parsing, logging set-up, exit codes.
//! Each subcommand lives in its own module; the compiler, frontends and runtime
//! libraries do the work. This crate is the only one that links clap,
//! tokenizers, indicatif, the logging subscriber and (for `seam serve`) the
//! HTTP stack.

mod bench;
mod check;
mod compile;
mod compile_shards;
mod device;
mod error;
mod eval;
mod experts;
mod generate;
mod generation_meta;
mod inputs;
mod inspect;
mod model_args;
mod model_source;
mod output;
mod ranks;
mod run;
mod sample;
mod serve;
mod serve_bench;
mod tensor_parallel;
mod tokenizer;
mod weight_dirs;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use error::CliError;

/// Seam: a GPU-native compiler for decoupled model architectures.
#[derive(Debug, Parser)]
#[command(name = "seam", version, about, long_about = None)]
#[command(
    after_help = "Set RUST_LOG=debug (or info, trace) for logs on stderr.\n\
Exit codes: 0 success, 1 a problem with the input, 2 a usage error."
)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and verify a model file; print a summary (params, parameter bytes, ops per kind);
    /// with --tensor-parallel N, shard it over N ranks and check the shard set.
    Check(check::CheckArgs),
    /// Evaluate a model on the CPU with the reference evaluator.
    Eval(eval::EvalArgs),
    /// Compile a model into a bundle (kernels, plan and weights in one file).
    Compile(compile::CompileArgs),
    /// Run a bundle on a device (lavapipe where there is no GPU).
    Run(run::RunArgs),
    /// Sample a diffusion bundle (DDT) with flow-matching Euler steps on the
    /// device, sharing its cached encoder output between steps.
    Sample(sample::SampleArgs),
    /// Generate tokens with a bundle's KV cache: prefill a prompt, then decode.
    Generate(generate::GenerateArgs),
    /// Serve a bundle over HTTP with an OpenAI-compatible API (completions,
    /// chat completions, streaming).
    Serve(serve::ServeArgs),
    /// Replay a seeded request trace through the serving engine; print the
    /// unique experts per step, tokens/s and p50/p95 latency of a schedule.
    ServeBench(serve_bench::ServeBenchArgs),
    /// Show what a bundle holds: sections, sizes, kernels, dispatches, peak memory.
    Inspect(inspect::InspectArgs),
    /// List the GPU adapters wgpu sees.
    Devices,
    /// Measure forward latency of bundles side by side (and where the time goes).
    Bench(bench::BenchArgs),
    /// Replay an expert-access trace through the expert cache (lru, belady,
    /// lookahead) at several capacities; print the hit ratios.
    CacheSim(experts::simulate::CacheSimArgs),
    /// Write a synthetic expert-access trace (Zipf experts, per-sequence locality).
    TraceGen(experts::synthetic::TraceGenArgs),
    /// Record an expert-access trace: run a model's routers with the reference
    /// evaluator over seeded random prompts.
    TraceRecord(experts::record::TraceRecordArgs),
}

/// Runs the tool and maps errors to exit codes (1: bad input, 2: usage).
fn main() -> ExitCode {
    restore_default_sigpipe();
    init_logging();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // Under mpirun (with the `mpi` feature) MPI lives until the command ends.
    let _ranks = ranks::init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", e.render().trim_end());
            // A failed rank under mpirun ends them all: none waits for it.
            ranks::abort_all(e.exit_code());
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs one parsed command.
fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Compile(args) => compile::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Sample(args) => sample::run(&args),
        Command::Generate(args) => generate::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::ServeBench(args) => serve_bench::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Devices => device::run(),
        Command::Bench(args) => bench::run(&args),
        Command::CacheSim(args) => experts::simulate::run(&args),
        Command::TraceGen(args) => experts::synthetic::run(&args),
        Command::TraceRecord(args) => experts::record::run(&args),
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    // wgpu-hal logs every backend it fails to probe (GL without a display, …) as
    // an error; the runtime reports real device errors itself, so by default
    // only `RUST_LOG=wgpu_hal=…` shows them.
    let filter =
        EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("warn,wgpu_hal=off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`seam inspect B | head`)
/// would panic; like other command-line tools, end quietly instead.
#[cfg(unix)]
fn restore_default_sigpipe() {
    // SAFETY: called first thing in `main`, before any other thread exists;
    // setting a signal's disposition to the default has no other effect.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_default_sigpipe() {}
