//! Caches in the bundle format: written as format 3, and every inconsistent
//! cache entry or skip marking refused with a named error.

use seam_bundle::{
    BufferEntry, BufferRange, BufferRole, BundleError, BundleReader, BundleWriter, CacheEntry,
    Dispatch, CACHE_FORMAT_VERSION,
};
use seam_core::{Access, BindingDesc, DType, SizeExpr};

#[path = "support/sample.rs"]
mod sample;
use sample::{sample_kernel, sample_writer};

/// The sample bundle plus a cache `enc` (buffer 2) that dispatch 0 computes.
fn with_cache() -> BundleWriter {
    let mut w = sample_writer();
    w.manifest.buffers.push(BufferEntry {
        name: "cache.enc".into(),
        bytes: SizeExpr::Const(64),
        role: BufferRole::Cache,
    });
    w.manifest.caches.push(CacheEntry {
        key: "enc".into(),
        dtype: DType::F32,
        shape: vec![SizeExpr::Const(4), SizeExpr::Const(4)],
        buffer: 2,
        refresh: 2,
    });
    let copy = &mut w.manifest.entry_points[0].dispatches[0];
    copy.buffers[0].buffer = 2;
    copy.cache = Some(0);
    w
}

fn refused(w: &BundleWriter, needle: &str) {
    match w.to_bytes() {
        Err(BundleError::ManifestInvalid(m)) => assert!(m.contains(needle), "{m}"),
        other => panic!("expected a refusal mentioning `{needle}`, got {other:?}"),
    }
}

#[test]
fn a_bundle_with_a_cache_is_format_3_and_round_trips() {
    let w = with_cache();
    let bytes = w.to_bytes().unwrap();
    assert_eq!(bytes[8..12], CACHE_FORMAT_VERSION.to_le_bytes());
    assert_eq!(CACHE_FORMAT_VERSION, 3);
    let b = BundleReader::from_bytes(bytes).unwrap();
    assert_eq!(b.manifest().caches, w.manifest.caches);
}

#[test]
fn an_older_version_cannot_carry_caches() {
    let mut bytes = with_cache().to_bytes().unwrap();
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    let count = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[..24]);
    h.update(&bytes[32..32 + 32 * count]);
    bytes[24..28].copy_from_slice(&h.finalize().to_le_bytes());
    let err = BundleReader::from_bytes(bytes).unwrap_err().to_string();
    assert!(err.contains("caches need format version 3"), "{err}");
}

#[test]
fn inconsistent_cache_entries_are_refused() {
    let mut w = with_cache();
    w.manifest.caches[0].refresh = 0;
    refused(&w, "refresh period 0");

    let mut w = with_cache();
    let again = w.manifest.caches[0].clone();
    w.manifest.caches.push(again);
    refused(&w, "empty or duplicated");

    let mut w = with_cache();
    w.manifest.caches[0].buffer = 1;
    refused(&w, "not a cache buffer");

    let mut w = with_cache();
    w.manifest.caches[0].buffer = 9;
    refused(&w, "missing buffer 9");

    let mut w = with_cache();
    w.manifest.caches[0].shape = vec![SizeExpr::Const(1024)];
    refused(&w, "does not fit");

    let mut w = with_cache();
    w.manifest.entry_points[0].dispatches[0].cache = Some(7);
    refused(&w, "missing cache 7");
}

/// A dispatch that still runs reading an activation that only a skipped
/// dispatch writes would read stale data: refused.
#[test]
fn reading_what_a_skipped_dispatch_wrote_is_refused() {
    let mut w = with_cache();
    let mut reader = sample_kernel();
    reader.name = "reader".into();
    reader.bindings.insert(
        0,
        BindingDesc {
            binding: 2,
            name: "src".into(),
            access: Access::ReadOnly,
        },
    );
    let ki = w.add_kernel(&reader);
    let range = |buffer| BufferRange {
        buffer,
        offset: 0,
        size: None,
    };
    let ep = &mut w.manifest.entry_points[0];
    let sizes = ep.dispatches[0].sizes.clone();
    // Dispatch 0 (skipped with `enc`) now writes the activation buffer 1 …
    ep.dispatches[0].buffers[0].buffer = 1;
    // … which dispatch 1, always run, reads.
    ep.dispatches.push(Dispatch {
        kernel: ki,
        buffers: vec![range(1), range(2)],
        sizes,
        cache: None,
    });
    refused(&w, "reusing cache `enc` skips");
}
