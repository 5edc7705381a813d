//! Reading `config.json`: typed field access with errors that name the field,
//! and the fields every supported architecture shares.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::HfError;

/// The largest size (`hidden_size`, `intermediate_size`, `vocab_size`, head
/// counts, expert widths …) a config may give: 2^24, beyond every published
/// checkpoint, so products of sizes stay far from overflow and hostile values
/// are refused before anything is sized by them.
pub(crate) const MAX_SIZE: u64 = 1 << 24;

/// The largest count of repeated blocks (`num_hidden_layers`, the expert
/// counts) a config may give, before it is checked against the tensors the
/// checkpoint holds.
pub(crate) const MAX_COUNT: u64 = 1 << 16;

/// A JSON object from a config file, read field by field. Nested objects
/// (`rope_parameters`, Read-ME's `router_config`) get their own reader whose
/// errors carry the dotted field path.
#[derive(Clone, Debug)]
pub(crate) struct ConfigReader {
    path: PathBuf,
    prefix: String,
    obj: Map<String, Value>,
}

impl ConfigReader {
    /// Reads and parses `path` (which must hold a JSON object).
    pub(crate) fn open(path: &Path) -> Result<Self, HfError> {
        let text = std::fs::read_to_string(path).map_err(|source| HfError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|source| HfError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        match value {
            Value::Object(obj) => Ok(ConfigReader {
                path: path.to_path_buf(),
                prefix: String::new(),
                obj,
            }),
            _ => Err(HfError::Field {
                path: path.to_path_buf(),
                field: "(top level)".into(),
                problem: "must be a JSON object".into(),
            }),
        }
    }

    /// The config file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn full(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// An error about `field` of this object.
    pub(crate) fn field_error(&self, field: &str, problem: impl Into<String>) -> HfError {
        HfError::Field {
            path: self.path.clone(),
            field: self.full(field),
            problem: problem.into(),
        }
    }

    /// An "unsupported value" error about `field`.
    pub(crate) fn unsupported(&self, field: &str, why: impl Into<String>) -> HfError {
        HfError::Unsupported {
            path: self.path.clone(),
            field: self.full(field),
            value: self.raw(field).map_or("null".into(), Value::to_string),
            why: why.into(),
        }
    }

    /// The field's value, treating JSON `null` as absent.
    pub(crate) fn raw(&self, field: &str) -> Option<&Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    /// A non-negative integer field, if present.
    pub(crate) fn opt_u64(&self, field: &str) -> Result<Option<u64>, HfError> {
        self.raw(field)
            .map(|v| {
                v.as_u64().ok_or_else(|| {
                    self.field_error(field, format!("must be a non-negative integer, found {v}"))
                })
            })
            .transpose()
    }

    /// A required non-negative integer field.
    pub(crate) fn u64(&self, field: &str) -> Result<u64, HfError> {
        self.opt_u64(field)?
            .ok_or_else(|| self.field_error(field, "is missing"))
    }

    /// A required positive integer field of at most `limit`.
    fn positive_at_most(&self, field: &str, limit: u64) -> Result<u64, HfError> {
        match self.u64(field)? {
            0 => Err(self.field_error(field, "must be positive, found 0")),
            n => self.at_most(field, n, limit),
        }
    }

    /// A required positive size field (at most [`MAX_SIZE`]).
    pub(crate) fn positive(&self, field: &str) -> Result<u64, HfError> {
        self.positive_at_most(field, MAX_SIZE)
    }

    /// A required positive count of blocks (at most [`MAX_COUNT`]).
    pub(crate) fn count(&self, field: &str) -> Result<u64, HfError> {
        self.positive_at_most(field, MAX_COUNT)
    }

    /// A size field (at most [`MAX_SIZE`]), if present.
    pub(crate) fn opt_size(&self, field: &str) -> Result<Option<u64>, HfError> {
        self.opt_u64(field)?
            .map(|n| self.at_most(field, n, MAX_SIZE))
            .transpose()
    }

    /// `n`, or an error when `field`'s value `n` exceeds `limit`.
    fn at_most(&self, field: &str, n: u64, limit: u64) -> Result<u64, HfError> {
        if n > limit {
            return Err(HfError::TooLarge {
                path: self.path.clone(),
                field: self.full(field),
                value: n,
                limit,
            });
        }
        Ok(n)
    }

    /// A number field, if present.
    pub(crate) fn opt_f64(&self, field: &str) -> Result<Option<f64>, HfError> {
        self.raw(field)
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| self.field_error(field, format!("must be a number, found {v}")))
            })
            .transpose()
    }

    /// A boolean field, or `default` when absent.
    pub(crate) fn bool_or(&self, field: &str, default: bool) -> Result<bool, HfError> {
        match self.raw(field) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| {
                self.field_error(field, format!("must be true or false, found {v}"))
            }),
        }
    }

    /// A string field, if present.
    pub(crate) fn opt_str(&self, field: &str) -> Result<Option<&str>, HfError> {
        self.raw(field)
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| self.field_error(field, format!("must be a string, found {v}")))
            })
            .transpose()
    }

    /// A list of non-negative integers, empty when absent.
    pub(crate) fn u64_list(&self, field: &str) -> Result<Vec<u64>, HfError> {
        match self.raw(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_u64().ok_or_else(|| {
                        self.field_error(
                            field,
                            format!("must list non-negative integers, found {v}"),
                        )
                    })
                })
                .collect(),
            Some(v) => Err(self.field_error(field, format!("must be a list, found {v}"))),
        }
    }

    /// A nested object field, if present.
    pub(crate) fn opt_object(&self, field: &str) -> Result<Option<ConfigReader>, HfError> {
        match self.raw(field) {
            None => Ok(None),
            Some(Value::Object(obj)) => Ok(Some(ConfigReader {
                path: self.path.clone(),
                prefix: format!("{}.", self.full(field)),
                obj: obj.clone(),
            })),
            Some(v) => Err(self.field_error(field, format!("must be an object, found {v}"))),
        }
    }

    /// Errors if `field` is present with a value other than `allowed` (compared as JSON).
    pub(crate) fn require_absent_or(
        &self,
        field: &str,
        allowed: &[Value],
        why: &str,
    ) -> Result<(), HfError> {
        match self.raw(field) {
            Some(v) if !allowed.contains(v) => Err(self.unsupported(field, why)),
            _ => Ok(()),
        }
    }
}

/// The fields every supported decoder shares, with their math-changing options.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DecoderConfig {
    /// `vocab_size`.
    pub vocab: u64,
    /// `hidden_size`.
    pub d_model: u64,
    /// `num_hidden_layers`.
    pub layers: u64,
    /// `num_attention_heads`.
    pub heads: u64,
    /// `num_key_value_heads` (default: `heads`).
    pub kv_heads: u64,
    /// `head_dim` (default: `hidden_size / num_attention_heads`).
    pub head_dim: u64,
    /// `intermediate_size` (dense MLP width), when present.
    pub ffn: Option<u64>,
    /// `rms_norm_eps`.
    pub eps: f32,
    /// `rope_theta` (4.x) or `rope_parameters.rope_theta` (5.x).
    pub rope_theta: f32,
    /// `tie_word_embeddings`.
    pub tie_embeddings: bool,
    /// `max_position_embeddings`, when present.
    pub max_positions: Option<u64>,
}

impl DecoderConfig {
    /// Reads the shared fields. `default_theta` and `default_eps` are the
    /// architecture's defaults for absent `rope_theta` / `rms_norm_eps`.
    pub(crate) fn read(
        c: &ConfigReader,
        default_theta: f64,
        default_eps: f64,
    ) -> Result<Self, HfError> {
        let d_model = c.positive("hidden_size")?;
        let heads = c.positive("num_attention_heads")?;
        let kv_heads = c.opt_size("num_key_value_heads")?.unwrap_or(heads);
        if kv_heads == 0 || heads % kv_heads != 0 {
            return Err(c.field_error(
                "num_key_value_heads",
                format!("must divide num_attention_heads = {heads}, found {kv_heads}"),
            ));
        }
        let head_dim = match c.opt_size("head_dim")? {
            Some(h) => h,
            None if d_model % heads == 0 => d_model / heads,
            None => {
                return Err(c.field_error(
                    "hidden_size",
                    format!("{d_model} is not a multiple of num_attention_heads = {heads} (and no head_dim is given)"),
                ))
            }
        };
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(c.field_error(
                "head_dim",
                format!("must be even and positive for RoPE, found {head_dim}"),
            ));
        }
        if let Some(act) = c.opt_str("hidden_act")? {
            if act != "silu" {
                return Err(
                    c.unsupported("hidden_act", "only `silu` (SwiGLU) MLPs are implemented")
                );
            }
        }
        for dtype_field in ["torch_dtype", "dtype"] {
            if let Some(d) = c.opt_str(dtype_field)? {
                if !["float32", "float16", "bfloat16"].contains(&d) {
                    return Err(
                        c.unsupported(dtype_field, "weights must be float32, float16 or bfloat16")
                    );
                }
            }
        }
        let rope_theta = read_rope(c, default_theta)?;
        Ok(DecoderConfig {
            vocab: c.positive("vocab_size")?,
            d_model,
            layers: c.count("num_hidden_layers")?,
            heads,
            kv_heads,
            head_dim,
            ffn: c.opt_size("intermediate_size")?,
            eps: c.opt_f64("rms_norm_eps")?.unwrap_or(default_eps) as f32,
            rope_theta: rope_theta as f32,
            tie_embeddings: c.bool_or("tie_word_embeddings", false)?,
            max_positions: c.opt_u64("max_position_embeddings")?,
        })
    }
}

/// The RoPE base from either convention, refusing scaled or partial RoPE.
fn read_rope(c: &ConfigReader, default_theta: f64) -> Result<f64, HfError> {
    let plain = [Value::from("default")];
    if let Some(scaling) = c.opt_object("rope_scaling")? {
        // 4.x: `rope_scaling: {type|rope_type: ...}`; only the plain kind is the identity.
        for key in ["type", "rope_type"] {
            scaling.require_absent_or(
                key,
                &plain,
                "only unscaled (`default`) RoPE is implemented",
            )?;
        }
    }
    c.require_absent_or(
        "partial_rotary_factor",
        &[Value::from(1.0), Value::from(1)],
        "only full-width RoPE is implemented",
    )?;
    let mut theta = c.opt_f64("rope_theta")?;
    if let Some(p) = c.opt_object("rope_parameters")? {
        // 5.x: `rope_parameters: {rope_theta, rope_type}`.
        p.require_absent_or(
            "rope_type",
            &plain,
            "only unscaled (`default`) RoPE is implemented",
        )?;
        p.require_absent_or(
            "partial_rotary_factor",
            &[Value::from(1.0), Value::from(1)],
            "only full-width RoPE is implemented",
        )?;
        if let Some(t) = p.opt_f64("rope_theta")? {
            theta = Some(t);
        }
    }
    Ok(theta.unwrap_or(default_theta))
}
