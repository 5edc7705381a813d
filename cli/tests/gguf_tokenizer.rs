//! `seam_frontends::gguf::tokenizer`: GGUF tokenizer metadata converted to a
//! `tokenizer.json` and run by the `tokenizers` crate (the one `seam generate
//! --prompt` uses).
//!
//! - SmolLM2-135M-Instruct (`gpt2` model, `smollm` pre-tokenizer, 49152 tokens):
//!   the ids of 21 varied strings equal both llama.cpp's and transformers' own
//!   GGUF tokenizer's (tests/fixtures/gguf/tokenizer/smollm2_expected.json, made
//!   by make_fixture.py beside it), and decoding gives the text back. The
//!   metadata dump (1.3 MB) is not committed: `scripts/fetch-smollm2.sh` writes
//!   it under target/models/smollm2/; without it that test says so and passes.
//! - The HF `llama` fixture's 128-token SentencePiece vocabulary as llama.cpp's
//!   converter wrote it into tests/fixtures/gguf/llama/model-f32.gguf (dump:
//!   tokenizer/llama_fixture_metadata.json): 12 strings vs llama.cpp and
//!   transformers (tokenizer/llama_fixture_expected.json).
//! - Tiny hand-made vocabularies whose encodings were worked out by hand: the
//!   pre-tokenizer choice (digits alone for `smollm`, digit runs for `gpt-2`),
//!   added tokens, BOS, SentencePiece merges from scores and byte fallback.

use std::path::PathBuf;

use seam_frontends::gguf::tokenizer::{tokenizer_json, GgufVocab};
use serde_json::Value;
use tokenizers::Tokenizer;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// A metadata dump of make_fixture.py (`dump`) as the struct the converter takes.
fn vocab_of(dump: &Value) -> GgufVocab {
    let id = |k: &str| dump[k].as_u64().map(|x| u32::try_from(x).unwrap());
    GgufVocab {
        model: dump["model"].as_str().unwrap().to_string(),
        pre: dump["pre"].as_str().map(str::to_string),
        tokens: strings(&dump["tokens"]),
        token_types: dump["token_types"]
            .as_array()
            .map(|a| a.iter().map(|t| t.as_i64().unwrap() as i32).collect())
            .unwrap_or_default(),
        merges: strings(&dump["merges"]),
        scores: dump["scores"]
            .as_array()
            .map(|a| a.iter().map(|t| t.as_f64().unwrap() as f32).collect())
            .unwrap_or_default(),
        bos: id("bos"),
        eos: id("eos"),
        unk: id("unk"),
        pad: id("pad"),
        add_bos: dump["add_bos"].as_bool(),
        add_eos: dump["add_eos"].as_bool(),
        add_space_prefix: dump["add_space_prefix"].as_bool(),
    }
}

fn tokenizer(vocab: &GgufVocab) -> Tokenizer {
    let json = tokenizer_json(vocab).expect("converts");
    Tokenizer::from_bytes(&json).expect("the tokenizers crate loads the converted tokenizer.json")
}

fn encode(tok: &Tokenizer, text: &str) -> Vec<u32> {
    tok.encode(text, true).unwrap().get_ids().to_vec()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn smollm2_encodes_as_llama_cpp_and_transformers() {
    let dump = repo().join("target/models/smollm2/tokenizer_metadata.json");
    let Ok(bytes) = std::fs::read(&dump) else {
        eprintln!(
            "skipped: {} is absent (run scripts/fetch-smollm2.sh to download SmolLM2 and dump it)",
            dump.display()
        );
        return;
    };
    let vocab = vocab_of(&serde_json::from_slice(&bytes).unwrap());
    assert_eq!(
        (vocab.model.as_str(), vocab.pre.as_deref()),
        ("gpt2", Some("smollm"))
    );
    let tok = tokenizer(&vocab);
    let expected: Value = serde_json::from_slice(
        &std::fs::read(repo().join("tests/fixtures/gguf/tokenizer/smollm2_expected.json")).unwrap(),
    )
    .unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let got = encode(&tok, text);
        assert_eq!(got, ids(&case["llama_cpp"]), "llama.cpp ids of {text:?}");
        assert_eq!(
            got,
            ids(&case["transformers"]),
            "transformers ids of {text:?}"
        );
        let bare = tok.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(
            bare,
            ids(&case["llama_cpp_no_special"]),
            "{text:?} without BOS/EOS"
        );
        assert_eq!(
            tok.decode(&got, false).unwrap(),
            text,
            "round trip of {text:?}"
        );
    }
}

/// The HF `llama` fixture's vocabulary, from a GGUF without `bos_token_id`,
/// `unknown_token_id` or token types, and with every score -1000.
#[test]
fn llama_fixture_encodes_as_llama_cpp() {
    let dir = repo().join("tests/fixtures/gguf/tokenizer");
    let read = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap()
    };
    let vocab = vocab_of(&read("llama_fixture_metadata.json"));
    assert_eq!((vocab.model.as_str(), vocab.tokens.len()), ("llama", 128));
    let tok = tokenizer(&vocab);
    let expected = read("llama_fixture_expected.json");
    // With all scores equal, merge order is a tie-break: llama.cpp merges the
    // leftmost pair, transformers (and this converter) order merges by the
    // parts' lengths. This string is the one where that shows.
    let tie = "two  spaces and   three";
    for case in expected["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let got = encode(&tok, text);
        let bare = tok.encode(text, false).unwrap().get_ids().to_vec();
        if text == tie {
            assert_ne!(
                case["llama_cpp_no_special"],
                case["transformers_no_special"]
            );
            assert_eq!(
                bare,
                ids(&case["transformers_no_special"]),
                "transformers ids of {text:?}"
            );
            continue;
        }
        // llama.cpp's ids: BOS 1 (its SentencePiece default: the file names
        // none, so transformers adds none) and a `▁` before a leading space too.
        assert_eq!(got, ids(&case["llama_cpp"]), "llama.cpp ids of {text:?}");
        assert_eq!(
            bare,
            ids(&case["llama_cpp_no_special"]),
            "{text:?} without BOS"
        );
        if text != " leading space" {
            assert_eq!(
                bare,
                ids(&case["transformers_no_special"]),
                "transformers ids of {text:?}"
            );
        }
    }
}

/// A byte-level vocabulary (merges `Ġ a`, `a b`, `ab c`, `Ġa b`, `1 2`,
/// `Ġ 1`, in that priority): ids 0 `<|endoftext|>` (control), 1 `a`, 2 `b`,
/// 3 `c`, 4 `ab`, 5 `abc`, 6 `Ġ` (space), 7 `Ġa`, 8 `Ġab`, 9 `1`, 10 `2`,
/// 11 `12`, 12 `<think>` (user-defined), 13 `Ġ1`.
fn tiny_gpt2(pre: &str) -> GgufVocab {
    let tokens = [
        "<|endoftext|>",
        "a",
        "b",
        "c",
        "ab",
        "abc",
        "Ġ",
        "Ġa",
        "Ġab",
        "1",
        "2",
        "12",
        "<think>",
        "Ġ1",
    ];
    let mut token_types = vec![1; tokens.len()];
    token_types[0] = 3;
    token_types[12] = 4;
    GgufVocab {
        model: "gpt2".into(),
        pre: Some(pre.into()),
        tokens: tokens.iter().map(|t| t.to_string()).collect(),
        token_types,
        merges: ["Ġ a", "a b", "ab c", "Ġa b", "1 2", "Ġ 1"]
            .iter()
            .map(|m| m.to_string())
            .collect(),
        bos: Some(0),
        eos: Some(0),
        ..GgufVocab::default()
    }
}

#[test]
fn gpt2_pre_tokenizers_split_digits_as_llama_cpp() {
    // `smollm`: `\p{N}` alone first, so `12` stays two tokens and ` 12` is
    // ` `, `1`, `2`; then GPT-2's regex: `abc`, ` ab`.
    let smollm = tokenizer(&tiny_gpt2("smollm"));
    assert_eq!(encode(&smollm, "abc ab 12"), [5, 8, 6, 9, 10]);
    // `gpt-2`: ` ?\p{N}+` keeps ` 12` one piece: `1 2` outranks `Ġ 1`, so `Ġ`, `12`.
    let gpt2 = tokenizer(&tiny_gpt2("gpt-2"));
    assert_eq!(encode(&gpt2, "abc ab 12"), [5, 8, 6, 11]);
    assert_eq!(encode(&gpt2, "12"), [11]);
    assert_eq!(encode(&smollm, "12"), [9, 10]);
    // `default`: `\p{N}+` and `[0-9][0-9][0-9]` after GPT-2's: `12` one piece.
    assert_eq!(encode(&tokenizer(&tiny_gpt2("default")), "12"), [11]);
}

#[test]
fn gpt2_added_tokens_and_bos() {
    let mut vocab = tiny_gpt2("gpt-2");
    let tok = tokenizer(&vocab);
    // Control and user-defined tokens are matched whole; no BOS unless asked.
    assert_eq!(encode(&tok, "ab<|endoftext|>c<think>a"), [4, 0, 3, 12, 1]);
    // Decoding skips the control token only.
    assert_eq!(tok.decode(&[4, 0, 3, 12, 1], true).unwrap(), "abc<think>a");
    vocab.add_bos = Some(true);
    vocab.add_eos = Some(true);
    assert_eq!(encode(&tokenizer(&vocab), "ab"), [0, 4, 0]);
    // Llama 3's pre-tokenizer adds BOS by default and takes a piece that is a
    // token whole (`ignore_merges`): `abc` without the `ab c` merge.
    let mut llama3 = tiny_gpt2("llama-bpe");
    llama3.merges.retain(|m| m != "ab c");
    assert_eq!(encode(&tokenizer(&llama3), "abc"), [0, 5]);
    llama3.pre = Some("gpt-2".into());
    assert_eq!(encode(&tokenizer(&llama3), "abc"), [4, 3]);
}

/// A SentencePiece vocabulary: 0 `<unk>` (unknown), 1 `<s>`, 2 `</s>`
/// (control), 3 `▁`, 4 `a`, 5 `b`, 6 `▁a`, 7 `ab`, 8 `▁ab`, 9 `<0x41>` (byte).
fn tiny_llama() -> GgufVocab {
    let tokens = [
        "<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "ab", "▁ab", "<0x41>",
    ];
    GgufVocab {
        model: "llama".into(),
        pre: Some("default".into()),
        tokens: tokens.iter().map(|t| t.to_string()).collect(),
        token_types: vec![2, 3, 3, 1, 1, 1, 1, 1, 1, 6],
        scores: vec![0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0, 0.0],
        bos: Some(1),
        eos: Some(2),
        unk: Some(0),
        ..GgufVocab::default()
    }
}

#[test]
fn llama_sentencepiece_merges_prefix_and_byte_fallback() {
    let tok = tokenizer(&tiny_llama());
    // BOS, `▁` prefixed: `▁`+`a` (score -4) merges before `a`+`b` (-5), then `▁a`+`b`.
    assert_eq!(encode(&tok, "ab"), [1, 8]);
    // `b` after `▁a` … `ba` is no token; a space inside is `▁`.
    assert_eq!(encode(&tok, "b a"), [1, 3, 5, 6]);
    // `A` is not a token: its byte; `c` has no byte token either: `<unk>`.
    assert_eq!(encode(&tok, "A"), [1, 3, 9]);
    assert_eq!(encode(&tok, "c"), [1, 3, 0]);
    assert_eq!(tok.decode(&[1, 8, 3, 9], true).unwrap(), "ab A");
    let mut no_prefix = tiny_llama();
    no_prefix.add_space_prefix = Some(false);
    no_prefix.add_bos = Some(false);
    assert_eq!(encode(&tokenizer(&no_prefix), "ab"), [7]);
}
