//! GGUF tensor names (llama.cpp's `token_embd`, `blk.{l}.attn_q`, …) as the
//! Hugging Face names the importer's graph asks for, with how each is read:
//! a whole tensor, or one expert of a fused `[E, out, in]` expert tensor, and
//! whether its rows carry llama.cpp's q/k RoPE permutation.

use std::collections::HashMap;

use crate::hf::arch::Family;
use crate::hf::names::{self as hf, LayerNames};

/// The GGUF token embedding.
pub(crate) const TOKEN_EMBD: &str = "token_embd.weight";
/// The GGUF output projection (absent when tied to the embedding).
pub(crate) const OUTPUT: &str = "output.weight";
/// llama.cpp's precomputed RoPE frequency factors (scaled RoPE).
pub(crate) const ROPE_FREQS: &str = "rope_freqs.weight";

/// The name of tensor `suffix` (e.g. `attn_q.weight`) of block `l`.
pub(crate) fn block(l: u64, suffix: &str) -> String {
    format!("blk.{l}.{suffix}")
}

/// Fused expert tensors `[E, out, in]` in the order gate, up, down.
pub(crate) const EXPERT_TENSORS: [&str; 3] = [
    "ffn_gate_exps.weight",
    "ffn_up_exps.weight",
    "ffn_down_exps.weight",
];

/// The RoPE permutation llama.cpp's converter applies to a tensor's rows.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Permuted {
    /// Heads of the projection (`head_count` for q, `head_count_kv` for k).
    pub heads: u64,
}

/// How one Hugging Face tensor is read from the GGUF file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct View {
    /// The GGUF tensor.
    pub tensor: String,
    /// `Some(e)`: expert `e` of a fused `[E, out, in]` tensor.
    pub expert: Option<u64>,
    /// The rows carry llama.cpp's q/k permutation, to be undone.
    pub permuted: Option<Permuted>,
}

/// Head counts the q/k permutation depends on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Heads {
    /// Query heads.
    pub q: u64,
    /// Key/value heads.
    pub kv: u64,
}

/// Hugging Face name → view, for every GGUF tensor the family reads. `experts`
/// gives each fused expert tensor's expert count (checked by the caller).
pub(crate) fn views<'a>(
    family: Family,
    heads: Heads,
    tensors: impl Iterator<Item = (&'a str, u64)>,
) -> HashMap<String, View> {
    let mut out = HashMap::new();
    for (name, experts) in tensors {
        let whole = |permuted| View {
            tensor: name.to_string(),
            expert: None,
            permuted,
        };
        match name {
            TOKEN_EMBD => {
                out.insert(hf::EMBED.to_string(), whole(None));
            }
            "output_norm.weight" => {
                out.insert(hf::FINAL_NORM.to_string(), whole(None));
            }
            OUTPUT => {
                out.insert(hf::LM_HEAD.to_string(), whole(None));
            }
            _ => {
                let Some((l, suffix)) = split_block(name) else {
                    continue;
                };
                let n = LayerNames::new(hf::layer(l as usize), family);
                if let Some(j) = EXPERT_TENSORS.iter().position(|t| *t == suffix) {
                    for e in 0..experts {
                        let view = View {
                            tensor: name.to_string(),
                            expert: Some(e),
                            permuted: None,
                        };
                        out.insert(n.expert(e)[j].clone(), view);
                    }
                } else if let Some(hf_name) = layer_name(&n, suffix) {
                    out.insert(hf_name, whole(permutation(family, heads, suffix)));
                }
            }
        }
    }
    out
}

/// `blk.{l}.{suffix}` → `(l, suffix)`.
fn split_block(name: &str) -> Option<(u64, &str)> {
    let rest = name.strip_prefix("blk.")?;
    let (l, suffix) = rest.split_once('.')?;
    Some((l.parse().ok()?, suffix))
}

/// The Hugging Face name of a block tensor `suffix` (`attn_q.weight`, …).
fn layer_name(n: &LayerNames, suffix: &str) -> Option<String> {
    let (base, kind) = suffix.rsplit_once('.')?;
    if kind != "weight" && kind != "bias" {
        return None;
    }
    let weight_only = |name: String| (kind == "weight").then_some(name);
    match base {
        "attn_norm" => weight_only(n.input_norm()),
        "ffn_norm" => weight_only(n.post_attention_norm()),
        "attn_q" => Some(n.attn("q_proj", kind)),
        "attn_k" => Some(n.attn("k_proj", kind)),
        "attn_v" => Some(n.attn("v_proj", kind)),
        "attn_output" => Some(n.attn("o_proj", kind)),
        "attn_q_norm" => weight_only(n.attn("q_norm", kind)),
        "attn_k_norm" => weight_only(n.attn("k_norm", kind)),
        "ffn_gate" => Some(n.mlp("gate_proj", kind)),
        "ffn_up" => Some(n.mlp("up_proj", kind)),
        "ffn_down" => Some(n.mlp("down_proj", kind)),
        "ffn_gate_inp" => weight_only(n.router()),
        "ffn_gate_inp_shexp" => weight_only(n.shared_expert_gate()),
        "ffn_gate_shexp" => weight_only(n.shared_expert()[0].clone()),
        "ffn_up_shexp" => weight_only(n.shared_expert()[1].clone()),
        "ffn_down_shexp" => weight_only(n.shared_expert()[2].clone()),
        _ => None,
    }
}

/// llama.cpp's converter permutes the rows of q and k (weights and biases) for
/// the `llama` architecture (Llama and Mixtral), whose ggml RoPE rotates
/// adjacent pairs; Qwen2-MoE and OLMoE use the half-split (NeoX) RoPE the
/// Hugging Face graph uses and are stored as is.
fn permutation(family: Family, heads: Heads, suffix: &str) -> Option<Permuted> {
    if !matches!(family, Family::Llama | Family::Mixtral) {
        return None;
    }
    match suffix.rsplit_once('.')?.0 {
        "attn_q" => Some(Permuted { heads: heads.q }),
        "attn_k" => Some(Permuted { heads: heads.kv }),
        _ => None,
    }
}

/// The GGUF row holding Hugging Face row `row` of a q/k projection with
/// `rows` rows in `heads` heads: llama.cpp stores head `h`'s row `j·(d/2) + i`
/// (half `j` of the head's `d` rows, pair `i`) at `h·d + 2i + j`.
pub(crate) fn permuted_row(row: u64, rows: u64, heads: u64) -> u64 {
    let d = rows / heads;
    let (h, r) = (row / d, row % d);
    let (j, i) = (r / (d / 2), r % (d / 2));
    h * d + 2 * i + j
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permuted_rows_interleave_each_heads_halves() {
        // Two heads of 4 rows: llama.cpp's `permute` (reshape(h, 2, d/2)
        // .swapaxes(1, 2)) stores HF rows [0, 2, 1, 3, 4, 6, 5, 7]; row r of
        // HF is therefore at the position of r in that list.
        let stored = [0u64, 2, 1, 3, 4, 6, 5, 7];
        for hf_row in 0..8 {
            let at = stored.iter().position(|&s| s == hf_row).unwrap() as u64;
            assert_eq!(permuted_row(hf_row, 8, 2), at, "row {hf_row}");
        }
    }

    #[test]
    fn block_names_map_to_hugging_face_names() {
        let heads = Heads { q: 4, kv: 2 };
        let names = [
            "blk.1.attn_q.bias",
            "blk.0.ffn_gate_exps.weight",
            "blk.0.ffn_norm.bias",
        ];
        let v = views(Family::Mixtral, heads, names.iter().map(|n| (*n, 2)));
        let q = &v["model.layers.1.self_attn.q_proj.bias"];
        assert_eq!(q.permuted, Some(Permuted { heads: 4 }));
        let e1 = &v["model.layers.0.block_sparse_moe.experts.1.w1.weight"];
        assert_eq!(
            (e1.tensor.as_str(), e1.expert),
            ("blk.0.ffn_gate_exps.weight", Some(1))
        );
        assert_eq!(v.len(), 3, "{v:?}");
    }
}
