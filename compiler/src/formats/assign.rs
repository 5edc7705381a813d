//! [`assign_formats`]: each product weight gets the storage format the policy
//! asks for its role, with its encoded blocks, and its decoded values become
//! exactly what those blocks decode to, so the model and weights the bundle
//! records compute what the device computes.

use std::collections::BTreeMap;

use seam_core::quant::{dequantize, quantize, GgmlType, QuantError};
use seam_core::WeightFormat;
use seam_ir::{EncodedWeight, EncodingError, Model, ParamId, Tensor, Weights};
use thiserror::Error;

use super::policy::{fallback, WeightPolicy};
use super::roles::param_roles;
use crate::emit::transpose_last2;

/// Why formats could not be assigned.
#[derive(Debug, Error)]
pub enum FormatError {
    /// Encoding or decoding a weight failed.
    #[error("weight `{name}` as {format}: {source}")]
    Quant {
        /// The param.
        name: String,
        /// The format.
        format: WeightFormat,
        /// What failed.
        source: QuantError,
    },
    /// An encoding does not fit its param (a compiler bug).
    #[error(transparent)]
    Encoding(#[from] EncodingError),
    /// A decoded tensor does not fit its param (a compiler bug).
    #[error("weight `{name}`: {reason}")]
    Tensor {
        /// The param.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// What [`assign_formats`] did, for the compile summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FormatReport {
    /// Per format: params stored in it and their bytes (ggml's encoding).
    pub by_format: BTreeMap<WeightFormat, (usize, u64)>,
    /// Weights whose `K` did not fit the asked format: `(param, asked, used)`.
    pub fallbacks: Vec<(String, WeightFormat, WeightFormat)>,
}

/// Progress of [`assign_formats`]: `(weights done, weights total)`.
pub type FormatProgress<'a> = dyn FnMut(usize, usize) + 'a;

/// Gives every product weight of `model` its format under `policy` (see
/// [`WeightPolicy`]), quantizing its values where it has no encoding in that
/// format, and replacing its values by what the blocks decode to.
pub fn assign_formats(
    model: &Model,
    weights: &Weights,
    policy: &WeightPolicy,
    progress: &mut FormatProgress<'_>,
) -> Result<(Model, Weights, FormatReport), FormatError> {
    let roles = param_roles(model);
    let mut model = model.clone();
    let mut weights = weights.clone();
    let mut report = FormatReport::default();
    let total = roles.iter().filter(|r| r.is_product_weight()).count();
    let mut done = 0;
    for (i, role) in roles.iter().enumerate() {
        let id = ParamId(i as u32);
        if !role.is_product_weight() {
            continue;
        }
        let source = weights.encoding(id).map(|e| e.format);
        let asked = policy.asked(*role).or(source).unwrap_or(WeightFormat::F32);
        let decl = &model.params[i];
        let k = decl.sizes()[0] as u64;
        let format = fallback(asked, k);
        if format != asked {
            report.fallbacks.push((decl.name.clone(), asked, format));
        }
        if format != WeightFormat::F32 {
            let encoding = match weights.encoding(id) {
                Some(e) if e.format == format => e.clone(),
                _ => encode(
                    &decl.name,
                    weights_tensor(&weights, id, &decl.name)?,
                    format,
                )?,
            };
            let values = decode(&decl.name, &encoding)?;
            weights
                .replace(id, values)
                .map_err(|reason| FormatError::Tensor {
                    name: decl.name.clone(),
                    reason: reason.to_string(),
                })?;
            weights.set_encoding(id, encoding)?;
        }
        let bytes = format
            .ggml_row_bytes(k)
            .map_or(0, |b| b * decl.sizes()[1] as u64);
        let entry = report.by_format.entry(format).or_default();
        entry.0 += 1;
        entry.1 += bytes;
        model.params[i].format = format;
        done += 1;
        progress(done, total);
    }
    Ok((model, weights, report))
}

fn weights_tensor<'w>(
    weights: &'w Weights,
    id: ParamId,
    name: &str,
) -> Result<&'w Tensor, FormatError> {
    weights.get(id).ok_or_else(|| FormatError::Tensor {
        name: name.into(),
        reason: "no tensor".into(),
    })
}

/// The blocks of a `[K, N]` tensor in `format`, rows = columns.
fn encode(name: &str, t: &Tensor, format: WeightFormat) -> Result<EncodedWeight, FormatError> {
    let (k, n) = (t.shape[0], t.shape[1]);
    let rows = transpose_last2(&t.to_f32_vec(), k, n);
    let bytes = quantize(format, &rows).map_err(|source| FormatError::Quant {
        name: name.into(),
        format,
        source,
    })?;
    Ok(EncodedWeight {
        format,
        rows: n as u64,
        k: k as u64,
        bytes: bytes.into(),
    })
}

/// The `[K, N]` f32 tensor an encoding decodes to.
fn decode(name: &str, e: &EncodedWeight) -> Result<Tensor, FormatError> {
    let (rows, k) = (e.rows as usize, e.k as usize);
    let mut out = vec![0f32; rows * k];
    dequantize(GgmlType::from_format(e.format), &e.bytes, &mut out).map_err(|source| {
        FormatError::Quant {
            name: name.into(),
            format: e.format,
            source,
        }
    })?;
    Tensor::f32(vec![k, rows], transpose_last2(&out, rows, k)).map_err(|e| FormatError::Tensor {
        name: name.into(),
        reason: e.to_string(),
    })
}
