//! External weights: byte ranges of files outside the bundle (a checkpoint's
//! safetensors files), IREE-style parameters.
//!
//! A bundle names each file by a path relative to the bundle's own folder,
//! `/`-separated. `..` components are allowed, so that a bundle may sit beside
//! the checkpoint folder rather than inside it (`models/m/` and `bundles/m.seamb`
//! gives `../models/m/model.safetensors`); absolute paths, empty, `.` and
//! backslash-containing components are refused, so a bundle moves together with
//! its checkpoint and never names a fixed location. Reading a file only ever
//! yields weights that match the length and CRC-32 recorded at compile time.
//!
//! At load every file is read once, front to back: its length is checked, its
//! CRC-32 computed, and the weight ranges copied out on the way, so the bytes
//! used are the bytes checked (a file changed during the read fails the check).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{BundleError, Manifest};

/// Bytes read per step while checksumming a file.
const CHUNK: usize = 8 << 20;

/// Checks that `path` is a relative, `/`-separated path as described in the
/// module documentation.
pub fn check_path(path: &str) -> Result<(), BundleError> {
    let refuse = |reason: &str| {
        Err(BundleError::ExternalPath {
            path: path.to_string(),
            reason: reason.to_string(),
        })
    };
    if path.starts_with('/') || Path::new(path).is_absolute() {
        return refuse(
            "absolute paths are not allowed (paths are relative to the bundle's folder)",
        );
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." {
            return refuse("empty or `.` components are not allowed");
        }
        if part.contains(['\\', '\0', ':']) {
            return refuse("a component contains `\\`, `:` or a NUL byte");
        }
    }
    Ok(())
}

/// The file `path` (checked by [`check_path`]) names, relative to `base`.
pub fn resolve(base: &Path, path: &str) -> Result<PathBuf, BundleError> {
    check_path(path)?;
    Ok(path.split('/').fold(base.to_path_buf(), |p, c| p.join(c)))
}

/// The length and CRC-32 of the whole file at `path`, as recorded in an
/// [`super::ExternalFile`].
pub fn file_checksum(path: &Path) -> io::Result<(u64, u32)> {
    let mut file = File::open(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((len, hasher.finalize()));
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
}

/// The bytes of every external weight of `manifest` (an empty vector for
/// weights in the bundle), read from files relative to `base` and verified.
pub(crate) fn load(manifest: &Manifest, base: &Path) -> Result<Vec<Vec<u8>>, BundleError> {
    let mut out: Vec<Vec<u8>> = vec![Vec::new(); manifest.weights.len()];
    for (fi, f) in manifest.external_files.iter().enumerate() {
        let path = resolve(base, &f.path)?;
        let io = |source| BundleError::ExternalIo {
            path: path.display().to_string(),
            reference: f.path.clone(),
            source,
        };
        let changed_length = |found| BundleError::ExternalLength {
            path: path.display().to_string(),
            expected: f.bytes,
            found,
        };
        let mut file = File::open(&path).map_err(io)?;
        let found = file.metadata().map_err(io)?.len();
        if found != f.bytes {
            return Err(changed_length(found));
        }
        let ranges: Vec<usize> = (0..manifest.weights.len())
            .filter(|&i| manifest.weights[i].file == Some(fi as u32))
            .collect();
        // Allocated once the file is known to be as long as recorded, which
        // bounds every range (checked by `Manifest::validate`).
        for &i in &ranges {
            out[i] = vec![0u8; manifest.weights[i].bytes as usize];
        }
        let mut hasher = crc32fast::Hasher::new();
        let mut buf = vec![0u8; CHUNK.min(f.bytes as usize).max(1)];
        let mut at = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            hasher.update(chunk);
            let end = at + n as u64;
            for &i in &ranges {
                let w = &manifest.weights[i];
                let (lo, hi) = (w.offset.max(at), (w.offset + w.bytes).min(end));
                if lo < hi {
                    out[i][(lo - w.offset) as usize..(hi - w.offset) as usize]
                        .copy_from_slice(&chunk[(lo - at) as usize..(hi - at) as usize]);
                }
            }
            at = end;
        }
        if at != f.bytes {
            return Err(changed_length(at));
        }
        if hasher.finalize() != f.crc32 {
            return Err(BundleError::ExternalChecksum {
                path: path.display().to_string(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_and_plain() {
        for ok in [
            "model.safetensors",
            "../ckpt/model-00001.safetensors",
            "a/b/c",
        ] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/abs/model.safetensors",
            "",
            "a//b",
            "./a",
            "a\\b",
            "c:x",
            "a/",
        ] {
            assert!(
                matches!(check_path(bad), Err(BundleError::ExternalPath { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn resolve_joins_components_to_the_base() {
        assert_eq!(
            resolve(Path::new("/b"), "../c/d.safetensors").unwrap(),
            Path::new("/b/../c/d.safetensors")
        );
    }
}
