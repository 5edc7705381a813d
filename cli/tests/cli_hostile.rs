//! Bundles from an untrusted source, with valid checksums and hostile
//! contents, end `seam inspect` / `seam run` with a named error in bounded
//! time: 10^6 dispatches, 20,000 weight entries on one range, a 64 MiB
//! `var<workgroup>` array, a 65,535 × 65,535 grid.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use seam_bundle::{BundleWriter, Dispatch, EntryPoint, Manifest, SectionKind};
use seam_core::{DType, Grid, GridDim, GridTerm, Kernel};

#[path = "support/cli.rs"]
mod cli;
use cli::{scratch, seam, text};

/// A refusal must come this quickly even from a debug build on a software
/// device (the defects it guards against ran for minutes or crashed).
const BOUNDED: Duration = Duration::from_secs(60);

/// A grid axis of `n` workgroups.
fn axis(n: u32) -> GridDim {
    GridDim {
        terms: vec![GridTerm::Const(n)],
        divisor: 1,
    }
}

/// A bundle with one binding-less kernel (`wgsl`, grid `grid`), run `dispatches`
/// times by entry point `forward`, and one 64-byte weight.
fn writer(wgsl: &str, grid: [u32; 3], dispatches: usize) -> BundleWriter {
    let mut w = BundleWriter::new(Manifest::new("hostile", "test"));
    w.add_weight("w", DType::F32, vec![16], &[0u8; 64]);
    let kernel = w.add_kernel(&Kernel {
        name: "hostile".into(),
        wgsl: wgsl.into(),
        entry_point: "main".into(),
        workgroup_size: [1, 1, 1],
        bindings: Vec::new(),
        sizes: Vec::new(),
        grid: Grid::xyz(axis(grid[0]), axis(grid[1]), axis(grid[2])),
        indexing_proven: false,
    });
    let dispatch = Dispatch {
        kernel,
        buffers: Vec::new(),
        sizes: Vec::new(),
        cache: None,
    };
    w.manifest.entry_points = vec![EntryPoint {
        name: "forward".into(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        dispatches: vec![dispatch; dispatches],
        states: Vec::new(),
        state_length: None,
        expert_layers: Vec::new(),
        collectives: Vec::new(),
    }];
    w
}

const NOOP: &str = "@compute @workgroup_size(1) fn main() {}";

/// The bytes of `valid` (a bundle file) with its manifest replaced by
/// `manifest`, unvalidated, every checksum recomputed: what a hostile tool
/// would write.
fn forge(valid: &[u8], manifest: &Manifest) -> Vec<u8> {
    let u32_at = |o: usize| u32::from_le_bytes(valid[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(valid[o..o + 8].try_into().unwrap()) as usize;
    let json = serde_json::to_vec(manifest).unwrap();
    let count = u32_at(12) as usize;
    let align = |n: usize| n.div_ceil(64) * 64;
    let mut out = valid[..32 + 32 * count].to_vec();
    for i in 0..count {
        let entry = 32 + 32 * i;
        let (offset, len) = (u64_at(entry + 8), u64_at(entry + 16));
        let data = if u32_at(entry) == SectionKind::Manifest.code() {
            &json[..]
        } else {
            &valid[offset..offset + len]
        };
        out.resize(align(out.len()), 0);
        let at = out.len() as u64;
        out.extend_from_slice(data);
        out[entry + 8..entry + 16].copy_from_slice(&at.to_le_bytes());
        out[entry + 16..entry + 24].copy_from_slice(&(data.len() as u64).to_le_bytes());
        out[entry + 24..entry + 28].copy_from_slice(&crc32fast::hash(data).to_le_bytes());
    }
    out.resize(align(out.len()), 0);
    let total = out.len() as u64;
    out[16..24].copy_from_slice(&total.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&out[..24]);
    h.update(&out[32..32 + 32 * count]);
    out[24..28].copy_from_slice(&h.finalize().to_le_bytes());
    out
}

/// Runs `seam args…` on `bundle` and checks it failed cleanly, in bounded
/// time, saying `expected`.
fn refused(args: &[&str], bundle: &Path, expected: &str) -> Output {
    let path = bundle.to_str().unwrap();
    let mut all = args.to_vec();
    all.insert(1, path);
    let start = Instant::now();
    let o = seam(&all);
    let took = start.elapsed();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    assert!(out.contains(expected), "expected `{expected}` in: {out}");
    assert!(took < BOUNDED, "took {took:?}");
    o
}

#[test]
fn million_dispatches_are_refused_by_inspect() {
    let dir = scratch("million-dispatches");
    let valid = writer(NOOP, [1, 1, 1], 1).to_bytes().unwrap();
    let hostile = writer(NOOP, [1, 1, 1], 1_000_000).manifest;
    let bundle = dir.join("dispatches.seam");
    std::fs::write(&bundle, forge(&valid, &hostile)).unwrap();
    refused(&["inspect"], &bundle, "declares 1000000 dispatches");
}

#[test]
fn twenty_thousand_overlapping_weights_are_refused_by_inspect() {
    let dir = scratch("overlapping-weights");
    let w = writer(NOOP, [1, 1, 1], 1);
    let valid = w.to_bytes().unwrap();
    let mut hostile = w.manifest.clone();
    let weight = hostile.weights[0].clone();
    hostile.weights = (0..20_000)
        .map(|i| seam_bundle::WeightEntry {
            name: format!("w{i}"),
            ..weight.clone()
        })
        .collect();
    let bundle = dir.join("weights.seam");
    std::fs::write(&bundle, forge(&valid, &hostile)).unwrap();
    refused(&["inspect"], &bundle, "overlaps weight");
}

#[test]
fn workgroup_array_of_64_mib_is_refused_before_pipeline_creation() {
    let dir = scratch("workgroup-64mib");
    let wgsl = "var<workgroup> big: array<f32, 16777216>;\n\
                @compute @workgroup_size(1) fn main() { big[0] = 1.0; }";
    let bundle = dir.join("workgroup.seam");
    writer(wgsl, [1, 1, 1], 1).write(&bundle, false).unwrap();
    refused(
        &["run"],
        &bundle,
        "declares 67108864 bytes of workgroup memory",
    );
}

#[test]
fn grid_of_65535_squared_is_refused_before_dispatch() {
    let dir = scratch("huge-grid");
    let bundle = dir.join("grid.seam");
    writer(NOOP, [65_535, 65_535, 1], 1)
        .write(&bundle, false)
        .unwrap();
    refused(&["run"], &bundle, "one dispatch may launch at most");
}
