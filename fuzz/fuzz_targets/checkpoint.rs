//! The Hugging Face importer on a fuzzed checkpoint folder: `config.json` and
//! the JSON header of `model.safetensors`, written to a scratch folder, then
//! `seam_frontends::hf::import`.
//!
//! Input: a little-endian `u16` length `n`, `n` bytes of `config.json`, then
//! the safetensors header. The file's data after the header is zeros, as many
//! as the header's `data_offsets` reach (at most 1 MiB), so that a valid
//! header reaches the weight conversion.
//!
//! Must hold: no panic (a bad checkpoint is an `HfError`) and no allocation
//! beyond what the files hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seam_frontends::hf::{import, ImportOptions};
use seam_fuzz::scratch;

/// The most data bytes written after the header.
const MAX_DATA: u64 = 1 << 20;

/// The largest `data_offsets` end in a safetensors header, capped at `MAX_DATA`.
fn data_len(header: &[u8]) -> u64 {
    let Ok(serde_json::Value::Object(tensors)) = serde_json::from_slice(header) else {
        return 0;
    };
    let ends = tensors
        .values()
        .filter_map(|t| t.get("data_offsets")?.get(1)?.as_u64());
    ends.max().unwrap_or(0).min(MAX_DATA)
}

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let (config, header) = rest.split_at(usize::from(u16::from_le_bytes(*len)).min(rest.len()));
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header);
    file.resize(file.len() + data_len(header) as usize, 0);
    scratch::write("checkpoint", "config.json", config);
    scratch::write("checkpoint", "model.safetensors", &file);
    let _ = import(scratch::dir("checkpoint"), &ImportOptions::default());
});
