//! [`assign_formats`]: each product weight gets the storage format the policy
//! asks for its role, with its encoded blocks, and its decoded values become
//! exactly what those blocks decode to, so the model and weights the bundle
//! records compute what the device computes.

use std::collections::{BTreeMap, HashMap};

use seam_core::quant::{dequantize, quantize, GgmlType, QuantError};
use seam_core::WeightFormat;
use seam_ir::{EncodedWeight, EncodingError, Model, Op, Operand, ParamId, Tensor, Weights};
use thiserror::Error;

use super::policy::{expert_format, fallback, WeightPolicy};
use super::roles::{param_roles, ParamRole, MOE_EXPERT_OPERANDS};
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
    /// Weights stored in another format than the one asked.
    pub fallbacks: Vec<Fallback>,
}

/// A weight stored in another format than the one asked, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Fallback {
    /// The param.
    pub param: String,
    /// The format asked.
    pub asked: WeightFormat,
    /// The format used.
    pub used: WeightFormat,
    /// Why.
    pub reason: FallbackReason,
}

/// Why a weight is not stored in the format asked.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FallbackReason {
    /// Its input size `K` does not fit the format's blocks.
    BlockSize,
    /// The op reading it has no kernel for the format (`grouped_matmul`).
    NoKernel,
}

/// Progress of [`assign_formats`]: `(weights done, weights total)`.
pub type FormatProgress<'a> = dyn FnMut(usize, usize) + 'a;

/// Gives every product weight of `model` its format under `policy` (see
/// [`WeightPolicy`]), quantizing its values where it has no encoding in that
/// format, and replacing its values by what the blocks decode to. The expert
/// stacks of one `moe` fall back together ([`expert_format`]).
pub fn assign_formats(
    model: &Model,
    weights: &Weights,
    policy: &WeightPolicy,
    progress: &mut FormatProgress<'_>,
) -> Result<(Model, Weights, FormatReport), FormatError> {
    let roles = param_roles(model);
    let stack_ks = expert_stack_ks(model);
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
        let (rows, k) = EncodedWeight::rows_and_k(&decl.name, &decl.sizes())?;
        let (format, reason) = match (role, stack_ks.get(&id)) {
            (ParamRole::Expert, Some(ks)) => (expert_format(asked, ks), FallbackReason::BlockSize),
            (ParamRole::Grouped, _) => (WeightFormat::F32, FallbackReason::NoKernel),
            _ => (fallback(asked, k), FallbackReason::BlockSize),
        };
        if format != asked {
            report.fallbacks.push(Fallback {
                param: decl.name.clone(),
                asked,
                used: format,
                reason,
            });
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
            let values = decode(&decl.name, &encoding, &decl.sizes())?;
            weights
                .replace(id, values)
                .map_err(|reason| FormatError::Tensor {
                    name: decl.name.clone(),
                    reason: reason.to_string(),
                })?;
            weights.set_encoding(id, encoding)?;
        }
        let bytes = format.ggml_row_bytes(k).map_or(0, |b| b * rows);
        let entry = report.by_format.entry(format).or_default();
        entry.0 += 1;
        entry.1 += bytes;
        model.params[i].format = format;
        done += 1;
        progress(done, total);
    }
    Ok((model, weights, report))
}

/// For every param that is an expert stack of a `moe`, the `K` of every
/// stack stored alongside it (its own included).
fn expert_stack_ks(model: &Model) -> HashMap<ParamId, Vec<u64>> {
    let mut ks: HashMap<ParamId, Vec<u64>> = HashMap::new();
    let moes = model
        .functions
        .iter()
        .flat_map(|f| &f.body)
        .filter(|instr| matches!(instr.op, Op::Moe { .. }));
    for instr in moes {
        let stacks: Vec<(ParamId, u64)> = instr
            .operands
            .get(MOE_EXPERT_OPERANDS)
            .into_iter()
            .flatten()
            .filter_map(|o| match *o {
                Operand::Param(p) => {
                    let sizes = model.param(p).sizes();
                    let k = sizes.len().checked_sub(2).map(|i| sizes[i] as u64)?;
                    Some((p, k))
                }
                Operand::Value(_) => None,
            })
            .collect();
        for &(p, _) in &stacks {
            ks.entry(p)
                .or_default()
                .extend(stacks.iter().map(|&(_, k)| k));
        }
    }
    ks
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

/// The blocks of a `[.., K, N]` tensor in `format`: rows = the leading dims
/// times `N`, each a column of one matrix.
fn encode(name: &str, t: &Tensor, format: WeightFormat) -> Result<EncodedWeight, FormatError> {
    let (rows, k) = EncodedWeight::rows_and_k(name, &t.shape)?;
    let n = t.shape[t.shape.len() - 1];
    let columns = transpose_last2(&t.to_f32_vec(), k as usize, n);
    let bytes = quantize(format, &columns).map_err(|source| FormatError::Quant {
        name: name.into(),
        format,
        source,
    })?;
    Ok(EncodedWeight {
        format,
        rows,
        k,
        bytes: bytes.into(),
    })
}

/// The f32 tensor of `shape` (`[.., K, N]`) an encoding decodes to.
fn decode(name: &str, e: &EncodedWeight, shape: &[usize]) -> Result<Tensor, FormatError> {
    let (rows, k) = (e.rows as usize, e.k as usize);
    let n = shape.last().copied().unwrap_or(0);
    let mut out = vec![0f32; rows * k];
    dequantize(GgmlType::from_format(e.format), &e.bytes, &mut out).map_err(|source| {
        FormatError::Quant {
            name: name.into(),
            format: e.format,
            source,
        }
    })?;
    let values = transpose_last2(&out, n, k);
    Tensor::f32(shape.to_vec(), values).map_err(|e| FormatError::Tensor {
        name: name.into(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stack `[E, K, N]` is encoded as `E·N` rows of `K` (expert `e`'s
    /// column `n` in row `e·N + n`) and decodes back to its shape.
    #[test]
    fn an_expert_stack_is_encoded_column_by_column() {
        let (e, k, n) = (2, 64, 3);
        let values: Vec<f32> = (0..e * k * n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0)
            .collect();
        let t = Tensor::f32(vec![e, k, n], values.clone()).unwrap();
        let enc = encode("w", &t, WeightFormat::Q8_0).unwrap();
        assert_eq!((enc.rows, enc.k), ((e * n) as u64, k as u64));
        let mut rows = vec![0f32; e * n * k];
        dequantize(GgmlType::Q8_0, &enc.bytes, &mut rows).unwrap();
        let max = values.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (ei, ni, ki) in
            (0..e).flat_map(|a| (0..n).flat_map(move |b| (0..k).map(move |c| (a, b, c))))
        {
            let want = values[(ei * k + ki) * n + ni];
            let got = rows[(ei * n + ni) * k + ki];
            assert!(
                (got - want).abs() <= max / 127.0,
                "expert {ei} column {ni} k {ki}: {got} vs {want}"
            );
        }
        let back = decode("w", &enc, &[e, k, n]).unwrap();
        assert_eq!(back.shape, vec![e, k, n]);
        let back = back.to_f32_vec();
        for (i, (&got, &want)) in back.iter().zip(&values).enumerate() {
            assert!(
                (got - want).abs() <= max / 127.0,
                "element {i}: {got} vs {want}"
            );
        }
    }

    /// `--weights q8_0` on a Mixture-of-Transformers model: its modality
    /// stacks stay `f32` and each is reported as a fallback for want of a
    /// kernel; the weights are not touched.
    #[test]
    fn grouped_stacks_stay_f32_and_say_why() {
        let source = include_str!("../../../examples/mot.seam");
        let (model, _) = seam_ir::text::parse(source).unwrap();
        let weights = seam_ir::random_weights(&model, 3);
        let policy = WeightPolicy::uniform(WeightFormat::Q8_0);
        let (out, kept, report) =
            assign_formats(&model, &weights, &policy, &mut |_, _| {}).unwrap();
        let stacks: Vec<&str> = model
            .params
            .iter()
            .filter(|p| p.ty.rank() == 3)
            .map(|p| p.name.as_str())
            .collect();
        assert!(stacks.contains(&"layers.0.wq"));
        let reported: Vec<&str> = report.fallbacks.iter().map(|f| f.param.as_str()).collect();
        assert_eq!(reported, stacks);
        for f in &report.fallbacks {
            assert_eq!(
                (f.asked, f.used, f.reason),
                (
                    WeightFormat::Q8_0,
                    WeightFormat::F32,
                    FallbackReason::NoKernel
                )
            );
        }
        assert!(out.params.iter().all(|p| p.format == WeightFormat::F32));
        assert_eq!(kept, weights);
    }
}
