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
//! CRC-32 computed, and the weight ranges read straight into their buffers on
//! the way, so the bytes used are the bytes checked (a file changed during the
//! read fails the check).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::{BundleError, Manifest};

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
/// [`crate::ExternalFile`].
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
        let mut ranges: Vec<usize> = (0..manifest.weights.len())
            .filter(|&i| manifest.weights[i].file == Some(fi as u32))
            .collect();
        // Allocated once the file is known to be as long as recorded, which
        // bounds every range (checked by `Manifest::validate`).
        for &i in &ranges {
            out[i] = vec![0u8; manifest.weights[i].bytes as usize];
        }
        ranges.sort_by_key(|&i| manifest.weights[i].offset);
        let mut hasher = crc32fast::Hasher::new();
        let mut scratch = vec![0u8; CHUNK.min(f.bytes as usize).max(1)];
        let at = read_ranges(
            &mut file,
            manifest,
            &ranges,
            &mut out,
            &mut scratch,
            &mut hasher,
        )
        .map_err(io)?;
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

/// Reads `file` front to back into the hasher: each weight range in `ranges`
/// (sorted by offset) straight into its buffer in `out`, the bytes between
/// through `scratch`. A range starting inside bytes already read takes them
/// from the range read last, which holds them. Returns the bytes read (fewer
/// than the ranges need only if the file shrank while being read).
fn read_ranges(
    file: &mut File,
    manifest: &Manifest,
    ranges: &[usize],
    out: &mut [Vec<u8>],
    scratch: &mut [u8],
    hasher: &mut crc32fast::Hasher,
) -> io::Result<u64> {
    let mut at = 0u64;
    // The weight whose range ends at `at`, once one has.
    let mut last: Option<usize> = None;
    for &i in ranges {
        let w = &manifest.weights[i];
        let end = w.offset + w.bytes;
        if w.offset >= at {
            let gap = w.offset - at;
            let n = skip(file, gap, scratch, hasher)?;
            at += n;
            if n < gap {
                return Ok(at);
            }
        } else if let Some(k) = last {
            let from = (w.offset - manifest.weights[k].offset) as usize;
            let n = (at.min(end) - w.offset) as usize;
            let shared = out[k][from..from + n].to_vec();
            out[i][..n].copy_from_slice(&shared);
        }
        if end > at {
            let dst = &mut out[i][(at - w.offset) as usize..];
            let n = read_full(file, dst)?;
            hasher.update(&dst[..n]);
            at += n as u64;
            if n < dst.len() {
                return Ok(at);
            }
            last = Some(i);
        }
    }
    Ok(at + skip(file, u64::MAX, scratch, hasher)?)
}

/// Reads up to `n` bytes through `scratch` into the hasher; returns how many
/// there were before the end of the file.
fn skip(
    file: &mut File,
    n: u64,
    scratch: &mut [u8],
    hasher: &mut crc32fast::Hasher,
) -> io::Result<u64> {
    let mut done = 0u64;
    while done < n {
        let want = scratch
            .len()
            .min((n - done).min(usize::MAX as u64) as usize);
        let got = read_full(file, &mut scratch[..want])?;
        hasher.update(&scratch[..got]);
        done += got as u64;
        if got < want {
            break;
        }
    }
    Ok(done)
}

/// Fills `buf` from `file` as far as the file goes; returns the bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
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
