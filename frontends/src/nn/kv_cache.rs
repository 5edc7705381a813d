//! The KV cache of one attention block, kept as session state.

use seam_ir::{DType, Dim, TensorType, ValueId};

use crate::builder::{BuildError, FunctionBuilder};

/// Two session states `[kv_len, kv_heads, head_dim]` (keys after RoPE, and
/// values) that each call appends its tokens to.
#[derive(Copy, Clone, Debug)]
pub(crate) struct KvCache {
    /// The key cache (a state input).
    pub k: ValueId,
    /// The value cache (a state input).
    pub v: ValueId,
}

impl KvCache {
    /// Declares the two state inputs `{prefix}.k_cache` and `{prefix}.v_cache`
    /// (before any instruction of `f`).
    pub(crate) fn declare(
        f: &mut FunctionBuilder<'_>,
        prefix: &str,
        kv_heads: u64,
        head_dim: u64,
        kv_len: &Dim,
    ) -> Self {
        let ty = TensorType::new(
            DType::F32,
            [kv_len.clone(), Dim::Static(kv_heads), Dim::Static(head_dim)],
        );
        KvCache {
            k: f.state_input(format!("{prefix}.k_cache"), ty.clone()),
            v: f.state_input(format!("{prefix}.v_cache"), ty),
        }
    }

    /// Appends the tokens' keys `k` and values `v` to the cache; returns the
    /// whole cache (`{prefix}.k_all`, `{prefix}.v_all`), the tokens its last rows.
    pub(crate) fn append(
        &self,
        f: &mut FunctionBuilder<'_>,
        prefix: &str,
        k: ValueId,
        v: ValueId,
    ) -> Result<(ValueId, ValueId), BuildError> {
        Ok((
            f.append_state(&format!("{prefix}.k_all"), self.k, k)?,
            f.append_state(&format!("{prefix}.v_all"), self.v, v)?,
        ))
    }
}
