//! The text format: any bytes through `parse_bytes_and_verify` (UTF-8 or not).
//!
//! Must hold: no panic (every bad input is a `Diagnostic` value), and a model
//! that parses and verifies prints to text that parses back to the same model
//! (the format's exact round trip).
#![no_main]

use libfuzzer_sys::fuzz_target;
use seam_ir::text::{parse, parse_bytes_and_verify, print};

fuzz_target!(|data: &[u8]| {
    let Ok((model, _)) = parse_bytes_and_verify("fuzz.seam", data) else {
        return;
    };
    let printed = print(&model);
    let (again, _) = parse(&printed).expect("printed model parses");
    assert_eq!(again, model, "round trip changed the model");
});
