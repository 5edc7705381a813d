//! Hostile manifests (consistent checksums, adversarial contents) are refused
//! with a named error in time proportional to what they declare: too many
//! dispatches, weight entries piled on one byte range, weight buffers sharing
//! a weight.

use std::time::{Duration, Instant};

use seam_bundle::{
    BufferEntry, BufferRole, BundleError, BundleWriter, Dispatch, EntryPoint, Manifest,
    WeightEntry, MAX_DISPATCHES_PER_ENTRY,
};
use seam_core::{DType, Grid, GridDim, GridTerm, Kernel, SizeExpr};

/// Refusals must not take long even in a debug build.
const BOUNDED: Duration = Duration::from_secs(20);

fn empty_manifest() -> Manifest {
    Manifest::new("hostile", "test")
}

/// A writer with one binding-less kernel and one entry point running it
/// `dispatches` times.
fn writer_with_dispatches(dispatches: usize) -> BundleWriter {
    let mut w = BundleWriter::new(empty_manifest());
    let one = GridDim {
        terms: vec![GridTerm::Const(1)],
        divisor: 1,
    };
    let ki = w.add_kernel(&Kernel {
        name: "noop".into(),
        wgsl: "@compute @workgroup_size(1) fn main() {}".into(),
        entry_point: "main".into(),
        workgroup_size: [1, 1, 1],
        bindings: Vec::new(),
        sizes: Vec::new(),
        grid: Grid::xyz(one.clone(), one.clone(), one),
        indexing_proven: true,
    });
    let dispatch = Dispatch {
        kernel: ki,
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

#[test]
fn dispatches_up_to_the_limit_are_accepted() {
    let w = writer_with_dispatches(MAX_DISPATCHES_PER_ENTRY);
    assert!(w.to_bytes().is_ok());
}

#[test]
fn million_dispatches_are_refused_in_bounded_time() {
    let w = writer_with_dispatches(1_000_000);
    let start = Instant::now();
    let err = w.manifest.validate(1 << 20, 0).unwrap_err();
    assert!(start.elapsed() < BOUNDED, "took {:?}", start.elapsed());
    assert!(
        matches!(
            err,
            BundleError::TooManyDispatches { count: 1_000_000, limit, .. }
                if limit == MAX_DISPATCHES_PER_ENTRY
        ),
        "{err}"
    );
}

/// `n` weights of 64 bytes each, all at offset 0 of the weights section.
fn overlapping_weights(n: usize) -> Manifest {
    let mut m = empty_manifest();
    m.weights = (0..n)
        .map(|i| WeightEntry {
            name: format!("w{i}"),
            dtype: DType::F32,
            shape: vec![16],
            offset: 0,
            bytes: 64,
            file: None,
        })
        .collect();
    m
}

#[test]
fn twenty_thousand_overlapping_weights_are_refused_in_bounded_time() {
    let m = overlapping_weights(20_000);
    let start = Instant::now();
    let err = m.validate(0, 64).unwrap_err();
    assert!(start.elapsed() < BOUNDED, "took {:?}", start.elapsed());
    assert!(
        matches!(
            err,
            BundleError::WeightOverlap {
                first: 0,
                second: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn partly_overlapping_weights_are_refused() {
    let mut m = overlapping_weights(3);
    m.weights[1].offset = 128;
    m.weights[2].offset = 64;
    m.weights[2].shape = vec![32];
    m.weights[2].bytes = 128;
    let err = m.validate(0, 256).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::WeightOverlap {
                first: 2,
                second: 1,
                ..
            }
        ),
        "{err}"
    );
    m.weights[2].shape = vec![16];
    m.weights[2].bytes = 64;
    assert!(
        m.validate(0, 256).is_ok(),
        "adjacent weights do not overlap"
    );
}

#[test]
fn weight_buffers_sharing_a_weight_are_refused() {
    let mut w = BundleWriter::new(empty_manifest());
    let wi = w.add_weight("w", DType::F32, vec![4], &[0u8; 16]);
    let buffer = |name: &str| BufferEntry {
        name: name.into(),
        bytes: SizeExpr::Const(16),
        role: BufferRole::Weight(wi),
    };
    w.manifest.buffers = vec![buffer("a"), buffer("b")];
    let err = w.to_bytes().unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::WeightBufferRepeated {
                first: 0,
                second: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn identical_blobs_stored_once_still_validate() {
    let mut w = BundleWriter::new(empty_manifest());
    let a = w.add_weight("a", DType::F32, vec![4], &[1u8; 16]);
    let b = w.add_weight("b", DType::F32, vec![4], &[1u8; 16]);
    assert_eq!(a, b, "the writer stores identical blobs once");
    w.manifest.buffers = vec![BufferEntry {
        name: "a".into(),
        bytes: SizeExpr::Const(16),
        role: BufferRole::Weight(a),
    }];
    assert!(w.to_bytes().is_ok());
}
