//! External weights: packed weights that are, byte for byte, a range of a
//! checkpoint file are referenced by the bundle (file path relative to the
//! bundle's folder, length, CRC-32, byte range) instead of copied.
//!
//! A parameter qualifies when its frontend knows a file range holding its f32
//! values ([`ExternalOrigin`]) in the layout the bundle packs it in, and the
//! packed bytes equal the file's bytes — compared here, so a wrong origin can
//! only cost space, never correctness. Everything else (converted f16/bf16,
//! folded weights, other packings) stays in the bundle.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use seam_bundle::external::file_checksum;
use seam_bundle::{BundleWriter, ExternalFile, Packing};
use thiserror::Error;

/// Why an external weight could not be referenced.
#[derive(Debug, Error)]
pub enum ExternalError {
    /// A checkpoint file or the bundle's folder could not be read.
    #[error("external weights: cannot read `{path}`: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// No relative path leads from the bundle's folder to the file.
    #[error("external weights: `{file}` has no relative path from `{dir}` (paths must be relative and UTF-8)")]
    NoRelativePath {
        /// The checkpoint file.
        file: PathBuf,
        /// The bundle's folder.
        dir: PathBuf,
    },
}

/// Where a parameter's packed bytes may be found: `bytes` bytes at `offset`
/// of `file`, holding the parameter packed as `packing`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalOrigin {
    /// The file.
    pub file: PathBuf,
    /// Where the bytes start.
    pub offset: u64,
    /// How many bytes.
    pub bytes: u64,
    /// The packing they are in.
    pub packing: Packing,
}

/// Links parameters to checkpoint files for one bundle.
#[derive(Clone, Debug)]
pub struct ExternalWeights {
    /// The bundle's folder, canonical.
    dir: PathBuf,
    /// Parameter name → origin.
    origins: HashMap<String, ExternalOrigin>,
    /// Canonical file path → the bundle's external-file record.
    files: HashMap<PathBuf, ExternalFile>,
}

impl ExternalWeights {
    /// Links for a bundle to be written into `bundle_dir`, with the origins
    /// known for parameters by name.
    pub fn new(
        bundle_dir: &Path,
        origins: impl IntoIterator<Item = (String, ExternalOrigin)>,
    ) -> Result<ExternalWeights, ExternalError> {
        Ok(ExternalWeights {
            dir: canonical(bundle_dir)?,
            origins: origins.into_iter().collect(),
            files: HashMap::new(),
        })
    }

    /// Adds parameter `name`, packed as `packing` into `packed`, to `w` as an
    /// external weight when a file range holds exactly those bytes; returns the
    /// weight index, or `None` when it must be embedded.
    pub fn link(
        &mut self,
        w: &mut BundleWriter,
        name: &str,
        dtype: seam_core::DType,
        shape: Vec<u64>,
        packing: Packing,
        packed: &[u8],
    ) -> Result<Option<u32>, ExternalError> {
        let Some(origin) = self
            .origins
            .get(name)
            .filter(|o| o.packing == packing && o.bytes == packed.len() as u64)
        else {
            return Ok(None);
        };
        let io = |source| ExternalError::Io {
            path: origin.file.clone(),
            source,
        };
        let mut file = File::open(&origin.file).map_err(io)?;
        file.seek(SeekFrom::Start(origin.offset)).map_err(io)?;
        let mut stored = vec![0u8; packed.len()];
        file.read_exact(&mut stored).map_err(io)?;
        if stored != packed {
            tracing::debug!(
                name,
                "checkpoint bytes differ from the packed weight; embedded"
            );
            return Ok(None);
        }
        let key = canonical_file(&origin.file)?;
        let record = match self.files.get(&key) {
            Some(r) => r.clone(),
            None => {
                let path = relative_path(&self.dir, &key)?;
                let (bytes, crc32) = file_checksum(&key).map_err(io)?;
                let r = ExternalFile { path, bytes, crc32 };
                self.files.insert(key, r.clone());
                r
            }
        };
        let fi = w.add_external_file(record);
        Ok(Some(w.add_external_weight(
            name,
            dtype,
            shape,
            fi,
            origin.offset,
            origin.bytes,
        )))
    }
}

fn canonical(path: &Path) -> Result<PathBuf, ExternalError> {
    path.canonicalize().map_err(|source| ExternalError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `file` with its folder made canonical but the file name kept: a file that
/// is a symbolic link (as in the Hugging Face hub cache, whose snapshot files
/// link to content-addressed blobs) is referenced by its link.
fn canonical_file(file: &Path) -> Result<PathBuf, ExternalError> {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match file.file_name() {
        Some(name) => Ok(canonical(dir)?.join(name)),
        None => canonical(file),
    }
}

/// The `/`-separated path from folder `dir` to `file`, both canonical.
fn relative_path(dir: &Path, file: &Path) -> Result<String, ExternalError> {
    let none = || ExternalError::NoRelativePath {
        file: file.to_path_buf(),
        dir: dir.to_path_buf(),
    };
    let d: Vec<Component> = dir.components().collect();
    let f: Vec<Component> = file.components().collect();
    // Different roots (e.g. Windows drives) have no relative path.
    if d.first() != f.first() {
        return Err(none());
    }
    let common = d.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let mut parts = vec![".."; d.len() - common];
    for c in &f[common..] {
        match c {
            Component::Normal(s) => parts.push(s.to_str().ok_or_else(none)?),
            _ => return Err(none()),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::relative_path;
    use std::path::Path;

    #[test]
    fn relative_paths_climb_out_of_the_bundle_folder() {
        let rel = |d: &str, f: &str| relative_path(Path::new(d), Path::new(f)).unwrap();
        assert_eq!(
            rel("/a/ckpt", "/a/ckpt/model.safetensors"),
            "model.safetensors"
        );
        assert_eq!(
            rel("/a/out", "/a/ckpt/m.safetensors"),
            "../ckpt/m.safetensors"
        );
        assert_eq!(rel("/a/b/c", "/x.safetensors"), "../../../x.safetensors");
    }
}
