//! `seam generate --prompt TEXT` on the `llama` fixture, whose folder holds a
//! tiny BPE tokenizer.json: `seam compile` embeds it, and the prompt's ids, the
//! greedy continuation and its decoded text equal what transformers produced
//! (tests/fixtures/hf/llama/tokenizer_expected.json, written by make_fixtures.py).
//! Also `--tokenizer` for a bundle without one, and the errors: no tokenizer,
//! both prompt forms, malformed tokenizer.json.

use std::path::Path;

#[path = "support/cli.rs"]
mod cli;
use cli::{compile_small, llama_copy, llama_fixture, scratch, seam, text as text_of};

/// What transformers did with the fixture's tokenizer and model.
struct Expected {
    prompt_text: String,
    prompt: Vec<i64>,
    generated: Vec<i64>,
    generated_text: String,
}

fn expected() -> Expected {
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(llama_fixture().join("tokenizer_expected.json")).unwrap(),
    )
    .unwrap();
    let ids = |key: &str| -> Vec<i64> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect()
    };
    Expected {
        prompt_text: json["prompt_text"].as_str().unwrap().to_string(),
        prompt: ids("prompt"),
        generated: ids("generated"),
        generated_text: json["generated_text"].as_str().unwrap().to_string(),
    }
}

/// The comma-separated ids after `prefix` on a line of the output.
fn ids_after(out: &str, prefix: &str) -> Vec<i64> {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{out}"));
    let ids = line.split_whitespace().next().unwrap();
    ids.split(',').map(|x| x.parse().unwrap()).collect()
}

/// Runs `seam generate --prompt` (plus `extra`) and checks ids and text against transformers.
fn assert_generates_like_transformers(bundle: &Path, extra: &[&str]) {
    let want = expected();
    let mut args = vec![
        "generate",
        bundle.to_str().unwrap(),
        "--prompt",
        &want.prompt_text,
        "--max-new-tokens",
        "16",
    ];
    args.extend_from_slice(extra);
    let o = seam(&args);
    let out = text_of(&o);
    assert!(o.status.success(), "{out}");
    assert_eq!(ids_after(&out, "prompt: "), want.prompt, "{out}");
    assert_eq!(ids_after(&out, "generated: "), want.generated, "{out}");
    let text = out.lines().find_map(|l| l.strip_prefix("text: "));
    assert_eq!(text, Some(want.generated_text.as_str()), "{out}");
}

#[test]
fn a_text_prompt_generates_what_transformers_generates() {
    let d = scratch("embedded");
    let bundle = d.join("llama.seamb");
    let o = compile_small(&llama_fixture(), &bundle);
    assert!(o.status.success(), "{}", text_of(&o));
    assert!(
        text_of(&o).contains("embedding the tokenizer"),
        "{}",
        text_of(&o)
    );
    assert_generates_like_transformers(&bundle, &[]);

    // Ids in, ids and text out: the embedded tokenizer decodes them too.
    let want = expected();
    let ids: Vec<String> = want.prompt.iter().map(ToString::to_string).collect();
    let o = seam(&[
        "generate",
        bundle.to_str().unwrap(),
        "--prompt-ids",
        &ids.join(","),
    ]);
    let out = text_of(&o);
    assert!(o.status.success(), "{out}");
    assert_eq!(ids_after(&out, "generated: "), want.generated, "{out}");
    assert!(
        out.contains(&format!("text: {}", want.generated_text)),
        "{out}"
    );

    let o = seam(&["inspect", bundle.to_str().unwrap()]);
    assert!(text_of(&o).contains("section tokenizer"), "{}", text_of(&o));
}

#[test]
fn tokenizers_are_given_explicitly_or_the_error_says_how() {
    let d = scratch("explicit");
    let ckpt = llama_copy(&d, &["config.json", "model.safetensors"]);
    let bundle = d.join("plain.seamb");
    let o = compile_small(&ckpt, &bundle);
    assert!(o.status.success(), "{}", text_of(&o));
    assert!(!text_of(&o).contains("tokenizer"), "{}", text_of(&o));
    let b = bundle.to_str().unwrap();

    let refused = |args: &[&str], code: i32, says: &[&str]| {
        let mut all = vec!["generate", b];
        all.extend_from_slice(args);
        let o = seam(&all);
        let out = text_of(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {out}");
        assert!(!out.contains("panicked"), "{out}");
        for needle in says {
            assert!(
                out.contains(needle),
                "{args:?}: expected `{needle}` in {out}"
            );
        }
    };
    refused(&["--prompt", "tiny"], 2, &["holds none", "--tokenizer"]);
    refused(
        &["--prompt", "tiny", "--prompt-ids", "1"],
        2,
        &["cannot be used with"],
    );

    let given = llama_fixture().join("tokenizer.json");
    assert_generates_like_transformers(&bundle, &["--tokenizer", given.to_str().unwrap()]);

    let bad = d.join("bad.json");
    std::fs::write(&bad, br#"{"model": {"type": "BPE", "vocab": 3}}"#).unwrap();
    refused(
        &["--prompt", "tiny", "--tokenizer", bad.to_str().unwrap()],
        1,
        &["bad.json", "not a valid tokenizer.json"],
    );

    // A malformed tokenizer.json beside the checkpoint stops the compile, naming it.
    std::fs::write(ckpt.join("tokenizer.json"), "{ not json").unwrap();
    let out = d.join("never.seamb");
    let o = compile_small(&ckpt, &out);
    let err = text_of(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("tokenizer.json"), "{err}");
    assert!(!out.exists(), "a bundle was written despite the error");
}
