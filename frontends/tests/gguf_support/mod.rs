//! Test support: a small GGUF writer, and GGUF files made from the Hugging
//! Face fixtures (tests/fixtures/hf) the way llama.cpp's `convert_hf_to_gguf.py`
//! lays them out: llama.cpp names, fused `[E, out, in]` expert tensors, q/k rows
//! permuted for the `llama` architecture, 2-D weights in a chosen type, 1-D
//! tensors in F32.

#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::SafeTensors;
use seam_core::quant::{quantize, GgmlType};
use seam_ir::WeightFormat;
use serde_json::Value;

/// A fixture's checkpoint folder.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/hf")
        .join(name)
}

/// A fresh scratch folder for one test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seam-gguf-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One tensor to write: name, dims in ggml order, type id, bytes, and an
/// offset to write instead of the computed one.
#[derive(Clone, Debug)]
pub struct RawTensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub type_id: u32,
    pub data: Vec<u8>,
    pub offset: Option<u64>,
}

/// A GGUF v3 file being assembled.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    /// `(key, value type id, value bytes)`.
    pub kvs: Vec<(String, u32, Vec<u8>)>,
    pub tensors: Vec<RawTensor>,
    pub alignment: Option<u64>,
}

/// Byte offsets of a written file's sections.
#[derive(Clone, Debug)]
pub struct Layout {
    pub metadata_start: usize,
    pub infos_start: usize,
    pub data_start: usize,
}

/// A GGUF string's bytes.
pub fn gguf_str(s: &str) -> Vec<u8> {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(s.as_bytes());
    b
}

impl Writer {
    pub fn u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.raw_kv(key, 4, v.to_le_bytes().to_vec())
    }
    pub fn u64(&mut self, key: &str, v: u64) -> &mut Self {
        self.raw_kv(key, 10, v.to_le_bytes().to_vec())
    }
    pub fn f32(&mut self, key: &str, v: f32) -> &mut Self {
        self.raw_kv(key, 6, v.to_le_bytes().to_vec())
    }
    pub fn bool(&mut self, key: &str, v: bool) -> &mut Self {
        self.raw_kv(key, 7, vec![v as u8])
    }
    pub fn str(&mut self, key: &str, v: &str) -> &mut Self {
        self.raw_kv(key, 8, gguf_str(v))
    }
    pub fn str_array(&mut self, key: &str, items: &[&str]) -> &mut Self {
        let mut b = 8u32.to_le_bytes().to_vec();
        b.extend_from_slice(&(items.len() as u64).to_le_bytes());
        for s in items {
            b.extend(gguf_str(s));
        }
        self.raw_kv(key, 9, b)
    }
    pub fn i32_array(&mut self, key: &str, items: &[i32]) -> &mut Self {
        let mut b = 5u32.to_le_bytes().to_vec();
        b.extend_from_slice(&(items.len() as u64).to_le_bytes());
        for v in items {
            b.extend_from_slice(&v.to_le_bytes());
        }
        self.raw_kv(key, 9, b)
    }
    /// Sets `key` to a value of type id `ty` with these bytes (replacing it
    /// where it was, or appending it).
    pub fn raw_kv(&mut self, key: &str, ty: u32, bytes: Vec<u8>) -> &mut Self {
        match self.kvs.iter_mut().find(|kv| kv.0 == key) {
            Some(kv) => *kv = (key.to_string(), ty, bytes),
            None => self.kvs.push((key.to_string(), ty, bytes)),
        }
        self
    }

    /// Adds a tensor of torch shape `shape` (slowest first) with its bytes.
    pub fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        ty: GgmlType,
        data: Vec<u8>,
    ) -> &mut Self {
        self.tensors.push(RawTensor {
            name: name.to_string(),
            dims: shape.iter().rev().map(|&d| d as u64).collect(),
            type_id: ty.id(),
            data,
            offset: None,
        });
        self
    }

    /// Adds an f32 tensor of torch shape `shape` stored as `ty`.
    pub fn values(
        &mut self,
        name: &str,
        shape: &[usize],
        ty: GgmlType,
        values: &[f32],
    ) -> &mut Self {
        let data = encode(ty, values);
        self.tensor(name, shape, ty, data)
    }

    /// The file's bytes and section offsets.
    pub fn build(&self) -> (Vec<u8>, Layout) {
        let align = self.alignment.unwrap_or(32) as usize;
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        let alignment_kv = self.alignment.map(|a| {
            (
                "general.alignment".to_string(),
                4u32,
                (a as u32).to_le_bytes().to_vec(),
            )
        });
        let kvs: Vec<_> = alignment_kv
            .into_iter()
            .chain(self.kvs.iter().cloned())
            .collect();
        b.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
        let metadata_start = b.len();
        for (k, ty, v) in &kvs {
            b.extend(gguf_str(k));
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(v);
        }
        let infos_start = b.len();
        let mut next = 0usize;
        let mut offsets = Vec::new();
        for t in &self.tensors {
            b.extend(gguf_str(&t.name));
            b.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                b.extend_from_slice(&d.to_le_bytes());
            }
            b.extend_from_slice(&t.type_id.to_le_bytes());
            offsets.push(next);
            b.extend_from_slice(&t.offset.unwrap_or(next as u64).to_le_bytes());
            next += t.data.len().div_ceil(align) * align;
        }
        let data_start = b.len().div_ceil(align) * align;
        b.resize(data_start, 0);
        for (t, off) in self.tensors.iter().zip(offsets) {
            b.resize(data_start + off, 0);
            b.extend_from_slice(&t.data);
        }
        (
            b,
            Layout {
                metadata_start,
                infos_start,
                data_start,
            },
        )
    }

    /// Writes the file to `path`.
    pub fn write(&self, path: &Path) -> Vec<u8> {
        let (bytes, _) = self.build();
        std::fs::write(path, &bytes).unwrap();
        bytes
    }
}

/// `values` encoded as `ty` (a float type or a format with a quantizer).
pub fn encode(ty: GgmlType, values: &[f32]) -> Vec<u8> {
    match ty {
        GgmlType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        other => quantize(other.kernel_format(), values).unwrap(),
    }
}

/// `values` after a round trip through `ty` (what an importer must decode).
pub fn round_trip(ty: GgmlType, values: &[f32]) -> Vec<f32> {
    if ty == GgmlType::F32 {
        return values.to_vec();
    }
    let mut out = vec![0f32; values.len()];
    seam_core::quant::dequantize(ty, &encode(ty, values), &mut out).unwrap();
    out
}

/// Every tensor of a fixture's safetensors files: name → (shape, f32 values).
pub fn fixture_tensors(name: &str) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "safetensors") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        for (n, view) in st.tensors() {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            out.insert(n, (view.shape().to_vec(), values));
        }
    }
    out
}

/// A fixture's config.json.
pub fn fixture_config(name: &str) -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(fixture(name).join("config.json")).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

/// llama.cpp's `LlamaModel.permute`: `reshape(heads, 2, rows/heads/2, cols)
/// .swapaxes(1, 2)` over the rows of a `[rows, cols]` tensor.
pub fn llama_permute(values: &[f32], rows: usize, heads: usize) -> Vec<f32> {
    let cols = values.len() / rows;
    let half = rows / heads / 2;
    let mut out = vec![0f32; values.len()];
    for h in 0..heads {
        for j in 0..2 {
            for i in 0..half {
                let src = h * 2 * half + j * half + i;
                let dst = h * 2 * half + i * 2 + j;
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&values[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// The llama.cpp name of a Hugging Face per-layer tensor suffix (`None`: an expert tensor).
fn layer_tensor(suffix: &str) -> Option<String> {
    let (base, kind) = suffix.rsplit_once('.')?;
    let gguf = match base {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "mlp.gate" | "block_sparse_moe.gate" => "ffn_gate_inp",
        "mlp.shared_expert.gate_proj" => "ffn_gate_shexp",
        "mlp.shared_expert.up_proj" => "ffn_up_shexp",
        "mlp.shared_expert.down_proj" => "ffn_down_shexp",
        "mlp.shared_expert_gate" => "ffn_gate_inp_shexp",
        _ => return None,
    };
    Some(format!("{gguf}.{kind}"))
}

/// `(expert, fused GGUF suffix)` of a per-expert Hugging Face tensor suffix.
fn expert_tensor(suffix: &str) -> Option<(usize, &'static str)> {
    let rest = suffix
        .strip_prefix("mlp.experts.")
        .or_else(|| suffix.strip_prefix("block_sparse_moe.experts."))?;
    let (e, proj) = rest.split_once('.')?;
    let fused = match proj {
        "gate_proj.weight" | "w1.weight" => "ffn_gate_exps.weight",
        "up_proj.weight" | "w3.weight" => "ffn_up_exps.weight",
        "down_proj.weight" | "w2.weight" => "ffn_down_exps.weight",
        _ => return None,
    };
    Some((e.parse().ok()?, fused))
}

/// The architecture metadata llama.cpp writes for a fixture's config.
fn write_hparams(w: &mut Writer, c: &serde_json::Map<String, Value>) -> String {
    let u = |k: &str| c[k].as_u64().unwrap() as u32;
    let arch = match c["model_type"].as_str().unwrap() {
        "llama" | "mixtral" => "llama",
        "qwen2_moe" => "qwen2moe",
        other => other,
    }
    .to_string();
    let key = |s: &str| format!("{arch}.{s}");
    let heads = u("num_attention_heads");
    let head_dim = c
        .get("head_dim")
        .and_then(Value::as_u64)
        .map_or(u("hidden_size") / heads, |h| h as u32);
    let theta = c["rope_parameters"]["rope_theta"].as_f64().unwrap() as f32;
    w.str("general.architecture", &arch)
        .str("general.name", c["model_type"].as_str().unwrap())
        .u32(&key("block_count"), u("num_hidden_layers"))
        .u32(&key("context_length"), u("max_position_embeddings"))
        .u32(&key("embedding_length"), u("hidden_size"))
        .u32(&key("feed_forward_length"), u("intermediate_size"))
        .u32(&key("attention.head_count"), heads)
        .u32(&key("attention.head_count_kv"), u("num_key_value_heads"))
        .u32(&key("attention.key_length"), head_dim)
        .u32(&key("attention.value_length"), head_dim)
        .u32(&key("rope.dimension_count"), head_dim)
        .f32(&key("rope.freq_base"), theta)
        .f32(
            &key("attention.layer_norm_rms_epsilon"),
            c["rms_norm_eps"].as_f64().unwrap() as f32,
        );
    let experts = c
        .get("num_local_experts")
        .or(c.get("num_experts"))
        .and_then(Value::as_u64);
    if let Some(e) = experts {
        w.u32(&key("expert_count"), e as u32)
            .u32(&key("expert_used_count"), u("num_experts_per_tok"));
    }
    if let Some(f) = c.get("moe_intermediate_size").and_then(Value::as_u64) {
        w.u32(&key("expert_feed_forward_length"), f as u32);
    }
    if let Some(f) = c
        .get("shared_expert_intermediate_size")
        .and_then(Value::as_u64)
    {
        w.u32(&key("expert_shared_feed_forward_length"), f as u32);
    }
    if let Some(n) = c.get("norm_topk_prob").and_then(Value::as_bool) {
        w.bool(&key("expert_weights_norm"), n);
    }
    arch
}

/// One expert's tensor: its index, torch shape and values.
type ExpertPart = (usize, Vec<usize>, Vec<f32>);

/// Whether the Hugging Face tensor `name` is stored in the chosen type (2-D
/// weights but Qwen2-MoE's `[1, hidden]` shared-expert gate, which llama.cpp
/// stores as a vector) rather than F32.
fn stored_as(name: &str, shape: &[usize]) -> bool {
    shape.len() == 2 && !name.ends_with("shared_expert_gate.weight")
}

/// A GGUF of fixture `name` as llama.cpp's converter writes it, with every
/// 2-D tensor stored as `ty` (the others in F32).
pub fn fixture_gguf(name: &str, ty: GgmlType) -> Writer {
    let c = fixture_config(name);
    let mut w = Writer::default();
    let arch = write_hparams(&mut w, &c);
    let heads = c["num_attention_heads"].as_u64().unwrap() as usize;
    let kv_heads = c["num_key_value_heads"].as_u64().unwrap() as usize;
    let mut experts: BTreeMap<String, Vec<ExpertPart>> = BTreeMap::new();
    for (hf, (shape, values)) in fixture_tensors(name) {
        let (gguf, values) = match hf.as_str() {
            "model.embed_tokens.weight" => ("token_embd.weight".to_string(), values),
            "model.norm.weight" => ("output_norm.weight".to_string(), values),
            "lm_head.weight" => ("output.weight".to_string(), values),
            _ => {
                let rest = hf.strip_prefix("model.layers.").unwrap();
                let (l, suffix) = rest.split_once('.').unwrap();
                if let Some((e, fused)) = expert_tensor(suffix) {
                    experts
                        .entry(format!("blk.{l}.{fused}"))
                        .or_default()
                        .push((e, shape, values));
                    continue;
                }
                let gguf = layer_tensor(suffix).unwrap_or_else(|| panic!("no GGUF name for {hf}"));
                let permute = match (arch.as_str(), gguf.split('.').next().unwrap()) {
                    ("llama", "attn_q") => Some(heads),
                    ("llama", "attn_k") => Some(kv_heads),
                    _ => None,
                };
                let values = match permute {
                    Some(h) => llama_permute(&values, shape[0], h),
                    None => values,
                };
                (format!("blk.{l}.{gguf}"), values)
            }
        };
        let t = if stored_as(&hf, &shape) {
            ty
        } else {
            GgmlType::F32
        };
        let shape = if gguf.ends_with("ffn_gate_inp_shexp.weight") {
            vec![values.len()]
        } else {
            shape
        };
        w.values(&gguf, &shape, t, &values);
    }
    for (gguf, mut parts) in experts {
        parts.sort_by_key(|p| p.0);
        let shape = [vec![parts.len()], parts[0].1.clone()].concat();
        let values: Vec<f32> = parts.into_iter().flat_map(|p| p.2).collect();
        w.values(&gguf, &shape, ty, &values);
    }
    w
}

/// A copy of fixture `name` whose 2-D tensors hold what `ty` round-trips
/// them to (the weights a GGUF of that type must import to), written as an
/// f32 checkpoint folder under `dir`.
pub fn round_tripped_fixture(name: &str, ty: GgmlType, dir: &Path) -> PathBuf {
    let out = dir.join(name);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(fixture(name).join("config.json"), out.join("config.json")).unwrap();
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = fixture_tensors(name)
        .into_iter()
        .map(|(n, (shape, values))| {
            let values = if stored_as(&n, &shape) {
                round_trip(ty, &values)
            } else {
                values
            };
            (
                n,
                shape,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                    .unwrap(),
            )
        })
        .collect();
    std::fs::write(
        out.join("model.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    out
}

/// `format`'s ggml type.
pub fn ggml(format: WeightFormat) -> GgmlType {
    GgmlType::from_format(format)
}

/// Deterministic pseudo-random values in `[-1, 1)` (a 64-bit LCG), seeded.
pub fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Random `Q6_K` blocks for `n` weights: random 6-bit quants and int8
/// scales, `d` = 2^-10 (so every value is finite and modest).
pub fn random_q6_k(seed: u64, n: usize) -> Vec<u8> {
    let blocks = n / 256;
    let raw: Vec<u8> = noise(seed, blocks * 208)
        .iter()
        .map(|v| ((v + 1.0) * 127.9) as u8)
        .collect();
    let d = half::f16::from_f32(1.0 / 1024.0).to_le_bytes();
    raw.chunks_exact(208)
        .flat_map(|b| [b, &d[..]].concat())
        .collect()
}

/// A one-layer Llama GGUF wide enough for 256-weight blocks (hidden 256, two
/// heads of 128 with one KV head, MLP 256, vocabulary 32), its 2-D tensors
/// made by `matrix(name, torch shape, seed)` in type `ty`, the rest random F32.
pub fn wide_llama(ty: GgmlType, matrix: impl Fn(&[usize], u64) -> Vec<u8>) -> Writer {
    let mut w = Writer::default();
    w.str("general.architecture", "llama")
        .u32("llama.block_count", 1)
        .u32("llama.context_length", 32)
        .u32("llama.embedding_length", 256)
        .u32("llama.feed_forward_length", 256)
        .u32("llama.attention.head_count", 2)
        .u32("llama.attention.head_count_kv", 1)
        .f32("llama.rope.freq_base", 10000.0)
        .f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
    let mats: [(&str, [usize; 2]); 9] = [
        ("token_embd.weight", [32, 256]),
        ("output.weight", [32, 256]),
        ("blk.0.attn_q.weight", [256, 256]),
        ("blk.0.attn_k.weight", [128, 256]),
        ("blk.0.attn_v.weight", [128, 256]),
        ("blk.0.attn_output.weight", [256, 256]),
        ("blk.0.ffn_gate.weight", [256, 256]),
        ("blk.0.ffn_up.weight", [256, 256]),
        ("blk.0.ffn_down.weight", [256, 256]),
    ];
    for (seed, (name, shape)) in mats.iter().enumerate() {
        w.tensor(name, shape, ty, matrix(shape, seed as u64));
    }
    for (seed, name) in [
        "output_norm.weight",
        "blk.0.attn_norm.weight",
        "blk.0.ffn_norm.weight",
    ]
    .iter()
    .enumerate()
    {
        let v: Vec<f32> = noise(100 + seed as u64, 256)
            .iter()
            .map(|x| 1.0 + 0.1 * x)
            .collect();
        w.values(name, &[256], GgmlType::F32, &v);
    }
    w
}
