//! The bundle reader on raw bytes: `BundleReader::from_bytes`, then every
//! accessor of what it accepted.
//!
//! Must hold: no panic (bad bytes are a `BundleError`), and an accepted
//! bundle's kernels, weights, tokenizer, generation metadata and sections are
//! all readable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seam_fuzz::bundle::touch;

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = seam_bundle::BundleReader::from_bytes(data.to_vec()) {
        touch(&bundle);
    }
});
