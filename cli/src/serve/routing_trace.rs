//! `seam serve --routing-trace`: an engine that appends each step's routing
//! decisions to a file as JSON lines (the trace `seam cache-sim` replays).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use seam_runtime::serving::{Engine, EngineStats, Request, RequestId, StepEvent};

use super::backend::Backend;
use crate::experts::trace::{from_decisions, to_json_lines};
use crate::output::write_atomic;
use crate::CliError;

/// Creates the trace file at `path`, empty (an existing one is replaced
/// only with `force`; a symlink or other non-file never), for appending.
pub fn create_trace(path: &Path, force: bool) -> Result<File, CliError> {
    write_atomic(path, b"", force)?;
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| CliError::Output {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

/// The engine, recording routing, and the file its decisions go to (`None`
/// once writing failed: serving goes on, the failure is logged once).
pub struct TracedEngine {
    engine: Engine,
    out: Option<BufWriter<File>>,
}

impl TracedEngine {
    /// `engine` recording its routing into `file` from its next step.
    pub fn new(mut engine: Engine, file: File) -> Self {
        engine.record_routing(true);
        TracedEngine {
            engine,
            out: Some(BufWriter::new(file)),
        }
    }
}

impl Backend for TracedEngine {
    fn submit(&mut self, id: RequestId, request: Request) -> Result<(), seam_runtime::Error> {
        self.engine.submit(id, request)
    }

    fn cancel(&mut self, id: RequestId) {
        self.engine.cancel(id)
    }

    fn step(&mut self) -> Result<Vec<StepEvent>, seam_runtime::Error> {
        let events = self.engine.step();
        let lines = to_json_lines(&from_decisions(&self.engine.take_routing()));
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = out.write_all(lines.as_bytes()).and_then(|()| out.flush()) {
                tracing::error!("writing the routing trace failed, recording stops: {e}");
                self.engine.record_routing(false);
                self.out = None;
            }
        }
        events
    }

    fn stats(&self) -> EngineStats {
        self.engine.stats()
    }

    fn is_idle(&self) -> bool {
        self.engine.is_idle()
    }

    fn keep_alive(&mut self) -> Result<(), seam_runtime::Error> {
        self.engine.keep_followers()
    }

    fn release(&mut self) -> Result<(), seam_runtime::Error> {
        self.engine.release_followers()
    }
}
