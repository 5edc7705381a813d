//! Reductions across ranks (`EntryPoint::collectives`): a consistent record
//! round trips, and an inconsistent one is refused with a named error.

use seam_bundle::{BundleError, BundleReader, BundleWriter, Collective};
use seam_core::SizeExpr;

#[path = "support/sample.rs"]
mod sample;
use sample::sample_writer;

/// The sample bundle reducing its activation (buffer 1, `tokens·4` f32)
/// after dispatch 0, waited for at the end.
fn with_collective() -> BundleWriter {
    let mut w = sample_writer();
    w.manifest.entry_points[0].collectives.push(Collective {
        name: "attn_out".into(),
        buffer: 1,
        elements: SizeExpr::product([SizeExpr::Dim("tokens".into()), SizeExpr::Const(4)]),
        start: 1,
        wait: 1,
    });
    w
}

fn refused(edit: impl FnOnce(&mut Collective), needle: &str) {
    let mut w = with_collective();
    edit(&mut w.manifest.entry_points[0].collectives[0]);
    match w.to_bytes() {
        Err(BundleError::ManifestInvalid(m)) => assert!(m.contains(needle), "{m}"),
        other => panic!("expected a refusal mentioning `{needle}`, got {other:?}"),
    }
}

#[test]
fn a_consistent_record_round_trips() {
    let w = with_collective();
    let read = BundleReader::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(
        read.manifest().entry_points[0].collectives,
        w.manifest.entry_points[0].collectives
    );
}

#[test]
fn inconsistent_records_are_refused() {
    refused(|c| c.wait = 2, "waited for at 2 of 1");
    refused(|c| (c.start, c.wait) = (1, 0), "starts at dispatch 1");
    refused(|c| c.buffer = 7, "missing buffer 7");
    refused(
        |c| c.elements = SizeExpr::product([SizeExpr::Dim("tokens".into()), SizeExpr::Const(5)]),
        "do not fit",
    );
    refused(
        |c| c.elements = SizeExpr::Dim("batch".into()),
        "undeclared dim",
    );
}
