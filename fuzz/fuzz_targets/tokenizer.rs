//! The GGUF tokenizer conversion (`gguf::tokenizer::tokenizer_json`) on
//! structured input: a `GgufVocab` built from fuzz input, its model and
//! pre-tokenizer mostly the supported names, its merges mostly pairs of its
//! own tokens, so that inputs reach the BPE and SentencePiece builders.
//!
//! (The bundle's tokenizer section is opaque bytes to the bundle reader; the
//! `tokenizer.json` parser that reads it is the `tokenizers` crate, linked by
//! the CLI only, so it is not fuzzed here.)
//!
//! Must hold: no panic (inconsistent metadata is a `TokenizerConvertError`),
//! and an accepted vocabulary converts to valid JSON.
#![no_main]

use libfuzzer_sys::arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use seam_frontends::gguf::tokenizer::tokenizer_json;
use seam_frontends::gguf::GgufVocab;

/// Models and pre-tokenizers: supported names and a few others.
const MODELS: [&str; 3] = ["gpt2", "llama", "bert"];
const PRES: [&str; 6] = ["default", "llama-bpe", "smollm", "qwen2", "dbrx", "nope"];

/// A vocabulary as fuzz input.
#[derive(Debug)]
struct Input(GgufVocab);

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let model = u.choose(&MODELS)?.to_string();
        let pre = match u.int_in_range(0..=2u8)? {
            0 => None,
            1 => Some(u.choose(&PRES)?.to_string()),
            _ => Some(u.arbitrary()?),
        };
        let tokens: Vec<String> = u.arbitrary_iter()?.take(64).collect::<Result<_>>()?;
        let n = tokens.len();
        let per_token = |u: &mut Unstructured<'a>| u.ratio(3u8, 4u8);
        let token_types = if per_token(u)? {
            (0..n)
                .map(|_| u.int_in_range(0..=7))
                .collect::<Result<_>>()?
        } else {
            u.arbitrary()?
        };
        let scores = if per_token(u)? {
            (0..n).map(|_| u.arbitrary()).collect::<Result<_>>()?
        } else {
            u.arbitrary()?
        };
        let merges = (0..u.int_in_range(0..=32u8)?)
            .map(|_| {
                if n > 0 && u.ratio(3u8, 4u8)? {
                    let (a, b) = (u.choose(&tokens)?, u.choose(&tokens)?);
                    Ok(format!("{a} {b}"))
                } else {
                    u.arbitrary()
                }
            })
            .collect::<Result<_>>()?;
        let id = |u: &mut Unstructured<'a>| -> Result<Option<u32>> {
            Ok(match u.int_in_range(0..=2u8)? {
                0 => None,
                1 => Some(u.int_in_range(0..=n as u32)?),
                _ => Some(u.arbitrary()?),
            })
        };
        Ok(Input(GgufVocab {
            model,
            pre,
            token_types,
            merges,
            scores,
            bos: id(u)?,
            eos: id(u)?,
            unk: id(u)?,
            pad: id(u)?,
            add_bos: u.arbitrary()?,
            add_eos: u.arbitrary()?,
            add_space_prefix: u.arbitrary()?,
            tokens,
        }))
    }
}

fuzz_target!(|input: Input| {
    if let Ok(json) = tokenizer_json(&input.0) {
        serde_json::from_slice::<serde_json::Value>(&json).expect("tokenizer.json is JSON");
    }
});
