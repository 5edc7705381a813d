//! The weight files of a checkpoint folder: one `*.safetensors` file or shards
//! listed by `model.safetensors.index.json`, memory-mapped, with each tensor
//! found by name.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::SafeTensors;

use super::HfError;

/// The shard index written by `save_pretrained` for sharded checkpoints.
pub(crate) const INDEX_FILE: &str = "model.safetensors.index.json";

/// One memory-mapped safetensors file with its parsed header.
struct Shard {
    path: PathBuf,
    map: Mmap,
    /// Bytes before the tensor data (8-byte length + JSON header).
    data_start: usize,
    metadata: Metadata,
}

/// A tensor's location, dtype and shape, with its raw little-endian bytes.
pub(crate) struct RawTensor<'a> {
    /// The file holding it.
    pub file: &'a Path,
    /// Its header entry.
    pub info: &'a TensorInfo,
    /// Its bytes.
    pub bytes: &'a [u8],
    /// Where its bytes start in `file`.
    pub offset: u64,
}

/// The weight files of a checkpoint.
pub(crate) struct Checkpoint {
    dir: PathBuf,
    shards: Vec<Shard>,
    /// Tensor name → shard, from the index (if any) or the shards' headers.
    by_name: HashMap<String, usize>,
    /// Tensor name → the file the index promises it in.
    indexed: HashMap<String, PathBuf>,
}

impl Checkpoint {
    /// Opens and validates every weight file of `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Checkpoint, HfError> {
        let index_path = dir.join(INDEX_FILE);
        let (files, weight_map) = if index_path.is_file() {
            read_index(&index_path)?
        } else {
            (safetensors_files(dir)?, HashMap::new())
        };
        if files.is_empty() {
            return Err(HfError::NoWeights {
                dir: dir.to_path_buf(),
            });
        }
        let shards = files
            .iter()
            .map(|f| Shard::open(&dir.join(f)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut by_name = HashMap::new();
        for (i, s) in shards.iter().enumerate() {
            for name in s.metadata.tensors().keys() {
                by_name.entry(name.clone()).or_insert(i);
            }
        }
        let indexed = weight_map
            .into_iter()
            .map(|(t, f)| (t, dir.join(f)))
            .collect();
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            shards,
            by_name,
            indexed,
        })
    }

    /// Whether some weight file holds `name`.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The names of every tensor the weight files hold.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// The tensor `name`, or an error naming the file that should hold it.
    pub(crate) fn tensor(&self, name: &str) -> Result<RawTensor<'_>, HfError> {
        let missing = || HfError::MissingTensor {
            tensor: name.to_string(),
            file: self.expected_file(name),
        };
        let shard = &self.shards[*self.by_name.get(name).ok_or_else(missing)?];
        let info = shard.metadata.info(name).ok_or_else(missing)?;
        let (start, end) = info.data_offsets;
        Ok(RawTensor {
            file: &shard.path,
            info,
            bytes: &shard.map[shard.data_start + start..shard.data_start + end],
            offset: (shard.data_start + start) as u64,
        })
    }

    /// Where a missing tensor was expected: the shard the index names, the only
    /// weight file, or the folder.
    fn expected_file(&self, name: &str) -> PathBuf {
        if let Some(f) = self.indexed.get(name) {
            return f.clone();
        }
        match self.shards.as_slice() {
            [only] => only.path.clone(),
            _ => self.dir.clone(),
        }
    }
}

impl Shard {
    fn open(path: &Path) -> Result<Shard, HfError> {
        let io = |source| HfError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and private to this process; a checkpoint
        // rewritten while being imported is outside what the importer promises.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let (header_len, metadata) =
            SafeTensors::read_metadata(&map).map_err(|e| HfError::BadSafetensors {
                path: path.to_path_buf(),
                reason: describe(&e),
            })?;
        Ok(Shard {
            path: path.to_path_buf(),
            map,
            data_start: 8 + header_len,
            metadata,
        })
    }
}

/// A safetensors error in words a user can act on.
fn describe(e: &safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::MetadataIncompleteBuffer | E::InvalidHeaderLength | E::HeaderTooSmall => {
            format!("the file is truncated or its length does not match its header ({e})")
        }
        other => other.to_string(),
    }
}

/// The `*.safetensors` files of `dir`, sorted by name.
fn safetensors_files(dir: &Path) -> Result<Vec<String>, HfError> {
    let entries = std::fs::read_dir(dir).map_err(|source| HfError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".safetensors"))
        .collect();
    files.sort();
    Ok(files)
}

/// The shard files and tensor → file map of an index.
fn read_index(path: &Path) -> Result<(Vec<String>, HashMap<String, String>), HfError> {
    let text = std::fs::read_to_string(path).map_err(|source| HfError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|source| HfError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |problem: &str| HfError::Field {
        path: path.to_path_buf(),
        field: "weight_map".into(),
        problem: problem.into(),
    };
    let map = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| bad("is missing or not an object"))?;
    let mut weight_map = HashMap::new();
    let mut files: Vec<String> = Vec::new();
    for (tensor, file) in map {
        let file = file
            .as_str()
            .filter(|f| !f.contains('/') && !f.contains('\\') && *f != "..")
            .ok_or_else(|| bad("must map tensor names to file names in the folder"))?;
        if !files.iter().any(|f| f == file) {
            files.push(file.to_string());
        }
        weight_map.insert(tensor.clone(), file.to_string());
    }
    files.sort();
    Ok((files, weight_map))
}
