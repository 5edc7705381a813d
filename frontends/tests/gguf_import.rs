//! The GGUF importer on GGUF files made from the Hugging Face fixtures the way
//! llama.cpp's converter lays them out (tests/gguf_support): the same model and
//! weights as importing the checkpoint (exactly, for F32), q/k un-permuted,
//! blocks kept as encodings that decode to the imported values, and hostile
//! files refused with named errors.

mod gguf_support;

use std::path::Path;

use gguf_support::*;
use seam_core::quant::{dequantize, GgmlType};
use seam_frontends::gguf::{self, GgufError, GgufImport};
use seam_frontends::hf::{self, ImportOptions, Imported};
use seam_ir::{evaluate, read_npy, Tensor};

fn import_gguf(path: &Path) -> Result<GgufImport, GgufError> {
    gguf::import(path, &ImportOptions::default())
}

/// Writes `w` to `<scratch for test>/<name>.gguf` and imports it.
fn write_and_import(w: &Writer, test: &str, name: &str) -> GgufImport {
    let path = scratch(test).join(format!("{name}.gguf"));
    w.write(&path);
    import_gguf(&path).unwrap_or_else(|e| panic!("{test}: {e}"))
}

fn logits(m: &Imported, ids: &[i32]) -> Vec<f32> {
    let input = Tensor::i32(vec![ids.len()], ids.to_vec()).unwrap();
    evaluate(&m.model, "forward", &m.weights, &[input])
        .unwrap()
        .remove(0)
        .to_f32_vec()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

const PROMPT: [i32; 8] = [1, 5, 9, 77, 3, 120, 64, 2];

/// Every param with an encoding holds exactly what its blocks decode to
/// (rows of the encoding are the param's `[.., K, N]` columns).
fn assert_encodings_decode_to_values(m: &Imported) -> usize {
    let mut checked = 0;
    for (i, decl) in m.model.params.iter().enumerate() {
        let id = seam_ir::ParamId(i as u32);
        let Some(enc) = m.weights.encoding(id) else {
            continue;
        };
        let (rows, k) = (enc.rows as usize, enc.k as usize);
        let mut decoded = vec![0f32; rows * k];
        dequantize(ggml(enc.format), &enc.bytes, &mut decoded).unwrap();
        let values = m.weights.tensors()[i].to_f32_vec();
        let shape = decl.sizes();
        let n = shape[shape.len() - 1];
        // Param [.., K, N]: element (lead, kk, col) is row lead·N + col, weight kk.
        for (idx, v) in values.iter().enumerate() {
            let (lead, rest) = (idx / (k * n), idx % (k * n));
            let (kk, col) = (rest / n, rest % n);
            let row = lead * n + col;
            assert_eq!(
                decoded[row * k + kk].to_bits(),
                v.to_bits(),
                "{} at {idx}",
                decl.name
            );
        }
        checked += 1;
    }
    checked
}

fn same_model(a: &Imported, b: &Imported) {
    assert_eq!(a.family, b.family);
    let names = |m: &Imported| {
        m.model
            .params
            .iter()
            .map(|p| (p.name.clone(), p.sizes()))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(a), names(b));
}

#[test]
fn f32_llama_gguf_imports_the_checkpoints_weights_exactly_and_matches_the_reference() {
    let g = write_and_import(&fixture_gguf("llama", GgmlType::F32), "f32_llama", "llama");
    let h = hf::import(&fixture("llama"), &ImportOptions::default()).unwrap();
    same_model(&g.imported, &h);
    assert_eq!(
        g.imported.weights.tensors(),
        h.weights.tensors(),
        "q/k rows un-permuted, biases too"
    );
    // Against transformers' recorded logits (the q/k permutation undone, or RoPE would differ).
    let json = std::fs::read_to_string(fixture("llama").join("expected.json")).unwrap();
    let start = json.find("\"prompt\"").unwrap();
    let open = start + json[start..].find('[').unwrap();
    let close = open + json[open..].find(']').unwrap();
    let prompt: Vec<i32> = json[open + 1..close]
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let expected = read_npy(&std::fs::read(fixture("llama").join("logits.npy")).unwrap()).unwrap();
    let err = max_abs_diff(&logits(&g.imported, &prompt), &expected.to_f32_vec());
    assert!(err <= 1e-4, "max |Δlogit| vs transformers {err}");
    let err = max_abs_diff(&logits(&g.imported, &PROMPT), &logits(&h, &PROMPT));
    assert!(err <= 1e-5, "max |Δlogit| vs the checkpoint import {err}");
    assert_eq!(g.types.len(), 1);
    assert!(g.conversions.is_empty());
    assert_eq!(
        assert_encodings_decode_to_values(&g.imported),
        0,
        "f32 weights carry no encoding"
    );
}

/// A GGUF of `name` with 2-D weights in `ty` imports to the checkpoint whose
/// 2-D weights went through `ty` and back, with encodings on its linear weights.
fn quantized_matches_round_tripped_checkpoint(name: &str, ty: GgmlType, test: &str) {
    let g = write_and_import(&fixture_gguf(name, ty), test, name);
    let dir = round_tripped_fixture(name, ty, &scratch(&format!("{test}-ref")));
    let h = hf::import(&dir, &ImportOptions::default()).unwrap();
    same_model(&g.imported, &h);
    assert_eq!(g.imported.weights.tensors(), h.weights.tensors());
    let err = max_abs_diff(&logits(&g.imported, &PROMPT), &logits(&h, &PROMPT));
    assert!(err <= 1e-5, "{name} {ty}: max |Δlogit| {err}");
    let encoded = assert_encodings_decode_to_values(&g.imported);
    // Every matrix but the embedding table (gathered, not multiplied) and
    // Qwen2-MoE's shared-expert gate (a vector in GGUF files, so F32) is encoded.
    let linear = g
        .imported
        .model
        .params
        .iter()
        .filter(|p| p.sizes().len() >= 2);
    let stored_as_ty = linear
        .filter(|p| !p.name.ends_with("shared_expert_gate"))
        .count();
    assert_eq!(encoded, stored_as_ty - 1, "{name} {ty}: encoded params");
    for i in 0..g.imported.model.params.len() {
        if let Some(e) = g.imported.weights.encoding(seam_ir::ParamId(i as u32)) {
            assert_eq!(e.format, ty.kernel_format());
        }
    }
}

#[test]
fn q8_0_llama_gguf_imports_its_blocks_and_evaluates_as_the_dequantized_weights() {
    quantized_matches_round_tripped_checkpoint("llama", GgmlType::Q8_0, "q8_llama");
}

#[test]
fn f16_llama_gguf_imports_its_halves() {
    quantized_matches_round_tripped_checkpoint("llama", GgmlType::F16, "f16_llama");
}

#[test]
fn moe_ggufs_import_the_checkpoints_weights_exactly() {
    for name in ["mixtral", "qwen2_moe", "olmoe"] {
        let g = write_and_import(
            &fixture_gguf(name, GgmlType::F32),
            &format!("moe_{name}"),
            name,
        );
        let h = hf::import(&fixture(name), &ImportOptions::default()).unwrap();
        same_model(&g.imported, &h);
        assert_eq!(g.imported.weights.tensors(), h.weights.tensors(), "{name}");
        let err = max_abs_diff(&logits(&g.imported, &PROMPT), &logits(&h, &PROMPT));
        assert!(err <= 1e-5, "{name}: max |Δlogit| {err}");
    }
}

#[test]
fn f16_moe_ggufs_keep_fused_expert_blocks() {
    for name in ["mixtral", "qwen2_moe", "olmoe"] {
        quantized_matches_round_tripped_checkpoint(name, GgmlType::F16, &format!("f16_{name}"));
    }
}

/// The param `name`'s values as the GGUF tensor's torch `[out, in]` layout.
fn as_stored(m: &Imported, name: &str) -> Vec<f32> {
    let i = m.model.params.iter().position(|p| p.name == name).unwrap();
    let shape = m.model.params[i].sizes();
    let (k, n) = (shape[0], shape[1]);
    let v = m.weights.tensors()[i].to_f32_vec();
    (0..n * k).map(|j| v[(j % k) * n + j / k]).collect()
}

fn decoded(ty: GgmlType, bytes: &[u8]) -> Vec<f32> {
    let mut out = vec![0f32; bytes.len() / ty.block_bytes() as usize * ty.block_elems() as usize];
    dequantize(ty, bytes, &mut out).unwrap();
    out
}

#[test]
fn q4_k_blocks_are_kept_as_they_are() {
    let w = wide_llama(GgmlType::Q4K, |shape, seed| {
        encode(GgmlType::Q4K, &noise(seed, shape[0] * shape[1]))
    });
    let g = write_and_import(&w, "q4_k", "wide");
    assert!(g.conversions.is_empty(), "{:?}", g.conversions);
    let counts: Vec<(GgmlType, usize)> = g.types.iter().map(|t| (t.ty, t.tensors)).collect();
    assert_eq!(counts, [(GgmlType::Q4K, 9), (GgmlType::F32, 3)]);
    // 7 projections + the untied output; not the embedding.
    assert_eq!(assert_encodings_decode_to_values(&g.imported), 8);
    let v = &w
        .tensors
        .iter()
        .find(|t| t.name == "blk.0.attn_v.weight")
        .unwrap()
        .data;
    assert!(as_stored(&g.imported, "model.layers.0.self_attn.v_proj") == decoded(GgmlType::Q4K, v));
    let out = logits(&g.imported, &[1, 2, 3]);
    assert!(out.iter().all(|x| x.is_finite()));
}

#[test]
fn q6_k_weights_are_converted_to_q8_0_and_the_summary_says_so() {
    let w = wide_llama(GgmlType::Q6K, |shape, seed| {
        random_q6_k(seed, shape[0] * shape[1])
    });
    let g = write_and_import(&w, "q6_k", "wide");
    let conv: Vec<_> = g
        .conversions
        .iter()
        .map(|c| (c.from, c.to, c.tensors))
        .collect();
    // Eight matrices are read as weights of products (the embedding is only gathered).
    assert_eq!(conv, [(GgmlType::Q6K, seam_ir::WeightFormat::Q8_0, 8)]);
    assert_eq!(assert_encodings_decode_to_values(&g.imported), 8);
    let v = &w
        .tensors
        .iter()
        .find(|t| t.name == "blk.0.attn_v.weight")
        .unwrap()
        .data;
    let requantized = round_trip(GgmlType::Q8_0, &decoded(GgmlType::Q6K, v));
    assert!(as_stored(&g.imported, "model.layers.0.self_attn.v_proj") == requantized);
    // The embedding is decoded from Q6_K as is.
    let e = &w
        .tensors
        .iter()
        .find(|t| t.name == "token_embd.weight")
        .unwrap()
        .data;
    let i = g
        .imported
        .model
        .params
        .iter()
        .position(|p| p.name == "model.embed_tokens")
        .unwrap();
    assert!(g.imported.weights.tensors()[i].to_f32_vec() == decoded(GgmlType::Q6K, e));
}

#[test]
fn the_tokenizer_metadata_is_carried() {
    let mut w = fixture_gguf("llama", GgmlType::F32);
    w.str("tokenizer.ggml.model", "llama")
        .str("tokenizer.ggml.pre", "default")
        .str_array("tokenizer.ggml.tokens", &["<unk>", "<s>", "</s>", "▁a"])
        .str_array("tokenizer.ggml.merges", &["▁ a"])
        .i32_array("tokenizer.ggml.token_type", &[2, 3, 3, 1])
        .u32("tokenizer.ggml.bos_token_id", 1)
        .u32("tokenizer.ggml.eos_token_id", 2)
        .bool("tokenizer.ggml.add_bos_token", true)
        .str("tokenizer.chat_template", "{{ messages }}");
    let g = write_and_import(&w, "vocab", "llama");
    let v = g.vocab.unwrap();
    assert_eq!(
        (v.model.as_str(), v.pre.as_deref()),
        ("llama", Some("default"))
    );
    assert_eq!(v.tokens, ["<unk>", "<s>", "</s>", "▁a"]);
    assert_eq!(v.merges, ["▁ a"]);
    assert_eq!(v.token_types, [2, 3, 3, 1]);
    assert_eq!((v.bos, v.eos, v.add_bos), (Some(1), Some(2), Some(true)));
    assert_eq!(g.chat_template.as_deref(), Some("{{ messages }}"));
    assert!(gguf::tokenizer::tokenizer_json(&v).is_ok());
    assert_eq!(g.name.as_deref(), Some("llama"));
    assert_eq!(
        g.metadata.get("llama.block_count").and_then(|v| v.as_u64()),
        Some(2)
    );

    w.u32("tokenizer.ggml.tokens", 7);
    let path = scratch("vocab_bad").join("m.gguf");
    w.write(&path);
    let err = import_gguf(&path).err().unwrap();
    assert!(
        matches!(&err, GgufError::Key { key, .. } if key == "tokenizer.ggml.tokens"),
        "{err}"
    );
}

/// The files llama.cpp's own `convert_hf_to_gguf.py` made of the `llama`
/// fixture (tests/fixtures/gguf), against what transformers computes from them.
fn llama_cpp_fixture(file: &str, logits_file: &str) -> f32 {
    let dir = fixture("llama").join("../../gguf/llama");
    let json = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    let start = json.find("\"prompt\"").unwrap();
    let open = start + json[start..].find('[').unwrap();
    let close = open + json[open..].find(']').unwrap();
    let prompt: Vec<i32> = json[open + 1..close]
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let g = import_gguf(&dir.join(file)).unwrap();
    assert_encodings_decode_to_values(&g.imported);
    let expected = read_npy(&std::fs::read(dir.join(logits_file)).unwrap()).unwrap();
    max_abs_diff(&logits(&g.imported, &prompt), &expected.to_f32_vec())
}

#[test]
fn llama_cpp_converted_files_match_transformers_reading_them() {
    let err = llama_cpp_fixture("model-f32.gguf", "logits-f32.npy");
    assert!(err <= 1e-4, "f32: max |Δlogit| {err}");
    let err = llama_cpp_fixture("model-q8_0.gguf", "logits-q8_0.npy");
    assert!(err <= 1e-4, "q8_0: max |Δlogit| {err}");
    // The F32 file holds the checkpoint's weights exactly (q/k permutation undone).
    let dir = fixture("llama").join("../../gguf/llama");
    let g = import_gguf(&dir.join("model-f32.gguf")).unwrap();
    let h = hf::import(&fixture("llama"), &ImportOptions::default()).unwrap();
    assert_eq!(g.imported.weights.tensors(), h.weights.tensors());
    assert!(gguf::tokenizer::tokenizer_json(&g.vocab.unwrap()).is_ok());
}
