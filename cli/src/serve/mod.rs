//! `seam serve`: an OpenAI-compatible HTTP server over a bundle.
//!
//! axum on a small tokio runtime answers HTTP; one dedicated thread
//! ([`engine_thread`]) owns the engine ([`backend::Backend`]) and does all
//! device work, so no tokio worker ever blocks on the GPU. The engine is the
//! runtime's batched [`seam_runtime::serving::Engine`] (continuous batching
//! over the bundle's `step` entry point); `--max-batch 1` serves one
//! sequence at a time.
//!
//! Under `mpirun` (a shard set, `seam` built with `--features mpi`) rank 0
//! serves as above, its engine broadcasting each run of its session; the
//! other ranks answer nothing and follow it ([`Engine::follow`]) until rank 0
//! stops.

mod args;
mod backend;
mod chat_template;
mod engine_thread;
mod errors;
mod job;
mod metrics;
mod openai;
mod routes;
mod routing_trace;
mod stream;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
mod text;

use std::io::Write;
use std::sync::Arc;

pub use args::{Schedule, ServeArgs};

use super::device::warming_up;
use super::ranks;
use super::tokenizer::TextTokenizer;
use super::CliError;
use chat_template::ChatTemplate;
use routes::{AppState, ModelInfo};
use routing_trace::{create_trace, TracedEngine};
use seam_runtime::serving::{Engine, EngineOptions, DEFAULT_MAX_SKIPS};

/// Runs `seam serve` until Ctrl-C or SIGTERM (under `mpirun`: rank 0
/// serves, the other ranks follow its engine until it stops).
pub fn run(args: &ServeArgs) -> Result<(), CliError> {
    super::eval::refuse_existing(args.routing_trace.as_deref(), args.force)?;
    ranks::refuse_routing_trace(args.routing_trace.as_deref())?;
    let (bundle, ranks) = ranks::open_bundle(&args.model.weights, &args.bundle)?;
    let origin = format!("embedded in `{}`", args.bundle.display());
    let tokenizer = bundle.tokenizer().ok_or_else(|| {
        CliError::Input(format!(
            "`{}` holds no tokenizer: compile from a checkpoint folder with a tokenizer.json \
             (or a GGUF file with tokenizer metadata) to serve it",
            args.bundle.display()
        ))
    })?;
    let tokenizer = Arc::new(TextTokenizer::parse(tokenizer, origin)?);
    let meta = bundle.generation().cloned().unwrap_or_default();
    let token_text = |id: Option<u32>| {
        id.and_then(|id| tokenizer.token_text(id))
            .unwrap_or_default()
    };
    let chat_template = meta
        .chat_template
        .map(|source| {
            ChatTemplate::new(
                source,
                token_text(meta.bos_token_id),
                token_text(meta.eos_token_ids.first().copied()),
            )
        })
        .transpose()
        .map_err(CliError::Input)?;
    let name = meta
        .model_name
        .unwrap_or_else(|| bundle.manifest().model.clone());
    let eos_ids = meta
        .eos_token_ids
        .iter()
        .filter_map(|&id| i32::try_from(id).ok())
        .collect();
    let rt = args.model.device.open()?;
    tracing::info!(adapter = %rt.gpu().adapter().name, "device opened");
    let model = args.model.load(&rt, bundle)?;
    let started = std::time::Instant::now();
    let options = EngineOptions {
        max_batch: args.max_batch.map(|n| n as usize),
        step_batch: args.step_batch.map(|n| n as usize),
        policy: args.schedule.policy(DEFAULT_MAX_SKIPS),
        replicate: ranks.is_some(),
        communicator: ranks.clone(),
        ..EngineOptions::default()
    };
    let mut backend = warming_up(|| Engine::new(&model, options))?;
    if !ranks::is_leader() {
        tracing::info!("following rank 0's engine");
        backend.follow()?;
        tracing::info!("rank 0 stopped serving");
        return Ok(());
    }
    // Rank 0 of several: the followers hear from it at least this often.
    let lead = ranks.map(|_| ranks::keep_alive_interval());
    let stats = backend.stats();
    let max_seq_len = stats.max_seq_len;
    tracing::info!(
        max_batch = stats.max_batch,
        step_batch = stats.step_batch,
        schedule = ?args.schedule,
        routed = backend.knows_routing(),
        max_seq_len,
        ready_ms = started.elapsed().as_millis() as u64,
        "engine ready (kernels compiled)"
    );
    let spawned = match &args.routing_trace {
        Some(path) => {
            let file = create_trace(path, args.force)?;
            engine_thread::spawn(TracedEngine::new(backend, file), lead)
        }
        None => engine_thread::spawn(backend, lead),
    };
    let (engine, thread) =
        spawned.map_err(|e| CliError::Input(format!("cannot start the engine thread: {e}")))?;
    let model = ModelInfo {
        name,
        tokenizer,
        chat_template,
        eos_ids,
        max_seq_len,
    };
    let state = Arc::new(AppState::new(model, engine, args.queue));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
        .map_err(|e| CliError::Input(format!("cannot start the async runtime: {e}")))?;
    let served = runtime.block_on(serve(args, state));
    drop(runtime);
    let ended = thread
        .join()
        .map_err(|_| CliError::Input("the engine thread panicked".into()))?;
    served?;
    Ok(ended?)
}

/// Listens on the address `args` give and serves until Ctrl-C or SIGTERM,
/// or until the engine thread ends (an engine error under `mpirun`).
async fn serve(args: &ServeArgs, state: Arc<AppState>) -> Result<(), CliError> {
    let cannot = |e: std::io::Error| {
        CliError::Input(format!("cannot listen on {}:{}: {e}", args.host, args.port))
    };
    let listener = tokio::net::TcpListener::bind((args.host, args.port))
        .await
        .map_err(cannot)?;
    let address = listener.local_addr().map_err(cannot)?;
    // Listen for Ctrl-C before saying where the server is, so a client that
    // reads the line and interrupts at once stops it cleanly.
    let interrupted =
        interrupted().map_err(|e| CliError::Input(format!("cannot listen for Ctrl-C: {e}")))?;
    let engine = state.engine.clone();
    println!("listening on http://{address}");
    let _ = std::io::stdout().flush();
    tracing::info!(%address, "serving");
    axum::serve(listener, routes::router(state))
        .with_graceful_shutdown(async move {
            tokio::select! {
                () = interrupted => tracing::info!("stopping: finishing the requests in flight"),
                () = engine.stopped() => tracing::error!("the engine stopped: the server stops"),
            }
        })
        .await
        .map_err(|e| CliError::Input(format!("the server failed: {e}")))
}

/// Resolves at Ctrl-C (SIGINT) or SIGTERM (what `mpirun` sends its ranks
/// when it is interrupted), caught from the moment this returns.
#[cfg(unix)]
fn interrupted() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupts = signal(SignalKind::interrupt())?;
    let mut terminations = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupts.recv() => {}
            _ = terminations.recv() => {}
        }
    })
}

/// Resolves at Ctrl-C.
#[cfg(not(unix))]
fn interrupted() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
