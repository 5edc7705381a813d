//! The command line of `seam serve`.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::model_args::ModelArgs;
use seam_runtime::serving::{ExpertAware, FirstComeFirstServed, SchedulePolicy};

/// Arguments of `seam serve`.
#[derive(Debug, Args)]
#[command(
    after_help = "Endpoints: POST /v1/completions, POST /v1/chat/completions \
(both with \"stream\": true for server-sent events), GET /v1/models, GET /health, \
GET /metrics (Prometheus).\n\
Example: curl http://127.0.0.1:8080/v1/completions -d '{\"prompt\": \"Hello\", \"max_tokens\": 8}'"
)]
pub struct ServeArgs {
    /// The bundle (`.seamb`): compiled from a model with a KV cache (its
    /// batched `step`), with a tokenizer (and, for chat, a chat template)
    /// embedded by `seam compile`.
    pub bundle: PathBuf,
    /// The address to listen on (loopback by default; 0.0.0.0 exposes the
    /// server to the network).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// The port; 0 picks a free one. The address is printed as
    /// `listening on http://HOST:PORT`.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The most sequences decoded together in one step (default: as many as
    /// the bundle's KV pools hold, `seam compile --max-batch`); 1 serves one
    /// sequence at a time.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_batch: Option<u64>,
    /// The most sequences one step feeds (default: `--max-batch`); below
    /// it, `--schedule` picks which of the running sequences go.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub step_batch: Option<u64>,
    /// How each step's batch is formed: `fcfs` feeds the longest running
    /// sequences first; `expert-aware` feeds those whose next tokens share
    /// experts (routed before the step by a pre-gating model's `route`; a
    /// sequence passed over 4 steps in a row goes first). Requests are
    /// admitted first come first served either way.
    #[arg(long, value_enum, default_value_t = Schedule::Fcfs)]
    pub schedule: Schedule,
    /// The most requests queued or running at once; more are answered 429
    /// with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub queue: u32,
    /// External weights, the device, the experts kept on it.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Append every step's routing decisions to this file as JSON lines, one
    /// `{"step": s, "seq": q, "layer": l, "expert": e}` a line (`seq` is the
    /// request; the trace `seam cache-sim --trace` replays).
    #[arg(long, value_name = "PATH")]
    pub routing_trace: Option<PathBuf>,
    /// Replace the --routing-trace file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// How `seam serve` forms each step's batch (`--schedule`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Schedule {
    /// First come first served.
    Fcfs,
    /// Fewest experts per step, no sequence passed over more than
    /// `max_skips` steps in a row (4 for `seam serve`).
    ExpertAware,
}

impl Schedule {
    /// The engine's policy; `expert-aware` passing a sequence over at most
    /// `max_skips` steps in a row.
    pub fn policy(self, max_skips: u32) -> Box<dyn SchedulePolicy> {
        match self {
            Schedule::Fcfs => Box::new(FirstComeFirstServed),
            Schedule::ExpertAware => Box::new(ExpertAware { max_skips }),
        }
    }

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Fcfs => "fcfs",
            Schedule::ExpertAware => "expert-aware",
        }
    }
}
