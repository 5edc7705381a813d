//! The GGUF reader on any bytes, written to a scratch file: the tokenizer
//! metadata (`read_vocab`, then its conversion to a `tokenizer.json`) and the
//! whole import (container, metadata, tensor infos, architecture, weights).
//!
//! Must hold: no panic (a bad file is a `GgufError` or a
//! `TokenizerConvertError`) and no allocation beyond what the file holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seam_frontends::gguf::{import, read_vocab, tokenizer::tokenizer_json};
use seam_frontends::hf::ImportOptions;
use seam_fuzz::scratch;

fuzz_target!(|data: &[u8]| {
    let path = scratch::write("gguf", "model.gguf", data);
    if let Ok(Some(vocab)) = read_vocab(&path) {
        let _ = tokenizer_json(&vocab);
    }
    let _ = import(&path, &ImportOptions::default());
});
