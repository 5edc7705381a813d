//! External weights: byte ranges of files outside the bundle (a checkpoint's
//! safetensors files), IREE-style parameters.
//!
//! A bundle names each file by a path relative to the bundle's own folder,
//! `/`-separated. `..` components are allowed, so that a bundle may sit beside
//! the checkpoint folder rather than inside it (`models/m/` and `bundles/m.seamb`
//! gives `../models/m/model.safetensors`); absolute paths, empty, `.` and
//! backslash-containing components are refused, so a bundle moves together with
//! its checkpoint and never names a fixed location. At load, a path must resolve
//! (symbolic links followed) inside the bundle's folder tree or a folder the
//! caller allows ([`crate::LoadOptions`], `--allow-weights-from`), else it is
//! refused before the file is looked at (see [`crate::weight_dirs`]). Reading a
//! file only ever yields weights that match the length and CRC-32 recorded at
//! compile time.
//!
//! At load every file is read once, front to back: anything but a regular file
//! is refused before it is opened, its length is checked, its CRC-32 computed,
//! and the weight ranges read straight into their buffers on the way, so the
//! bytes used are the bytes checked (a file changed during the read fails the
//! check). Exactly the recorded length is read, never up to the end of the file.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::weight_dirs::WeightDirs;
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

/// The file's length if it is a regular file, else an `InvalidInput` error
/// (devices, FIFOs and sockets are never read: they may never end).
fn regular_len(meta: &std::fs::Metadata) -> io::Result<u64> {
    if meta.is_file() {
        Ok(meta.len())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a device, FIFO, socket or folder)",
        ))
    }
}

/// The length and CRC-32 of the whole file at `path`, as recorded in an
/// [`crate::ExternalFile`]. Reads at most the length the file has when
/// opened; anything but a regular file is refused before it is opened.
pub fn file_checksum(path: &Path) -> io::Result<(u64, u32)> {
    regular_len(&std::fs::metadata(path)?)?;
    let mut file = File::open(path)?;
    let len = regular_len(&file.metadata()?)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; CHUNK.min(len as usize).max(1)];
    let read = skip(&mut file, len, &mut buf, &mut hasher)?;
    Ok((read, hasher.finalize()))
}

/// The bytes of every external weight of `manifest` (an empty vector for
/// weights in the bundle), read from files inside `dirs` and verified.
pub(crate) fn load(manifest: &Manifest, dirs: &WeightDirs) -> Result<Vec<Vec<u8>>, BundleError> {
    let mut out: Vec<Vec<u8>> = vec![Vec::new(); manifest.weights.len()];
    for (fi, f) in manifest.external_files.iter().enumerate() {
        check_path(&f.path)?;
        let path = dirs.locate(&f.path)?;
        load_file(manifest, fi, &path, &mut out)?;
    }
    Ok(out)
}

/// Opens external file `path` (recorded as `reference`), refusing anything but
/// a regular file before opening it (a FIFO would block the open) and again
/// after (in case it was swapped in between).
fn open_regular(path: &Path, reference: &str) -> Result<File, BundleError> {
    let io = |source| BundleError::ExternalIo {
        path: path.display().to_string(),
        reference: reference.to_string(),
        source,
    };
    let not_regular = || BundleError::ExternalNotRegular {
        path: path.display().to_string(),
        reference: reference.to_string(),
    };
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(not_regular());
    }
    let file = File::open(path).map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(not_regular());
    }
    Ok(file)
}

/// Reads external file `fi` of `manifest`, found at `path`, into the buffers
/// of its weights in `out`, checking its length and CRC-32. Reads exactly the
/// recorded length, never to the end of the file.
fn load_file(
    manifest: &Manifest,
    fi: usize,
    path: &Path,
    out: &mut [Vec<u8>],
) -> Result<(), BundleError> {
    let f = &manifest.external_files[fi];
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
    let mut file = open_regular(path, &f.path)?;
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
        f.bytes,
        out,
        &mut scratch,
        &mut hasher,
    )
    .map_err(io)?;
    if at != f.bytes {
        return Err(changed_length(at));
    }
    // Nothing was read past the recorded length: a file that grew meanwhile
    // shows in its length.
    let now = file.metadata().map_err(io)?.len();
    if now != f.bytes {
        return Err(changed_length(now));
    }
    if hasher.finalize() != f.crc32 {
        return Err(BundleError::ExternalChecksum {
            path: path.display().to_string(),
        });
    }
    Ok(())
}

/// Reads `file` front to back into the hasher: each weight range in `ranges`
/// (sorted by offset) straight into its buffer in `out`, the bytes between
/// through `scratch`. A range starting inside bytes already read takes them
/// from the range read last, which holds them; the bytes after the last range
/// up to `len` (the recorded length) follow, and nothing beyond. Returns the
/// bytes read (fewer than `len` only if the file shrank while being read).
fn read_ranges(
    file: &mut File,
    manifest: &Manifest,
    ranges: &[usize],
    len: u64,
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
    Ok(at + skip(file, len.saturating_sub(at), scratch, hasher)?)
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
}
