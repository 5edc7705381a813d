//! The expert-access trace format: JSON lines, one access each,
//! `{"step": s, "seq": q, "layer": l, "expert": e}`, replayed in file order.
//! Reading is bounded (file size, line length, layer and expert numbers) and
//! every error names the line.

use std::io::Read;
use std::path::Path;

use seam_runtime::experts::ExpertKey;
use seam_runtime::serving::RoutingDecision;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The largest trace file read: 256 MiB.
pub const MAX_TRACE_BYTES: u64 = 256 << 20;
/// The longest line read, in bytes.
pub const MAX_LINE_BYTES: usize = 1024;
/// Layers are numbered below this.
pub const MAX_LAYERS: u32 = 4096;
/// The most accesses `seam trace-gen` and `seam trace-record` write.
pub const MAX_ACCESSES: u64 = 10_000_000;
/// Experts are numbered below this.
pub const MAX_EXPERTS: u32 = 65536;

/// One access of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceRecord {
    /// The decoding step (token position).
    pub step: u32,
    /// The sequence within the batch.
    pub seq: u32,
    /// The MoE layer.
    pub layer: u32,
    /// The expert the router chose.
    pub expert: u32,
}

impl TraceRecord {
    /// The access of sequence `seq` at `step` to `expert` of `layer`.
    pub fn new(step: u32, seq: u32, layer: u32, expert: u32) -> Self {
        TraceRecord {
            step,
            seq,
            layer,
            expert,
        }
    }

    /// The cache item this access needs.
    pub fn key(&self) -> ExpertKey {
        ExpertKey::new(self.layer, self.expert)
    }
}

/// Why a trace could not be read.
#[derive(Debug, Error)]
pub enum TraceError {
    /// The file could not be opened or read.
    #[error("cannot read trace `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_TRACE_BYTES`].
    #[error("trace `{path}` is larger than the {MAX_TRACE_BYTES} bytes allowed")]
    TooLarge {
        /// The file.
        path: String,
    },
    /// A line is not a valid access.
    #[error("{path}:{line}: {reason}")]
    Line {
        /// The file.
        path: String,
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The file holds no access.
    #[error("trace `{path}` holds no access")]
    Empty {
        /// The file.
        path: String,
    },
}

/// Reads the trace at `path`; blank lines are skipped.
pub fn read_trace(path: &Path) -> Result<Vec<TraceRecord>, TraceError> {
    let shown = path.display().to_string();
    let io = |source| TraceError::Io {
        path: shown.clone(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_TRACE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_TRACE_BYTES {
        return Err(TraceError::TooLarge { path: shown });
    }
    let mut records = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let at = |reason: String| TraceError::Line {
            path: shown.clone(),
            line: i + 1,
            reason,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        records.push(parse_line(line).map_err(at)?);
    }
    if records.is_empty() {
        return Err(TraceError::Empty { path: shown });
    }
    Ok(records)
}

/// One access from one line, checked against the limits.
fn parse_line(line: &[u8]) -> Result<TraceRecord, String> {
    if line.len() > MAX_LINE_BYTES {
        return Err(format!("the line is longer than {MAX_LINE_BYTES} bytes"));
    }
    let record: TraceRecord = serde_json::from_slice(line).map_err(|e| {
        let position = format!(" at line {} column {}", e.line(), e.column());
        let message = e.to_string();
        let message = message.strip_suffix(&position).unwrap_or(&message);
        format!("{message} (column {}); expected {{\"step\": s, \"seq\": q, \"layer\": l, \"expert\": e}}", e.column())
    })?;
    if record.layer >= MAX_LAYERS {
        return Err(format!("layer {} is not below {MAX_LAYERS}", record.layer));
    }
    if record.expert >= MAX_EXPERTS {
        return Err(format!(
            "expert {} is not below {MAX_EXPERTS}",
            record.expert
        ));
    }
    Ok(record)
}

/// The engine's routing decisions as trace records (the request id as the
/// sequence); ids outside the experts, which the kernels drop, are left out.
pub fn from_decisions(decisions: &[RoutingDecision]) -> Vec<TraceRecord> {
    decisions
        .iter()
        .filter_map(|d| {
            Some(TraceRecord::new(
                u32::try_from(d.step).ok()?,
                u32::try_from(d.request).ok()?,
                u32::try_from(d.layer).ok()?,
                u32::try_from(d.expert).ok().filter(|&e| e < MAX_EXPERTS)?,
            ))
        })
        .collect()
}

/// The trace as JSON lines, one access a line.
pub fn to_json_lines(records: &[TraceRecord]) -> String {
    let mut out = String::with_capacity(records.len() * 48);
    for r in records {
        out.push_str(&serde_json::to_string(r).expect("a record serialises"));
        out.push('\n');
    }
    out
}
