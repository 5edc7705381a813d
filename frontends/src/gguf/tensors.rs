//! [`GgufStore`]: a GGUF file's tensors by their Hugging Face names, decoded
//! to f32 with the blocks they decode from: rows of q/k un-permuted, fused
//! expert tensors sliced per expert, and types without a Seam kernel
//! re-encoded in the nearest format with one.

use std::collections::HashMap;

use seam_ir::WeightFormat;

use super::container::{GgufFile, TensorInfo};
use super::error::GgufError;
use super::names::{permuted_row, View};
use super::quant::{self, GgmlType};
use crate::hf::store::{EncodedRows, TensorStore, Values};

/// The tensors of a GGUF file, by Hugging Face name.
pub(crate) struct GgufStore<'f> {
    file: &'f GgufFile,
    views: HashMap<String, View>,
}

/// The format a tensor of `ty` with rows of `k` weights is converted to, when
/// it is converted: `ty`'s nearest format with a kernel, or f32 when that
/// format's block does not divide `k`. `None`: kept as stored.
pub(crate) fn conversion(ty: GgmlType, k: u64) -> Option<WeightFormat> {
    let format = ty.kernel_format();
    if GgmlType::from_format(format) == ty {
        return None;
    }
    Some(if format.fits(k) {
        format
    } else {
        WeightFormat::F32
    })
}

impl<'f> GgufStore<'f> {
    /// The tensors of `file` named as `views` says.
    pub(crate) fn new(file: &'f GgufFile, views: HashMap<String, View>) -> Self {
        GgufStore { file, views }
    }

    /// The GGUF tensor the Hugging Face name `name` reads, if any.
    pub(crate) fn tensor_of(&self, name: &str) -> Option<&'f TensorInfo> {
        self.file.tensor(&self.views.get(name)?.tensor)
    }

    /// The tensor `name` reads through `view`, checked to have the torch shape
    /// `expected` (leading dims of 1 aside); returns it with the view's first row.
    fn locate(
        &self,
        name: &str,
        view: &View,
        expected: &[usize],
    ) -> Result<(&'f TensorInfo, u64), GgufError> {
        let path = || self.file.path().to_path_buf();
        let t = self
            .file
            .tensor(&view.tensor)
            .ok_or_else(|| self.missing(name))?;
        let full = t.torch_shape();
        let (shape, first_row) = match view.expert {
            None => (full.as_slice(), 0),
            Some(e) if full.len() == 3 && e < full[0] => (&full[1..], e * full[1]),
            Some(_) => (&[][..], 0),
        };
        let trim = |s: &[u64]| -> Vec<u64> { s.iter().copied().skip_while(|&d| d == 1).collect() };
        let want: Vec<u64> = expected.iter().map(|&d| d as u64).collect();
        if shape.is_empty() || trim(shape) != trim(&want) {
            return Err(GgufError::WrongShape {
                path: path(),
                tensor: match view.expert {
                    Some(e) => format!("{} (expert {e})", view.tensor),
                    None => view.tensor.clone(),
                },
                found: full,
                expected: expected.to_vec(),
            });
        }
        Ok((t, first_row))
    }

    /// `rows` rows of `row_bytes` bytes of `t` from `first`, in Hugging Face order.
    fn gather(
        &self,
        t: &TensorInfo,
        view: &View,
        first: u64,
        rows: u64,
        row_bytes: usize,
    ) -> Vec<u8> {
        let data = self.file.data(t);
        match view.permuted {
            // A view's rows are a contiguous range of the tensor.
            None => data[first as usize * row_bytes..(first + rows) as usize * row_bytes].to_vec(),
            Some(p) => {
                let mut out = Vec::with_capacity(rows as usize * row_bytes);
                for r in 0..rows {
                    let src = (first + permuted_row(r, rows, p.heads)) as usize * row_bytes;
                    out.extend_from_slice(&data[src..src + row_bytes]);
                }
                out
            }
        }
    }

    fn quant_error(&self, t: &TensorInfo, source: quant::QuantError) -> GgufError {
        GgufError::Quant {
            path: self.file.path().to_path_buf(),
            tensor: t.name.clone(),
            ty: t.ty,
            source,
        }
    }

    /// `n` values decoded from `bytes` of type `ty`.
    fn decode(
        &self,
        t: &TensorInfo,
        ty: GgmlType,
        bytes: &[u8],
        n: usize,
    ) -> Result<Vec<f32>, GgufError> {
        let mut values = vec![0f32; n];
        quant::dequantize(ty, bytes, &mut values).map_err(|e| self.quant_error(t, e))?;
        Ok(values)
    }
}

impl TensorStore for GgufStore<'_> {
    type Error = GgufError;

    fn contains(&self, name: &str) -> bool {
        self.views.contains_key(name)
    }

    fn missing(&self, name: &str) -> GgufError {
        GgufError::MissingTensor {
            path: self.file.path().to_path_buf(),
            tensor: self.views.get(name).map(|v| v.tensor.clone()),
            hf_name: name.to_string(),
        }
    }

    fn read(&self, name: &str, expected: &[usize], blocks: bool) -> Result<Values, GgufError> {
        let view = self.views.get(name).ok_or_else(|| self.missing(name))?;
        let (t, first) = self.locate(name, view, expected)?;
        // The shape matched, so the count is the tensor's (or one expert's) and fits.
        let n = expected.iter().product::<usize>();
        // A permuted vector (a q/k bias) is permuted element by element.
        let k = match (view.permuted, t.dims.as_slice()) {
            (Some(_), [_]) => 1,
            _ => t.dims[0],
        };
        let rows = n as u64 / k;
        let row_bytes = t.ty.row_bytes(k);
        let (Some(row_bytes), false) = (
            row_bytes,
            view.permuted.is_some_and(|p| rows % (2 * p.heads) != 0),
        ) else {
            return Err(GgufError::WrongShape {
                path: self.file.path().to_path_buf(),
                tensor: t.name.clone(),
                found: t.torch_shape(),
                expected: expected.to_vec(),
            });
        };
        let bytes = self.gather(t, view, first, rows, row_bytes as usize);
        let values = self.decode(t, t.ty, &bytes, n)?;
        if !blocks || t.ty == GgmlType::F32 {
            return Ok(Values::plain(values));
        }
        let (format, bytes, values) = match conversion(t.ty, k) {
            None => (t.ty.kernel_format(), bytes, values),
            Some(WeightFormat::F32) => return Ok(Values::plain(values)),
            Some(format) => {
                let blocks =
                    quant::quantize(format, &values).map_err(|e| self.quant_error(t, e))?;
                let values = self.decode(t, GgmlType::from_format(format), &blocks, n)?;
                (format, blocks, values)
            }
        };
        Ok(Values {
            values,
            rows: Some(EncodedRows { format, k, bytes }),
        })
    }
}
