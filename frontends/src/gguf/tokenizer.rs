//! A GGUF file's tokenizer as a Hugging Face `tokenizer.json`.
//!
//! A GGUF carries its tokenizer as metadata (`tokenizer.ggml.*`); `seam generate
//! --prompt` reads a `tokenizer.json`. [`tokenizer_json`] converts the one into
//! the other, following what llama.cpp — whose files these are — does with the
//! metadata:
//!
//! - `tokenizer.ggml.model = "gpt2"`: byte-level BPE. The vocabulary and merges
//!   as the file spells them (in GPT-2's byte alphabet), the pre-tokenizer
//!   regexes llama.cpp uses for `tokenizer.ggml.pre` (a `Split` per regex, then
//!   `ByteLevel` without its own regex), `ignore_merges` where llama.cpp sets it
//!   (the Llama 3 family).
//! - `tokenizer.ggml.model = "llama"`: SentencePiece BPE with byte fallback. No
//!   merges are stored: they are recovered from the vocabulary and
//!   `tokenizer.ggml.scores` (a pair of tokens merges if their concatenation is
//!   a token; the higher that token's score, the earlier), as transformers'
//!   GGUF loader does; `▁` for spaces, and one prepended to each stretch of text
//!   when `tokenizer.ggml.add_space_prefix` (default true), as llama.cpp does.
//!
//! In both, the tokens typed control (3), unknown (2) and user-defined (4) are
//! added tokens, matched whole in the text before the model sees it (control
//! and unknown as special tokens, skipped when decoding); BOS/EOS are added by
//! a template post-processor when `add_bos_token`/`add_eos_token` say so (the
//! defaults are llama.cpp's).
//!
//! The conversion is pure: no I/O, every count bounded by the data given, and
//! every inconsistency (unknown model or pre-tokenizer, array lengths that
//! disagree, an id past the vocabulary, a merge of unknown tokens) is a
//! [`TokenizerConvertError`].

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};
use thiserror::Error;

/// `tokenizer.ggml.token_type` of an ordinary vocabulary entry.
pub const TOKEN_NORMAL: i32 = 1;
/// `tokenizer.ggml.token_type` of the unknown token (`<unk>`).
pub const TOKEN_UNKNOWN: i32 = 2;
/// `tokenizer.ggml.token_type` of a control token (`<s>`, `<|im_start|>`).
pub const TOKEN_CONTROL: i32 = 3;
/// `tokenizer.ggml.token_type` of a user-defined token, matched whole in text.
pub const TOKEN_USER_DEFINED: i32 = 4;
/// `tokenizer.ggml.token_type` of a reserved, unused entry.
pub const TOKEN_UNUSED: i32 = 5;
/// `tokenizer.ggml.token_type` of a byte token (`<0x0A>`, SentencePiece byte fallback).
pub const TOKEN_BYTE: i32 = 6;

/// The tokenizer metadata of a GGUF file: the `tokenizer.ggml.*` keys, as read
/// from the file (absent keys: `None`, or empty for the arrays).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: `"gpt2"` (byte-level BPE) or `"llama"` (SentencePiece).
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer name (`"default"`, `"llama-bpe"`,
    /// `"smollm"`, `"qwen2"`, …); `None` is llama.cpp's `"default"`.
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`: the vocabulary; a token's id is its index.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.token_type`: one per token (the `TOKEN_*` constants), or
    /// empty (every token normal).
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.merges`: BPE merges, `"left right"`, highest priority first.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.scores`: one per token (SentencePiece log-probabilities), or empty.
    pub scores: Vec<f32>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`.
    pub unk: Option<u32>,
    /// `tokenizer.ggml.padding_token_id` (checked, not used by encoding).
    pub pad: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`; `None` takes llama.cpp's default (true
    /// for `"llama"` and the Llama 3 pre-tokenizers, false otherwise).
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`; `None` is false.
    pub add_eos: Option<bool>,
    /// `tokenizer.ggml.add_space_prefix` (`"llama"` only); `None` is true.
    pub add_space_prefix: Option<bool>,
}

/// Why GGUF tokenizer metadata could not be converted.
#[derive(Debug, Error, PartialEq)]
pub enum TokenizerConvertError {
    /// `tokenizer.ggml.model` names a tokenizer this converter does not know.
    #[error("unsupported GGUF tokenizer model `{0}` (supported: gpt2, llama)")]
    UnknownModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer this converter does not know.
    #[error(
        "unsupported GGUF pre-tokenizer `{0}` for a gpt2 tokenizer (supported: {SUPPORTED_PRE})"
    )]
    UnknownPreTokenizer(String),
    /// `tokenizer.ggml.tokens` is empty or absent.
    #[error("the GGUF tokenizer has no tokens")]
    NoTokens,
    /// More tokens than a `u32` id can name.
    #[error("the GGUF tokenizer has {0} tokens, more than u32 ids can name")]
    TooManyTokens(usize),
    /// A per-token array whose length is not the vocabulary's.
    #[error("`tokenizer.ggml.{array}` has {len} entries for {tokens} tokens")]
    LengthMismatch {
        /// The array's key, after `tokenizer.ggml.`.
        array: &'static str,
        /// Its length.
        len: usize,
        /// The number of tokens.
        tokens: usize,
    },
    /// A special-token id past the vocabulary.
    #[error("`tokenizer.ggml.{key}` is {id}, but there are {tokens} tokens")]
    IdOutOfRange {
        /// The key, after `tokenizer.ggml.`.
        key: &'static str,
        /// The id.
        id: u32,
        /// The number of tokens.
        tokens: usize,
    },
    /// A merge that is not two tokens separated by a space.
    #[error("merge {index} `{merge}` is not `left right`")]
    BadMerge {
        /// Its index in `tokenizer.ggml.merges`.
        index: usize,
        /// The merge.
        merge: String,
    },
    /// A merge whose parts or result are not in the vocabulary.
    #[error("merge {index} `{merge}`: `{token}` is not in the vocabulary")]
    MergeOutOfVocabulary {
        /// Its index in `tokenizer.ggml.merges`.
        index: usize,
        /// The merge.
        merge: String,
        /// The missing token.
        token: String,
    },
    /// The JSON could not be written.
    #[error("cannot write the tokenizer JSON: {0}")]
    Json(String),
}

/// The `tokenizer.ggml.pre` names [`tokenizer_json`] supports, for the error message.
const SUPPORTED_PRE: &str = "default, gpt-2 and its aliases, llama-bpe/llama3 and aliases, \
                             smollm/starcoder and aliases, qwen2 and aliases";

/// llama.cpp's `"default"` BPE pre-tokenizer regexes (its `llm_tokenizer_bpe`).
const PRE_DEFAULT: &[&str] = &[
    r"[\p{P}\$\+<=>\^~\|]+",
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",
    r"\p{N}+",
    r"[0-9][0-9][0-9]",
];
/// GPT-2's regex, as llama.cpp's `LLAMA_VOCAB_PRE_TYPE_GPT2` writes it.
const PRE_GPT2: &[&str] =
    &[r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"];
/// `LLAMA_VOCAB_PRE_TYPE_SMOLLM` (and StarCoder, …): every digit alone, then GPT-2's.
const PRE_SMOLLM: &[&str] = &[
    r"\p{N}",
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",
];
/// `LLAMA_VOCAB_PRE_TYPE_LLAMA3`: Llama 3's regex (the case-insensitive
/// contractions spelled out, as llama.cpp adapts it).
const PRE_LLAMA3: &[&str] = &[
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
];
/// `LLAMA_VOCAB_PRE_TYPE_QWEN2`: Llama 3's regex with single digits.
const PRE_QWEN2: &[&str] = &[
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
];

/// How llama.cpp pre-tokenizes a gpt2 vocabulary named `pre`.
struct PreTokenizer {
    /// The regexes, applied in turn; matches and the text between are both pieces.
    regexes: &'static [&'static str],
    /// A piece that is itself a token is that token, merges or not.
    ignore_merges: bool,
    /// Whether BOS is added when the file does not say.
    add_bos: bool,
}

/// The pre-tokenizer llama.cpp (`llama_vocab::impl::load`) picks for `pre`.
fn pre_tokenizer(pre: Option<&str>) -> Result<PreTokenizer, TokenizerConvertError> {
    let plain = |regexes| PreTokenizer {
        regexes,
        ignore_merges: false,
        add_bos: false,
    };
    let name = pre.unwrap_or("default");
    Ok(match name {
        "" | "default" => plain(PRE_DEFAULT),
        "gpt-2" | "gpt2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es"
        | "jina-v2-de" | "a.x-4.0" | "mellum" | "modern-bert" | "jina-v1-en" | "jina-v2-code"
        | "roberta-bpe" | "exaone4" | "mpt" | "olmo" | "jais" => plain(PRE_GPT2),
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b" => {
            plain(PRE_SMOLLM)
        }
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => PreTokenizer {
            regexes: PRE_LLAMA3,
            ignore_merges: true,
            add_bos: true,
        },
        "dbrx" | "smaug-bpe" => plain(PRE_LLAMA3),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" | "stablelm2" => {
            plain(PRE_QWEN2)
        }
        other => {
            return Err(TokenizerConvertError::UnknownPreTokenizer(
                other.to_string(),
            ))
        }
    })
}

/// The bytes of a Hugging Face `tokenizer.json` equivalent to `vocab`.
///
/// # Errors
/// An unsupported `model` or `pre`, or metadata that is inconsistent (see
/// [`TokenizerConvertError`]).
pub fn tokenizer_json(vocab: &GgufVocab) -> Result<Vec<u8>, TokenizerConvertError> {
    check(vocab)?;
    let tokenizer = match vocab.model.as_str() {
        "gpt2" => byte_level_bpe(vocab)?,
        "llama" => sentencepiece_bpe(vocab)?,
        other => return Err(TokenizerConvertError::UnknownModel(other.to_string())),
    };
    serde_json::to_vec_pretty(&tokenizer).map_err(|e| TokenizerConvertError::Json(e.to_string()))
}

/// The checks every model shares: tokens present, per-token arrays as long as
/// the vocabulary, special ids inside it.
fn check(vocab: &GgufVocab) -> Result<(), TokenizerConvertError> {
    let tokens = vocab.tokens.len();
    if tokens == 0 {
        return Err(TokenizerConvertError::NoTokens);
    }
    if u32::try_from(tokens).is_err() {
        return Err(TokenizerConvertError::TooManyTokens(tokens));
    }
    for (array, len) in [
        ("token_type", vocab.token_types.len()),
        ("scores", vocab.scores.len()),
    ] {
        if len != 0 && len != tokens {
            return Err(TokenizerConvertError::LengthMismatch { array, len, tokens });
        }
    }
    for (key, id) in [
        ("bos_token_id", vocab.bos),
        ("eos_token_id", vocab.eos),
        ("unknown_token_id", vocab.unk),
        ("padding_token_id", vocab.pad),
    ] {
        if let Some(id) = id.filter(|&id| id as usize >= tokens) {
            return Err(TokenizerConvertError::IdOutOfRange { key, id, tokens });
        }
    }
    Ok(())
}

/// The type of token `id` (normal where the file gives no types).
fn token_type(vocab: &GgufVocab, id: usize) -> i32 {
    vocab.token_types.get(id).copied().unwrap_or(TOKEN_NORMAL)
}

/// GPT-2's byte alphabet: the printable character standing for each byte.
fn byte_alphabet() -> [char; 256] {
    let mut chars = ['\0'; 256];
    let mut next = 256u32;
    for (byte, slot) in chars.iter_mut().enumerate() {
        let b = byte as u32;
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        let code = if printable {
            b
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(code).unwrap_or('\0');
    }
    chars
}

/// The `tokenizer.json` of a `"gpt2"` (byte-level BPE) vocabulary.
fn byte_level_bpe(vocab: &GgufVocab) -> Result<Value, TokenizerConvertError> {
    let pre = pre_tokenizer(vocab.pre.as_deref())?;
    let alphabet: HashSet<char> = byte_alphabet().into_iter().collect();
    let spelling = byte_alphabet();
    let mut model_vocab = Map::new();
    for (id, token) in vocab.tokens.iter().enumerate() {
        // Tokens matched whole in the text keep their spelling, so the added
        // token finds its id; any other token outside the byte alphabet (a
        // file that stores raw text) is respelled in it, as transformers does.
        let raw = token.chars().all(|c| alphabet.contains(&c)) || is_added(token_type(vocab, id));
        let key = if raw {
            token.clone()
        } else {
            token.bytes().map(|b| spelling[b as usize]).collect()
        };
        model_vocab.insert(key, json!(id));
    }
    let merges = split_merges(&vocab.merges, &model_vocab)?;
    let splits: Vec<Value> = pre
        .regexes
        .iter()
        .map(|regex| {
            json!({"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false})
        })
        .collect();
    let byte_level = |kind: &str| json!({"type": kind, "add_prefix_space": false, "trim_offsets": false, "use_regex": false});
    let add_bos = vocab.add_bos.unwrap_or(pre.add_bos);
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens(vocab),
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": splits.into_iter()
            .chain([byte_level("ByteLevel")]).collect::<Vec<_>>()},
        "post_processor": post_processor(vocab, add_bos).unwrap_or_else(|| byte_level("ByteLevel")),
        "decoder": byte_level("ByteLevel"),
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": pre.ignore_merges,
            "vocab": model_vocab, "merges": merges,
        },
    }))
}

/// Whether a token of this type is matched whole in the text (an added token).
fn is_added(token_type: i32) -> bool {
    matches!(
        token_type,
        TOKEN_CONTROL | TOKEN_UNKNOWN | TOKEN_USER_DEFINED
    )
}

/// The file's `"left right"` merges as `[left, right]` pairs, each part and the
/// result checked against the vocabulary. The split is at the first space after
/// the first character, as llama.cpp splits (a part may start with a space).
fn split_merges(
    merges: &[String],
    vocab: &Map<String, Value>,
) -> Result<Vec<Value>, TokenizerConvertError> {
    merges
        .iter()
        .enumerate()
        .map(|(index, merge)| {
            let bad = || TokenizerConvertError::BadMerge {
                index,
                merge: merge.clone(),
            };
            let first = merge.chars().next().ok_or_else(bad)?.len_utf8();
            let space = merge[first..].find(' ').ok_or_else(bad)? + first;
            let (left, right) = (&merge[..space], &merge[space + 1..]);
            for token in [
                left.to_string(),
                right.to_string(),
                format!("{left}{right}"),
            ] {
                if !vocab.contains_key(&token) {
                    return Err(TokenizerConvertError::MergeOutOfVocabulary {
                        index,
                        merge: merge.clone(),
                        token,
                    });
                }
            }
            Ok(json!([left, right]))
        })
        .collect()
}

/// The `added_tokens` entries: control and unknown tokens as special tokens,
/// user-defined ones as plain added tokens, all matched on the raw text.
fn added_tokens(vocab: &GgufVocab) -> Vec<Value> {
    vocab
        .tokens
        .iter()
        .enumerate()
        .filter(|&(id, token)| is_added(token_type(vocab, id)) && !token.is_empty())
        .map(|(id, token)| {
            json!({
                "id": id, "content": token, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false,
                "special": token_type(vocab, id) != TOKEN_USER_DEFINED,
            })
        })
        .collect()
}

/// A template post-processor adding BOS (when `add_bos`) and EOS (when the file
/// says so), or `None` when neither is added or the file names no such token.
fn post_processor(vocab: &GgufVocab, add_bos: bool) -> Option<Value> {
    let bos = vocab.bos.filter(|_| add_bos);
    let eos = vocab.eos.filter(|_| vocab.add_eos.unwrap_or(false));
    if bos.is_none() && eos.is_none() {
        return None;
    }
    let name = |id: u32| vocab.tokens.get(id as usize).cloned().unwrap_or_default();
    let special = |id: u32| json!({"SpecialToken": {"id": name(id), "type_id": 0}});
    let sequence = |seq: &str| json!({"Sequence": {"id": seq, "type_id": 0}});
    let template = |seq: &str| -> Vec<Value> {
        bos.map(special)
            .into_iter()
            .chain([sequence(seq)])
            .chain(eos.map(special))
            .collect()
    };
    let mut special_tokens = Map::new();
    for id in bos.into_iter().chain(eos) {
        special_tokens.insert(
            name(id),
            json!({"id": name(id), "ids": [id], "tokens": [name(id)]}),
        );
    }
    let mut pair = template("A");
    pair.extend(template("B"));
    Some(json!({
        "type": "TemplateProcessing", "single": template("A"), "pair": pair,
        "special_tokens": special_tokens,
    }))
}

/// The `tokenizer.json` of a `"llama"` (SentencePiece BPE, byte fallback)
/// vocabulary. Absent special ids take llama.cpp's SentencePiece defaults
/// (`<unk>` 0, BOS 1, EOS 2).
fn sentencepiece_bpe(vocab: &GgufVocab) -> Result<Value, TokenizerConvertError> {
    let default = |id: Option<u32>, fallback: u32| {
        id.or(Some(fallback).filter(|&f| (f as usize) < vocab.tokens.len()))
    };
    // `check` saw at least one token, so 0 is one.
    let unk = vocab.unk.unwrap_or(0);
    let vocab = &GgufVocab {
        bos: default(vocab.bos, 1),
        eos: default(vocab.eos, 2),
        ..vocab.clone()
    };
    let mut model_vocab = Map::new();
    for (id, token) in vocab.tokens.iter().enumerate() {
        model_vocab.insert(token.clone(), json!(id));
    }
    let prefix = vocab.add_space_prefix.unwrap_or(true);
    let mut decoders = vec![
        json!({"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "}),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if prefix {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    // llama.cpp prefixes a space to every stretch of text (the first, and each
    // after an added token) and always, even before a space: a normalizer,
    // which runs on each stretch between added tokens. (`Metaspace` with
    // `prepend_scheme: first` would skip text that starts with a space.)
    let space = json!({"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"});
    let normalizer = if prefix {
        json!({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u{2581}"}, space]})
    } else {
        space
    };
    let add_bos = vocab.add_bos.unwrap_or(true);
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens(vocab),
        "normalizer": normalizer,
        "pre_tokenizer": null,
        "post_processor": post_processor(vocab, add_bos),
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {
            "type": "BPE", "dropout": null,
            "unk_token": vocab.tokens.get(unk as usize),
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
            "vocab": model_vocab, "merges": sentencepiece_merges(vocab),
        },
    }))
}

/// The merges a SentencePiece vocabulary implies: every split of a token into
/// two tokens, ordered as transformers' `generate_merges` orders them (the
/// merged token's score, highest first; then the longer left part, the longer
/// right part; then the merged token's id and the parts' ids).
fn sentencepiece_merges(vocab: &GgufVocab) -> Vec<Value> {
    let ids: HashMap<&str, usize> = vocab
        .tokens
        .iter()
        .enumerate()
        .map(|(id, token)| (token.as_str(), id))
        .collect();
    let score = |id: usize| vocab.scores.get(id).copied().unwrap_or(0.0);
    // (score, left chars, right chars, token id, left id, right id, split byte)
    let mut merges: Vec<(f32, usize, usize, usize, usize, usize, usize)> = Vec::new();
    for (id, token) in vocab.tokens.iter().enumerate() {
        let chars = token.chars().count();
        for (index, (at, _)) in token.char_indices().enumerate().skip(1) {
            if let (Some(&left), Some(&right)) = (ids.get(&token[..at]), ids.get(&token[at..])) {
                merges.push((score(id), index, chars - index, id, left, right, at));
            }
        }
    }
    merges.sort_by(|a, b| {
        (b.0.total_cmp(&a.0))
            .then(b.1.cmp(&a.1))
            .then(b.2.cmp(&a.2))
            .then((a.3, a.4, a.5).cmp(&(b.3, b.4, b.5)))
    });
    merges
        .into_iter()
        .map(|(_, _, _, id, _, _, at)| {
            let token = &vocab.tokens[id];
            json!([&token[..at], &token[at..]])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> GgufVocab {
        GgufVocab {
            model: "gpt2".into(),
            pre: Some("smollm".into()),
            tokens: ["<|endoftext|>", "a", "b", "ab", " x"]
                .iter()
                .map(|t| t.to_string())
                .collect(),
            token_types: vec![3, 1, 1, 1, 1],
            merges: vec!["a b".into()],
            bos: Some(0),
            ..GgufVocab::default()
        }
    }

    fn converted(vocab: &GgufVocab) -> Value {
        serde_json::from_slice(&tokenizer_json(vocab).unwrap()).unwrap()
    }

    #[test]
    fn gpt2_layout() {
        let json = converted(&tiny());
        let model = &json["model"];
        assert_eq!(model["type"], "BPE");
        assert_eq!(model["merges"], json!([["a", "b"]]));
        assert_eq!(model["vocab"]["ab"], 3);
        // A normal token outside the byte alphabet is respelled in it.
        assert_eq!(model["vocab"]["Ġx"], 4);
        assert_eq!(model["ignore_merges"], false);
        let pre = json["pre_tokenizer"]["pretokenizers"].as_array().unwrap();
        assert_eq!(pre.len(), 3);
        assert_eq!(pre[0]["pattern"]["Regex"], r"\p{N}");
        assert_eq!(pre[2]["type"], "ByteLevel");
        assert_eq!(json["added_tokens"][0]["content"], "<|endoftext|>");
        assert_eq!(json["added_tokens"][0]["special"], true);
        assert_eq!(json["added_tokens"].as_array().unwrap().len(), 1);
        // add_bos unset: smollm adds none, so no template.
        assert_eq!(json["post_processor"]["type"], "ByteLevel");
    }

    #[test]
    fn byte_alphabet_is_gpt2s() {
        let a = byte_alphabet();
        assert_eq!(
            (a[b' ' as usize], a[b'\n' as usize], a[b'A' as usize]),
            ('Ġ', 'Ċ', 'A')
        );
        assert_eq!(a.iter().collect::<HashSet<_>>().len(), 256);
    }

    #[test]
    fn unknown_model_and_pre_are_named_errors() {
        let mut v = tiny();
        v.model = "t5".into();
        assert_eq!(
            tokenizer_json(&v),
            Err(TokenizerConvertError::UnknownModel("t5".into()))
        );
        let mut v = tiny();
        v.pre = Some("tekken".into());
        assert_eq!(
            tokenizer_json(&v),
            Err(TokenizerConvertError::UnknownPreTokenizer("tekken".into()))
        );
    }

    #[test]
    fn inconsistent_metadata_is_refused() {
        let mut v = tiny();
        v.tokens.clear();
        v.token_types.clear();
        assert_eq!(tokenizer_json(&v), Err(TokenizerConvertError::NoTokens));
        let mut v = tiny();
        v.token_types.pop();
        assert!(matches!(
            tokenizer_json(&v),
            Err(TokenizerConvertError::LengthMismatch {
                array: "token_type",
                len: 4,
                tokens: 5
            })
        ));
        let mut v = tiny();
        v.eos = Some(5);
        assert!(matches!(
            tokenizer_json(&v),
            Err(TokenizerConvertError::IdOutOfRange { id: 5, .. })
        ));
        let mut v = tiny();
        v.merges = vec!["ab".into()];
        assert!(matches!(
            tokenizer_json(&v),
            Err(TokenizerConvertError::BadMerge { index: 0, .. })
        ));
        let mut v = tiny();
        v.merges.push("b a".into());
        assert!(matches!(
            tokenizer_json(&v),
            Err(TokenizerConvertError::MergeOutOfVocabulary { index: 1, ref token, .. }) if token == "ba"
        ));
        let mut v = tiny();
        v.merges = vec!["".into()];
        assert!(matches!(
            tokenizer_json(&v),
            Err(TokenizerConvertError::BadMerge { .. })
        ));
    }

    #[test]
    fn sentencepiece_merges_follow_scores() {
        let v = GgufVocab {
            model: "llama".into(),
            tokens: ["<unk>", "▁", "a", "b", "▁a", "ab", "▁ab"]
                .iter()
                .map(|t| t.to_string())
                .collect(),
            scores: vec![0.0, -1.0, -2.0, -3.0, -5.0, -4.0, -6.0],
            unk: Some(0),
            add_bos: Some(false),
            ..GgufVocab::default()
        };
        let json = converted(&v);
        // `ab` (-4) before `▁a` (-5); for `▁ab` the longer left part first.
        assert_eq!(
            json["model"]["merges"],
            json!([["a", "b"], ["▁", "a"], ["▁a", "b"], ["▁", "ab"]])
        );
        assert_eq!(json["model"]["unk_token"], "<unk>");
        assert_eq!(json["post_processor"], Value::Null);
        // No unknown id: llama.cpp's default, 0; BOS added by default: id 1.
        let defaults = GgufVocab {
            unk: None,
            add_bos: None,
            ..v
        };
        let json = converted(&defaults);
        assert_eq!(json["model"]["unk_token"], "<unk>");
        assert_eq!(
            json["post_processor"]["special_tokens"]["▁"]["ids"],
            json!([1])
        );
    }
}
