//! The GGUF container (versions 2 and 3, little-endian): magic, version,
//! tensor and metadata counts, the metadata, the tensor infos and the aligned
//! data section, memory-mapped. Every count, length, dim, type and offset is
//! checked against the bytes present and the limits below before anything is
//! allocated or looped over, so a hostile file gets a [`FormatError`], never a
//! panic or a large allocation.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::cursor::Cursor;
use super::error::{FormatError, GgufError};
use super::metadata::{read_value, Metadata, MAX_ARRAY_ELEMENTS};
use super::quant::GgmlType;

/// The first four bytes of every GGUF file.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// The most tensors a file may declare.
pub const MAX_TENSORS: u64 = 1 << 20;
/// The most metadata entries a file may declare.
pub const MAX_METADATA_ENTRIES: u64 = 1 << 20;
/// The longest metadata key (GGUF's own limit).
pub const MAX_KEY_BYTES: u64 = 65_535;
/// The longest tensor name accepted.
pub const MAX_NAME_BYTES: u64 = 4096;
/// The most dims of a tensor (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;
/// The alignment of the data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// One tensor's header entry, checked to lie inside the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Its name.
    pub name: String,
    /// Its dims in ggml order: `dims[0]` varies fastest (torch's last dim).
    pub dims: Vec<u64>,
    /// Its element type.
    pub ty: GgmlType,
    /// Where its bytes start in the file.
    pub offset: u64,
    /// How many bytes it has.
    pub bytes: u64,
}

impl TensorInfo {
    /// The shape in torch order (slowest-varying first).
    pub fn torch_shape(&self) -> Vec<u64> {
        self.dims.iter().rev().copied().collect()
    }
}

/// A memory-mapped GGUF file with its parsed, checked header.
pub struct GgufFile {
    path: PathBuf,
    map: Mmap,
    version: u32,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
}

impl GgufFile {
    /// Maps and parses `path`.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and private to this process; a file
        // rewritten while being imported is outside what the importer promises.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let header = parse(&map).map_err(|source| GgufError::Format {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            map,
            version: header.version,
            metadata: header.metadata,
            by_name: header
                .tensors
                .iter()
                .enumerate()
                .map(|(i, t)| (t.name.clone(), i))
                .collect(),
            tensors: header.tensors,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Every tensor, in the file's order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// A tensor's bytes (checked to lie inside the file when it was parsed).
    pub fn data(&self, tensor: &TensorInfo) -> &[u8] {
        &self.map[tensor.offset as usize..(tensor.offset + tensor.bytes) as usize]
    }
}

/// A parsed header.
pub(crate) struct Header {
    pub version: u32,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
}

/// Parses and checks the header of the GGUF file `bytes`.
pub(crate) fn parse(bytes: &[u8]) -> Result<Header, FormatError> {
    let mut c = Cursor::new(bytes);
    let magic: [u8; 4] = c
        .array(|| "the magic".into())
        .map_err(|_| FormatError::Magic {
            found: bytes.iter().take(4).copied().collect(),
        })?;
    if magic != MAGIC {
        return Err(FormatError::Magic {
            found: magic.to_vec(),
        });
    }
    let version = c.u32(|| "the version".into())?;
    if !(2..=3).contains(&version) {
        return Err(FormatError::Version { version });
    }
    let n_tensors = c.u64(|| "the tensor count".into())?;
    let n_kv = c.u64(|| "the metadata count".into())?;
    // A tensor info takes at least 8 + 4 + 8 + 4 + 8 bytes, a metadata entry 8 + 4 + 1.
    bounded(&c, n_tensors, MAX_TENSORS, 32, "the tensor count")?;
    bounded(&c, n_kv, MAX_METADATA_ENTRIES, 13, "the metadata count")?;
    let metadata = read_metadata(&mut c, n_kv)?;
    let alignment = alignment(&metadata)?;
    let mut infos = Vec::with_capacity(n_tensors as usize);
    let mut seen = HashMap::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let info = read_tensor_info(&mut c, i)?;
        if seen.insert(info.name.clone(), i).is_some() {
            return Err(FormatError::DuplicateTensor { name: info.name });
        }
        infos.push(info);
    }
    let data_start = c.pos().div_ceil(alignment).saturating_mul(alignment);
    let data_len = (bytes.len() as u64).saturating_sub(data_start);
    let tensors = infos
        .into_iter()
        .map(|t| place(t, data_start, data_len, alignment))
        .collect::<Result<_, _>>()?;
    Ok(Header {
        version,
        metadata,
        tensors,
    })
}

/// Errors unless `count <= limit` and `count` items of at least `min_bytes`
/// fit in the bytes left.
fn bounded(
    c: &Cursor<'_>,
    count: u64,
    limit: u64,
    min_bytes: u64,
    what: &str,
) -> Result<(), FormatError> {
    if count > limit {
        return Err(FormatError::TooLarge {
            what: what.to_string(),
            value: count,
            limit,
        });
    }
    c.check_fits(count, min_bytes, || format!("{count} entries of {what}"))
}

/// Reads `n` metadata entries (key, value type, value).
fn read_metadata(c: &mut Cursor<'_>, n: u64) -> Result<Metadata, FormatError> {
    let mut metadata = Metadata::default();
    let mut budget = MAX_ARRAY_ELEMENTS;
    for i in 0..n {
        let key = c.string(MAX_KEY_BYTES, || format!("metadata entry {i}'s key"))?;
        let what = || format!("metadata `{key}`");
        let ty = c.u32(|| format!("{} (its type)", what()))?;
        let value = read_value(c, ty, 0, &mut budget, &what)?;
        metadata.insert(key, value)?;
    }
    Ok(metadata)
}

/// `general.alignment` (default 32), a power of two.
fn alignment(metadata: &Metadata) -> Result<u64, FormatError> {
    match metadata.get("general.alignment") {
        None => Ok(DEFAULT_ALIGNMENT),
        Some(v) => match v.as_u64() {
            Some(a) if a.is_power_of_two() => Ok(a),
            _ => Err(FormatError::Alignment {
                value: v.as_u64().unwrap_or(0),
            }),
        },
    }
}

/// Reads tensor info `i`: name, dims, type and data offset, checking the dims
/// and computing the byte size (offset relative to the data section).
fn read_tensor_info(c: &mut Cursor<'_>, i: u64) -> Result<TensorInfo, FormatError> {
    let name = c.string(MAX_NAME_BYTES, || format!("tensor {i}'s name"))?;
    let n_dims = c.u32(|| format!("tensor `{name}`'s dim count"))?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(FormatError::Dims { name, n_dims });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for d in 0..n_dims {
        dims.push(c.u64(|| format!("tensor `{name}`'s dim {d}"))?);
    }
    let id = c.u32(|| format!("tensor `{name}`'s type"))?;
    let offset = c.u64(|| format!("tensor `{name}`'s data offset"))?;
    let Ok(ty) = GgmlType::from_id(id) else {
        return Err(FormatError::TensorType { name, id });
    };
    let bytes = tensor_bytes(&name, &dims, ty)?;
    Ok(TensorInfo {
        name,
        dims,
        ty,
        offset,
        bytes,
    })
}

/// The byte size of a tensor of `dims` and `ty`, checking every dim is
/// positive, the first is whole blocks and nothing overflows.
fn tensor_bytes(name: &str, dims: &[u64], ty: GgmlType) -> Result<u64, FormatError> {
    let bad = |problem: &str| FormatError::Shape {
        name: name.to_string(),
        dims: dims.to_vec(),
        problem: problem.to_string(),
    };
    if dims.contains(&0) {
        return Err(bad("a dim is zero"));
    }
    if dims[0] % ty.block_elems() != 0 {
        return Err(bad(&format!(
            "the first dim is not a multiple of {}'s {}-weight block",
            ty.name(),
            ty.block_elems()
        )));
    }
    dims[1..]
        .iter()
        .try_fold(
            (dims[0] / ty.block_elems()).checked_mul(ty.block_bytes()),
            |acc, &d| Some(acc?.checked_mul(d)),
        )
        .flatten()
        .filter(|&b| b <= i64::MAX as u64)
        .ok_or_else(|| bad("its byte size overflows"))
}

/// Checks a tensor's data range (`offset` relative to the data section) lies in
/// the file and is aligned; returns it with its offset made absolute.
fn place(
    mut t: TensorInfo,
    data_start: u64,
    data_len: u64,
    alignment: u64,
) -> Result<TensorInfo, FormatError> {
    if t.offset % alignment != 0 {
        return Err(FormatError::Unaligned {
            name: t.name,
            offset: t.offset,
            alignment,
        });
    }
    match t.offset.checked_add(t.bytes) {
        Some(end) if end <= data_len => {
            t.offset += data_start;
            Ok(t)
        }
        _ => Err(FormatError::PastEnd {
            name: t.name,
            offset: t.offset,
            bytes: t.bytes,
            data: data_len,
        }),
    }
}
