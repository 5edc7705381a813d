//! `seam compile --tensor-parallel N`: the model sharded over N ranks
//! (`seam_compiler::shard`), one bundle per rank (`OUT.rank0.seamb`, …),
//! each marked with its rank and the set's identity.

use std::path::Path;

use seam_bundle::files::rank_path;
use seam_bundle::{BundleWriter, ShardEntry};
use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::shard::shard_tensor_parallel;
use seam_ir::{Model, Weights};

use super::output::write_atomic;
use super::CliError;

/// Refuses to start when a rank's file exists (without `force`).
pub fn refuse_existing_ranks(output: &Path, ranks: usize, force: bool) -> Result<(), CliError> {
    for r in 0..ranks as u32 {
        super::eval::refuse_existing(Some(&rank_path(output, r)), force)?;
    }
    Ok(())
}

/// Shards `model` over `ranks`, compiles every rank with `options`,
/// `decorate`s each bundle (tokenizer, generation metadata) and writes them
/// beside `output`.
pub fn compile_shard_set(
    model: &Model,
    weights: &Weights,
    options: &CompileOptions,
    ranks: usize,
    output: &Path,
    force: bool,
    decorate: impl Fn(&mut BundleWriter),
) -> Result<(), CliError> {
    let set = shard_tensor_parallel(model, weights, ranks)?;
    let mut bundles = Vec::with_capacity(ranks);
    let mut identity = crc32fast::Hasher::new();
    for (r, w) in set.weights.iter().enumerate() {
        let mut bundle = compile(&set.model, w, options)?.bundle;
        decorate(&mut bundle);
        let bytes = bundle.to_bytes().map_err(seam_runtime::Error::from)?;
        identity.update(&crc32fast::hash(&bytes).to_le_bytes());
        println!(
            "rank {r}: {} weight bytes",
            bundle.manifest.stats.weight_bytes
        );
        bundles.push(bundle);
    }
    let id = identity.finalize();
    for (r, mut bundle) in bundles.into_iter().enumerate() {
        bundle.manifest.shard = Some(ShardEntry {
            rank: r as u32,
            ranks: ranks as u32,
            set: id,
        });
        let bytes = bundle.to_bytes().map_err(seam_runtime::Error::from)?;
        let path = rank_path(output, r as u32);
        write_atomic(&path, &bytes, force)?;
        println!(
            "wrote rank {r} of {ranks} ({} bytes, {} reductions per forward) -> {}",
            bytes.len(),
            bundle
                .manifest
                .entry_points
                .first()
                .map_or(0, |e| e.collectives.len()),
            path.display()
        );
    }
    Ok(())
}
