//! `seam inspect`: what a bundle holds, verified, without touching a GPU.

use std::path::PathBuf;

use clap::Args;

use seam_bundle::GenerationMeta;

use super::weight_dirs::WeightDirArgs;
use super::CliError;

/// Arguments of `seam inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The bundle (`.seamb`).
    pub bundle: PathBuf,
    /// Also list every dispatch with its kernel and sizes.
    #[arg(long)]
    pub dispatches: bool,
    /// Folders external weight files may lie in.
    #[command(flatten)]
    pub weights: WeightDirArgs,
}

/// Runs `seam inspect`.
pub fn run(args: &InspectArgs) -> Result<(), CliError> {
    let bundle = args.weights.open(&args.bundle)?;
    let m = bundle.manifest();
    println!(
        "bundle {}: model {}, compiler {}, -O{}, {} bytes",
        args.bundle.display(),
        m.model,
        m.compiler_version,
        m.stats.opt_level,
        bundle.file_len()
    );
    for (kind, offset, len) in bundle.sections() {
        println!("  section {kind:<8} at {offset:>10}, {len:>10} bytes");
    }
    if let Some(g) = bundle.generation() {
        println!("  generation: {}", generation_summary(g));
    }
    for d in &m.dims {
        println!("  dim {} <= {}", d.name, d.max);
    }
    println!(
        "  weights: {} blobs, {} bytes; kernels: {}; buffers: {}; peak activation memory {} bytes",
        m.weights.len(),
        m.stats.weight_bytes,
        m.kernels.len(),
        m.buffers.len(),
        m.stats.peak_activation_bytes
    );
    println!("  weights by storage: {}", storage_summary(m));
    for (fi, f) in m.external_files.iter().enumerate() {
        let (count, bytes) = m
            .weights
            .iter()
            .filter(|w| w.file == Some(fi as u32))
            .fold((0, 0), |(n, b), w| (n + 1, b + w.bytes));
        println!(
            "  external file {} ({} bytes, CRC-32 {:08x}): {count} weights, {bytes} bytes",
            f.path, f.bytes, f.crc32
        );
    }
    if !m.states.is_empty() {
        let bytes: u64 = m
            .states
            .iter()
            .filter_map(|st| m.buffers[st.buffer as usize].bytes.as_const())
            .sum();
        println!(
            "  session states: {} ({} bytes at capacity), e.g. {}",
            m.states.len(),
            bytes,
            m.states[0].name
        );
    }
    for e in &m.entry_points {
        let io = |v: &[seam_bundle::IoEntry]| -> String {
            v.iter()
                .map(|i| {
                    let dims: Vec<String> = i.shape.iter().map(ToString::to_string).collect();
                    format!("%{}: {:?}[{}]", i.name, i.dtype, dims.join(", ")).to_lowercase()
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "  entry {}({}) -> ({}): {} dispatches per call, 1 submit",
            e.name,
            io(&e.inputs),
            io(&e.outputs),
            e.dispatches.len()
        );
        if let Some(l) = &e.state_length {
            println!(
                "    appends {} position(s) per call to {} states (length dim `{}`)",
                l.advance,
                e.states.len(),
                l.dim
            );
        }
        for (ci, c) in m.caches.iter().enumerate() {
            let skipped = e
                .dispatches
                .iter()
                .filter(|d| d.cache == Some(ci as u32))
                .count();
            if skipped > 0 {
                println!(
                    "    cache `{}` (recomputed every {} calls by default): {} dispatches when reused",
                    c.key,
                    c.refresh,
                    e.dispatches.len() - skipped
                );
            }
        }
        if args.dispatches {
            for (i, d) in e.dispatches.iter().enumerate() {
                let sizes: Vec<String> = d.sizes.iter().map(|(n, x)| format!("{n}={x}")).collect();
                let cache = d
                    .cache
                    .and_then(|c| m.caches.get(c as usize))
                    .map(|c| format!(" [cache {}]", c.key))
                    .unwrap_or_default();
                println!(
                    "    {i:>4} {} {}{cache}",
                    m.kernels[d.kernel as usize].kernel.name,
                    sizes.join(" ")
                );
            }
        }
    }
    Ok(())
}

/// Weight blobs and bytes per storage format (`f32` for unpacked or transposed
/// params, the block or half format of row-packed ones), each blob counted once.
fn storage_summary(m: &seam_bundle::Manifest) -> String {
    let mut by: std::collections::BTreeMap<String, (usize, u64)> = Default::default();
    let mut seen = std::collections::HashSet::new();
    for p in &m.params {
        let Some(w) = m.weights.get(p.weight as usize) else {
            continue;
        };
        if !seen.insert(p.weight) {
            continue;
        }
        let format = match p.packing {
            seam_bundle::Packing::Rows(f) => f.name(),
            _ => "f32",
        };
        let e = by.entry(format.to_string()).or_default();
        e.0 += 1;
        e.1 += w.bytes;
    }
    by.iter()
        .map(|(f, (n, b))| format!("{f} {n} blobs {b} bytes"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line on a bundle's generation metadata.
pub fn generation_summary(g: &GenerationMeta) -> String {
    let ids: Vec<String> = g.eos_token_ids.iter().map(ToString::to_string).collect();
    let eos = if ids.is_empty() {
        "none".to_string()
    } else {
        ids.join(",")
    };
    let bos = g
        .bos_token_id
        .map_or_else(|| "none".to_string(), |id| id.to_string());
    let template = g
        .chat_template
        .as_ref()
        .map_or_else(|| "none".to_string(), |t| format!("{} bytes", t.len()));
    format!(
        "model name {}, eos ids {eos}, bos id {bos}, chat template {template}",
        g.model_name.as_deref().unwrap_or("none")
    )
}
