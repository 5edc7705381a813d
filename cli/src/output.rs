//! Writing output files atomically, never replacing an existing file unasked.

use std::path::Path;

use seam_bundle::files::write_new_file;

use super::CliError;

/// Writes `bytes` to `path` atomically; an existing file is replaced only with `force`.
pub fn write_atomic(path: &Path, bytes: &[u8], force: bool) -> Result<(), CliError> {
    write_new_file(path, bytes, force).map_err(|e| CliError::Output {
        path: path.display().to_string(),
        reason: if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!("{e} (pass --force to replace it)")
        } else {
            e.to_string()
        },
    })
}
