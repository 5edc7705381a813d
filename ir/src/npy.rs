//! NumPy `.npy` files (format version 1.0) for tensors: little-endian `<f4`,
//! `<f2`, `<i4`, `<u4`, C order. The writer pads the header with spaces so the
//! data starts at a multiple of 64 bytes, as NumPy does; the reader also accepts
//! versions 2.0 and 3.0 (4-byte header length) and rejects anything malformed
//! with an [`NpyError`], never a panic.

use std::io::{self, Write};

use half::f16;
use thiserror::Error;

use crate::eval::tensor::{element_count, Tensor, TensorData, TensorError};
use seam_core::DType;

/// The magic string every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Why a tensor could not be read or written as `.npy`.
#[derive(Debug, Error)]
pub enum NpyError {
    /// Writing failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The bytes do not start with `\x93NUMPY`.
    #[error("not an .npy file (the magic string `\\x93NUMPY` is missing)")]
    BadMagic,
    /// The file ends inside the preamble or the header.
    #[error("truncated .npy file: {0}")]
    Truncated(&'static str),
    /// A format version other than 1.0, 2.0 or 3.0.
    #[error("unsupported .npy format version {major}.{minor} (1.0, 2.0 and 3.0 are read)")]
    Version {
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The header dictionary is malformed.
    #[error("malformed .npy header: {0}")]
    Header(String),
    /// The `descr` is not one of the supported dtypes.
    #[error("unsupported .npy dtype `{0}` (supported: '<f4', '<f2', '<i4', '<u4')")]
    DType(String),
    /// The array is stored in Fortran order with rank ≥ 2.
    #[error("Fortran-ordered arrays of rank ≥ 2 are not supported")]
    FortranOrder,
    /// The data length differs from the shape's.
    #[error(
        "the header's shape {shape:?} needs {expected} data bytes, but {found} follow the header"
    )]
    DataLength {
        /// The shape.
        shape: Vec<usize>,
        /// Bytes needed.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// The tensor to write (or the shape read) is inconsistent.
    #[error(transparent)]
    Tensor(#[from] TensorError),
}

/// The `descr` string of a dtype.
fn descr(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "<f4",
        DType::F16 => "<f2",
        DType::I32 => "<i4",
        DType::U32 => "<u4",
    }
}

/// The header dictionary NumPy writes, unpadded.
fn header_dict(t: &Tensor) -> String {
    let shape = match t.shape.as_slice() {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        dims => {
            let parts: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    };
    format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        descr(t.dtype)
    )
}

/// Writes `t` as a version 1.0 `.npy` file (version 2.0 if the header would not
/// fit in 65535 bytes).
pub fn write_npy<W: Write>(mut w: W, t: &Tensor) -> Result<(), NpyError> {
    t.validate()?;
    let dict = header_dict(t);
    // Preamble is 10 bytes (v1) or 12 (v2); pad so preamble + header ≡ 0 mod 64,
    // the header ending in '\n'.
    let (major, preamble) = if dict.len() + 10 + 64 <= usize::from(u16::MAX) {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let unpadded = preamble + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + pad + 1;
    w.write_all(MAGIC)?;
    w.write_all(&[major, 0])?;
    if major == 1 {
        w.write_all(&(header_len as u16).to_le_bytes())?;
    } else {
        w.write_all(&(header_len as u32).to_le_bytes())?;
    }
    w.write_all(dict.as_bytes())?;
    w.write_all(&vec![b' '; pad])?;
    w.write_all(b"\n")?;
    let mut bytes = Vec::with_capacity(t.len() * t.dtype.size_bytes());
    match &t.data {
        TensorData::F32(v) => v.iter().for_each(|x| bytes.extend(x.to_le_bytes())),
        TensorData::F16(v) => v.iter().for_each(|x| bytes.extend(x.to_le_bytes())),
        TensorData::I32(v) => v.iter().for_each(|x| bytes.extend(x.to_le_bytes())),
        TensorData::U32(v) => v.iter().for_each(|x| bytes.extend(x.to_le_bytes())),
    }
    w.write_all(&bytes)?;
    Ok(())
}

/// `t` as the bytes of a `.npy` file.
pub fn to_npy_bytes(t: &Tensor) -> Result<Vec<u8>, NpyError> {
    let mut out = Vec::new();
    write_npy(&mut out, t)?;
    Ok(out)
}

/// A value of the header dictionary.
#[derive(Debug, PartialEq)]
enum PyValue {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
}

/// A tiny parser for the Python literal dictionary of an `.npy` header.
struct HeaderParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl HeaderParser<'_> {
    fn err<T>(&self, what: &str) -> Result<T, NpyError> {
        Err(NpyError::Header(format!("{what} at byte {}", self.pos)))
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), NpyError> {
        if self.eat(c) {
            Ok(())
        } else {
            self.err(&format!("expected `{}`", c as char))
        }
    }

    fn string(&mut self) -> Result<String, NpyError> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return self.err("expected a quoted string"),
        };
        self.pos += 1;
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos] != quote {
            if self.s[self.pos] == b'\\' {
                return self.err("escapes are not supported in strings");
            }
            self.pos += 1;
        }
        if self.pos >= self.s.len() {
            return self.err("unterminated string");
        }
        let text = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
        self.pos += 1;
        Ok(text)
    }

    fn int(&mut self) -> Result<u64, NpyError> {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        // Python 2 era writers append `L` to longs.
        let digits = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
        if self.pos < self.s.len() && self.s[self.pos] == b'L' {
            self.pos += 1;
        }
        match digits.parse::<u64>() {
            Ok(n) => Ok(n),
            Err(_) => self.err("expected a non-negative integer"),
        }
    }

    fn value(&mut self) -> Result<PyValue, NpyError> {
        match self.peek() {
            Some(b'\'' | b'"') => Ok(PyValue::Str(self.string()?)),
            Some(b'(') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(b')') {
                        break;
                    }
                    items.push(self.int()?);
                    if !self.eat(b',') {
                        self.expect(b')')?;
                        // `(3)` is an int, not a tuple, in Python.
                        if items.len() == 1 {
                            return self.err("a 1-tuple needs a trailing comma");
                        }
                        break;
                    }
                }
                Ok(PyValue::Tuple(items))
            }
            _ => {
                let rest = &self.s[self.pos..];
                if rest.starts_with(b"True") {
                    self.pos += 4;
                    Ok(PyValue::Bool(true))
                } else if rest.starts_with(b"False") {
                    self.pos += 5;
                    Ok(PyValue::Bool(false))
                } else {
                    self.err("expected a string, a tuple, True or False")
                }
            }
        }
    }

    fn dict(&mut self) -> Result<Vec<(String, PyValue)>, NpyError> {
        self.expect(b'{')?;
        let mut entries: Vec<(String, PyValue)> = Vec::new();
        loop {
            if self.eat(b'}') {
                break;
            }
            let key = self.string()?;
            self.expect(b':')?;
            let value = self.value()?;
            if entries.iter().any(|(k, _)| *k == key) {
                return self.err(&format!("key '{key}' given twice"));
            }
            entries.push((key, value));
            if !self.eat(b',') {
                self.expect(b'}')?;
                break;
            }
        }
        if self.peek().is_some() {
            return self.err("unexpected text after the dictionary");
        }
        Ok(entries)
    }
}

/// Reads a tensor from the bytes of an `.npy` file.
pub fn read_npy(bytes: &[u8]) -> Result<Tensor, NpyError> {
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(NpyError::BadMagic);
    }
    if bytes.len() < 8 {
        return Err(NpyError::Truncated("the preamble is incomplete"));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_len, start): (usize, usize) = match (major, minor) {
        (1, 0) => match bytes.get(8..10) {
            Some(b) => (usize::from(u16::from_le_bytes([b[0], b[1]])), 10),
            None => return Err(NpyError::Truncated("the header length is missing")),
        },
        (2 | 3, 0) => match bytes.get(8..12) {
            Some(b) => (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12),
            None => return Err(NpyError::Truncated("the header length is missing")),
        },
        _ => return Err(NpyError::Version { major, minor }),
    };
    let header = start
        .checked_add(header_len)
        .and_then(|end| bytes.get(start..end))
        .ok_or(NpyError::Truncated("the file ends inside the header"))?;
    if major < 3 && !header.is_ascii() {
        return Err(NpyError::Header("the header is not ASCII".into()));
    }
    let entries = HeaderParser { s: header, pos: 0 }.dict()?;
    let (mut dt, mut fortran, mut shape) = (None, None, None);
    for (key, value) in entries {
        match (key.as_str(), value) {
            ("descr", PyValue::Str(s)) => dt = Some(s),
            ("fortran_order", PyValue::Bool(b)) => fortran = Some(b),
            ("shape", PyValue::Tuple(s)) => shape = Some(s),
            ("descr" | "fortran_order" | "shape", v) => {
                return Err(NpyError::Header(format!(
                    "key '{key}' has a bad value {v:?}"
                )))
            }
            _ => return Err(NpyError::Header(format!("unknown key '{key}'"))),
        }
    }
    let missing = |k: &str| NpyError::Header(format!("key '{k}' is missing"));
    let descr_str = dt.ok_or_else(|| missing("descr"))?;
    let fortran = fortran.ok_or_else(|| missing("fortran_order"))?;
    let shape = shape.ok_or_else(|| missing("shape"))?;
    let dtype = match descr_str.as_str() {
        "<f4" => DType::F32,
        "<f2" => DType::F16,
        "<i4" => DType::I32,
        "<u4" => DType::U32,
        _ => return Err(NpyError::DType(descr_str)),
    };
    if fortran && shape.len() >= 2 {
        return Err(NpyError::FortranOrder);
    }
    let shape: Vec<usize> = shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| NpyError::Header("a dim does not fit in usize".into()))?;
    let n = element_count(&shape).ok_or_else(|| TensorError::TooLarge(shape.clone()))?;
    let data = &bytes[start + header_len..];
    let size = dtype.size_bytes();
    let expected = n
        .checked_mul(size)
        .ok_or_else(|| TensorError::TooLarge(shape.clone()))?;
    if data.len() != expected {
        return Err(NpyError::DataLength {
            shape,
            expected,
            found: data.len(),
        });
    }
    let words4 = || data.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
    let data = match dtype {
        DType::F32 => TensorData::F32(words4().map(f32::from_le_bytes).collect()),
        DType::I32 => TensorData::I32(words4().map(i32::from_le_bytes).collect()),
        DType::U32 => TensorData::U32(words4().map(u32::from_le_bytes).collect()),
        DType::F16 => TensorData::F16(
            data.chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
    };
    Ok(Tensor::new(shape, data)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(bytes: &[u8]) -> &str {
        let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        std::str::from_utf8(&bytes[10..10 + len]).unwrap()
    }

    #[test]
    fn round_trip_every_dtype() {
        let tensors = [
            Tensor::f32(vec![2, 3], vec![1.0, -2.5, 3.25, f32::INFINITY, 0.0, -0.0]).unwrap(),
            Tensor::f16(
                vec![3],
                vec![f16::from_f32(0.5), f16::from_f32(-1.0), f16::MAX],
            )
            .unwrap(),
            Tensor::i32(vec![2, 1, 2], vec![i32::MIN, -1, 0, i32::MAX]).unwrap(),
            Tensor::u32(vec![], vec![u32::MAX]).unwrap(),
            Tensor::f32(vec![0, 4], vec![]).unwrap(),
        ];
        for t in tensors {
            let bytes = to_npy_bytes(&t).unwrap();
            // Data starts on a 64-byte boundary, right after a '\n'-terminated header.
            let data_start = bytes.len() - t.len() * t.dtype.size_bytes();
            assert_eq!(data_start % 64, 0, "{t}");
            assert_eq!(bytes[data_start - 1], b'\n');
            assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
            assert_eq!(read_npy(&bytes).unwrap(), t);
        }
    }

    #[test]
    fn header_matches_numpy() {
        // The dict NumPy writes for a (2, 3) '<f4' array is 59 bytes; with the
        // 10-byte preamble and the final '\n' that is 70, so 58 spaces pad the
        // header to 118 bytes and the data starts at byte 128. (Newer NumPy versions add
        // extra spaces for in-place growth; readers accept both.)
        let t = Tensor::zeros(DType::F32, vec![2, 3]).unwrap();
        let bytes = to_npy_bytes(&t).unwrap();
        let h = header_of(&bytes);
        assert_eq!(
            h.trim_end(),
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
        );
        assert_eq!(h.len(), 118);
        assert!(h.ends_with('\n'));
        assert_eq!(bytes.len(), 128 + 24);
        let one = to_npy_bytes(&Tensor::i32(vec![5], vec![0; 5]).unwrap()).unwrap();
        assert!(header_of(&one).contains("'shape': (5,)"));
        assert!(header_of(&one).contains("'descr': '<i4'"));
        let scalar = to_npy_bytes(&Tensor::scalar_f32(1.0)).unwrap();
        assert!(header_of(&scalar).contains("'shape': ()"));
        // Little-endian payload: 1.0f32 = 0x3f800000.
        assert_eq!(&scalar[scalar.len() - 4..], &[0, 0, 0x80, 0x3f]);
    }

    #[test]
    fn reads_other_spellings() {
        // Keys in another order, double quotes, no trailing comma, and Fortran order
        // for a vector (where it means nothing).
        let dict = b"{\"shape\": (2,), \"fortran_order\": True, \"descr\": \"<u4\"}\n";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((dict.len() as u16).to_le_bytes());
        bytes.extend(dict);
        bytes.extend([7, 0, 0, 0, 9, 0, 0, 0]);
        assert_eq!(
            read_npy(&bytes).unwrap(),
            Tensor::u32(vec![2], vec![7, 9]).unwrap()
        );
        // Version 2.0 with a 4-byte header length.
        let dict = b"{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1), }\n";
        let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
        bytes.extend((dict.len() as u32).to_le_bytes());
        bytes.extend(dict);
        bytes.extend((-3i32).to_le_bytes());
        assert_eq!(
            read_npy(&bytes).unwrap(),
            Tensor::i32(vec![1, 1], vec![-3]).unwrap()
        );
    }

    fn with_header(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((dict.len() as u16).to_le_bytes());
        bytes.extend(dict.as_bytes());
        bytes.extend(data);
        bytes
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let good = to_npy_bytes(&Tensor::f32(vec![2], vec![1.0, 2.0]).unwrap()).unwrap();
        // Every truncation is an error, never a panic.
        for cut in 0..good.len() {
            assert!(read_npy(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(
            read_npy(b"PK\x03\x04zipfile"),
            Err(NpyError::BadMagic)
        ));
        assert!(matches!(read_npy(b""), Err(NpyError::Truncated(_))));
        let mut v = good.clone();
        v[6] = 4;
        assert!(matches!(
            read_npy(&v),
            Err(NpyError::Version { major: 4, minor: 0 })
        ));
        let mut extra = good.clone();
        extra.push(0);
        assert!(matches!(read_npy(&extra), Err(NpyError::DataLength { .. })));
        let mut long = good.clone();
        long[8] = 0xff;
        long[9] = 0xff;
        assert!(matches!(read_npy(&long), Err(NpyError::Truncated(_))));

        let d8 = [0u8; 8];
        let cases: &[(&str, &str)] = &[
            ("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", "dtype"),
            ("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", "dtype"),
            ("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }", "Fortran"),
            ("{'descr': '<f4', 'shape': (2,), }", "'fortran_order' is missing"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", "trailing comma"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", "integer"),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", "expected a string"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': True}", "unknown key"),
            ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", "twice"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,) junk", "expected `}`"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", "after the dictionary"),
            ("{'descr: '<f4'", "expected `:`"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': 'abc'}", "bad value"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "integer"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}", "too many"),
            ("['descr']", "expected `{`"),
        ];
        for (dict, needle) in cases {
            let e = read_npy(&with_header(dict, &d8)).unwrap_err();
            assert!(e.to_string().contains(needle), "{dict}: {e}");
        }
        // A hand-built tensor whose data disagrees with its shape is not written.
        let bad = Tensor {
            dtype: DType::F32,
            shape: vec![3],
            data: TensorData::F32(vec![1.0]),
        };
        assert!(matches!(
            to_npy_bytes(&bad),
            Err(NpyError::Tensor(TensorError::Length { .. }))
        ));
    }
}
