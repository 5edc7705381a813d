//! A scratch folder per fuzzing process, reused by every run: the importers
//! read paths, so each input is written there first.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `seam-fuzz-<target>-<pid>` under the system's temporary folder, created on
/// first use.
pub fn dir(target: &str) -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("seam-fuzz-{target}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        dir
    })
}

/// Writes `bytes` to `name` in the scratch folder and returns its path.
pub fn write(target: &str, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir(target).join(name);
    std::fs::write(&path, bytes).expect("scratch file");
    path
}
