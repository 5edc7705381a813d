//! Structure-aware bundle fuzzing: a valid bundle (`sample_writer`) whose
//! manifest is replaced, then laid out again with every checksum right, so the
//! input reaches the manifest's validation instead of the checksums.
//!
//! The first input byte picks the mutation: even, the rest of the input is the
//! manifest's bytes (libFuzzer mutates JSON text; seed it with the valid
//! manifest); odd, the rest drives edits of the valid manifest's JSON value
//! (`seam_fuzz::json::edit`: values swapped for boundary numbers, other
//! types, removed or duplicated elements).
//!
//! Must hold: no panic (a bad manifest is a `BundleError`), and an accepted
//! bundle is fully readable.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use seam_bundle::{BundleReader, SectionKind, BASE_FORMAT_VERSION};
use seam_fuzz::bundle::{layout, sample_writer, sections, touch, Sections};
use seam_fuzz::json::edit;

/// The valid bundle's sections and its manifest as a JSON value.
fn sample() -> &'static (Sections, serde_json::Value) {
    static SAMPLE: OnceLock<(Sections, serde_json::Value)> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let bytes = sample_writer().to_bytes().expect("sample bundle writes");
        let sections = sections(&bytes);
        let manifest = serde_json::from_slice(&sections[0].1).expect("manifest is JSON");
        (sections, manifest)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (sections, manifest) = sample();
    let new_manifest = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let mut value = manifest.clone();
        edit(&mut value, &mut Unstructured::new(rest));
        serde_json::to_vec(&value).expect("a JSON value serializes")
    };
    let mut sections = sections.clone();
    sections[0] = (SectionKind::Manifest, new_manifest);
    // Version 2 too, so that external-file entries reach their checks.
    let version = BASE_FORMAT_VERSION + u32::from(mode >> 1 & 1);
    if let Ok(bundle) = BundleReader::from_bytes(layout(version, &sections)) {
        touch(&bundle);
    }
});
