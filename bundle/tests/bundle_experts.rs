//! MoE layer records (`EntryPoint::expert_layers`): a consistent one round
//! trips in the current format (older runtimes may ignore it), and every
//! inconsistent one is refused with a named error before any GPU work.

use seam_bundle::{BundleError, BundleReader, BundleWriter, ExpertLayer};
use seam_core::SizeExpr;

#[path = "support/sample.rs"]
mod sample;
use sample::sample_writer;

/// The sample bundle with two dispatches and an MoE layer of 3 experts over
/// weight 0 (48 bytes): plan = dispatch 0, expert dispatch 1.
fn with_layer() -> BundleWriter {
    let mut w = sample_writer();
    let d = w.manifest.entry_points[0].dispatches[0].clone();
    w.manifest.entry_points[0].dispatches.push(d);
    w.manifest.entry_points[0].expert_layers.push(ExpertLayer {
        name: "l0.moe".into(),
        experts: 3,
        block_rows: 4,
        ids: 1,
        pairs: SizeExpr::Dim("tokens".into()),
        ids_ready: None,
        plan: 0,
        block_expert: 1,
        blocks: SizeExpr::Dim("tokens".into()),
        experts_end: 2,
        stacks: vec![0],
    });
    w
}

fn refused(edit: impl FnOnce(&mut ExpertLayer), needle: &str) {
    let mut w = with_layer();
    edit(&mut w.manifest.entry_points[0].expert_layers[0]);
    match w.to_bytes() {
        Err(BundleError::ManifestInvalid(m)) => assert!(m.contains(needle), "{m}"),
        other => panic!("expected a refusal mentioning `{needle}`, got {other:?}"),
    }
}

#[test]
fn a_consistent_record_round_trips() {
    let w = with_layer();
    let bytes = w.to_bytes().unwrap();
    let read = BundleReader::from_bytes(bytes).unwrap();
    assert_eq!(
        read.manifest().entry_points[0].expert_layers,
        w.manifest.entry_points[0].expert_layers
    );
}

#[test]
fn inconsistent_records_are_refused() {
    refused(|l| l.experts = 0, "experts");
    refused(|l| l.experts = 1 << 20, "experts");
    refused(|l| l.block_rows = 0, "blocks of");
    refused(|l| l.experts = 5, "whole experts");
    refused(|l| l.experts_end = 3, "out of order");
    refused(|l| l.plan = 2, "out of order");
    refused(|l| l.ids_ready = Some(0), "out of order");
    refused(|l| l.ids = 9, "missing buffer 9");
    refused(|l| l.block_expert = 9, "missing buffer 9");
    refused(
        |l| l.pairs = SizeExpr::product([SizeExpr::Dim("tokens".into()), SizeExpr::Const(8)]),
        "do not fit",
    );
    refused(
        |l| l.blocks = SizeExpr::Dim("nope".into()),
        "undeclared dim",
    );
    refused(|l| l.stacks = vec![7], "missing weight 7");
    refused(|l| l.stacks.clear(), "no expert stack");
}
