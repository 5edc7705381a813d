//! Writing files safely: atomically, and never over an existing file unasked.

use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same folder and a
/// rename, so no reader ever sees a partial file. An existing regular file at
/// `path` is replaced only when `replace` is set (otherwise the error is
/// `AlreadyExists`); anything else there (an `InvalidInput` error) — a symlink, a directory, a device, a
/// FIFO, a socket — is never replaced.
pub fn write_new_file(path: &Path, bytes: &[u8], replace: bool) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_file() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is there and is not a regular file; it is never replaced",
                    kind_of(&meta)
                ),
            ));
        }
        Ok(_) if !replace => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the file exists",
            ));
        }
        _ => {}
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What kind of file system entry `meta` describes, in words.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_symlink() {
        return "a symbolic link";
    }
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("seam-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn replaces_a_regular_file_only_when_asked() {
        let dir = scratch("regular");
        let path = dir.join("out.bin");
        write_new_file(&path, b"one", false).expect("new file");
        let err = write_new_file(&path, b"two", false).expect_err("exists");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).expect("read"), b"one");
        write_new_file(&path, b"two", true).expect("replaced");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
    }

    #[test]
    fn never_replaces_a_directory() {
        let dir = scratch("dir");
        let err = write_new_file(&dir, b"x", true).expect_err("a directory");
        assert!(err.to_string().contains("a directory"), "{err}");
        assert!(dir.is_dir());
    }

    #[cfg(unix)]
    #[test]
    fn never_replaces_a_symlink_even_with_replace() {
        let dir = scratch("link");
        let target = dir.join("target.txt");
        std::fs::write(&target, b"keep").expect("target");
        let link = dir.join("link.bin");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let err = write_new_file(&link, b"x", true).expect_err("a symlink");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(std::fs::symlink_metadata(&link)
            .expect("still there")
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&target).expect("read"), b"keep");
    }

    #[cfg(unix)]
    #[test]
    fn never_replaces_a_device() {
        let err = write_new_file(Path::new("/dev/null"), b"x", true).expect_err("a device");
        assert!(err.to_string().contains("a device"), "{err}");
    }
}

/// The file of rank `rank` of the shard set written as `set`:
/// `out.seamb` → `out.rank0.seamb`.
pub fn rank_path(set: &Path, rank: u32) -> std::path::PathBuf {
    let stem = set.file_stem().unwrap_or_default().to_string_lossy();
    let name = match set.extension() {
        Some(ext) => format!("{stem}.rank{rank}.{}", ext.to_string_lossy()),
        None => format!("{stem}.rank{rank}"),
    };
    set.with_file_name(name)
}

#[cfg(test)]
mod rank_path_tests {
    use super::*;

    #[test]
    fn ranks_go_before_the_extension() {
        assert_eq!(
            rank_path(Path::new("out/m.seamb"), 3),
            Path::new("out/m.rank3.seamb")
        );
        assert_eq!(rank_path(Path::new("m"), 0), Path::new("m.rank0"));
    }
}
