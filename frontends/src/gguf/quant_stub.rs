//! TEMPORARY stand-in for `seam_core::quant` (branch h-quant), with the names
//! the importer uses; deleted when that lands.

use seam_ir::WeightFormat;
use thiserror::Error;

/// A GGUF tensor type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GgmlType {
    /// f32.
    F32,
    /// f16.
    F16,
    /// bf16.
    Bf16,
    /// q8_0.
    Q8_0,
    /// q4_0.
    Q4_0,
    /// q4_1.
    Q4_1,
    /// q4_k.
    Q4K,
    /// q6_k.
    Q6K,
}

/// Why blocks cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuantError {
    /// Not implemented in the stub.
    #[error("{0:?} is not implemented")]
    Unsupported(GgmlType),
    /// Wrong lengths.
    #[error("{bytes} bytes do not hold {values} values")]
    Length {
        /// Bytes.
        bytes: usize,
        /// Values.
        values: usize,
    },
}

impl GgmlType {
    /// The type of GGUF id `id`.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        Some(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            8 => GgmlType::Q8_0,
            12 => GgmlType::Q4K,
            14 => GgmlType::Q6K,
            30 => GgmlType::Bf16,
            _ => return None,
        })
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            GgmlType::Q6K => "q6_k",
            other => other.kernel_format().name(),
        }
    }

    /// Weights per block.
    pub fn block_elems(self) -> u64 {
        match self {
            GgmlType::Q6K => 256,
            other => other.kernel_format().block_elems(),
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> u64 {
        match self {
            GgmlType::Q6K => 210,
            other => other.kernel_format().ggml_block_bytes(),
        }
    }

    /// The nearest format with a kernel.
    pub fn kernel_format(self) -> WeightFormat {
        match self {
            GgmlType::F32 => WeightFormat::F32,
            GgmlType::F16 => WeightFormat::F16,
            GgmlType::Bf16 => WeightFormat::Bf16,
            GgmlType::Q8_0 | GgmlType::Q6K => WeightFormat::Q8_0,
            GgmlType::Q4_0 => WeightFormat::Q4_0,
            GgmlType::Q4_1 => WeightFormat::Q4_1,
            GgmlType::Q4K => WeightFormat::Q4K,
        }
    }
}

impl From<WeightFormat> for GgmlType {
    fn from(f: WeightFormat) -> GgmlType {
        match f {
            WeightFormat::F32 => GgmlType::F32,
            WeightFormat::F16 => GgmlType::F16,
            WeightFormat::Bf16 => GgmlType::Bf16,
            WeightFormat::Q8_0 => GgmlType::Q8_0,
            WeightFormat::Q4_0 => GgmlType::Q4_0,
            WeightFormat::Q4_1 => GgmlType::Q4_1,
            WeightFormat::Q4K => GgmlType::Q4K,
        }
    }
}

fn f16(b: &[u8]) -> f32 {
    half::f16::from_le_bytes([b[0], b[1]]).to_f32()
}

/// Decodes `bytes` of `ty` into `out`.
pub fn dequantize(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    let len = QuantError::Length {
        bytes: bytes.len(),
        values: out.len(),
    };
    let per = ty.block_elems() as usize;
    let bb = ty.block_bytes() as usize;
    if out.len() % per != 0 || bytes.len() != out.len() / per * bb {
        return Err(len);
    }
    match ty {
        GgmlType::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16(c);
            }
        }
        GgmlType::Bf16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::bf16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        GgmlType::Q8_0 => {
            for (o, b) in out.chunks_exact_mut(32).zip(bytes.chunks_exact(34)) {
                let d = f16(b);
                for (x, &q) in o.iter_mut().zip(&b[2..]) {
                    *x = q as i8 as f32 * d;
                }
            }
        }
        other => return Err(QuantError::Unsupported(other)),
    }
    Ok(())
}

/// Encodes `values` in `format`.
pub fn quantize(format: WeightFormat, values: &[f32]) -> Result<Vec<u8>, QuantError> {
    let mut out = Vec::new();
    match format {
        WeightFormat::F32 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        WeightFormat::F16 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes())),
        WeightFormat::Q8_0 => {
            for b in values.chunks(32) {
                let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
                out.extend(b.iter().map(|v| (v * id).round() as i8 as u8));
            }
        }
        other => return Err(QuantError::Unsupported(other.into())),
    }
    Ok(out)
}
