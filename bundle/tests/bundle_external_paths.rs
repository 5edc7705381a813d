//! Regression tests for external weight paths (fuzz issue "Embed anywhere,
//! break nowhere"): a recorded path may not reach outside the bundle's folder
//! tree and the allowed folders (not by `..`, not through a symbolic link), the
//! refusal says nothing of the file outside, and devices and FIFOs are refused
//! before they are read, in bounded time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use seam_bundle::{BundleError, BundleReader, BundleWriter, ExternalFile, LoadOptions, Manifest};
use seam_core::DType;

/// A fresh scratch folder for `test` (canonical, so relative climbs are exact).
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seam-ext-paths-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

/// Writes `dir/b.seamb`, whose only external file is `path`, recorded with
/// `content`'s length and CRC-32 (one weight over all of it unless empty).
fn referencing(dir: &Path, path: &str, content: &[u8]) -> PathBuf {
    let manifest: Manifest = serde_json::from_str(
        r#"{"model":"paths","compiler_version":"test","dims":[],"weights":[],
        "kernels":[],"buffers":[],"entry_points":[],
        "stats":{"opt_level":0,"peak_activation_bytes":0,"weight_bytes":0},
        "source_ir":null,"params":[]}"#,
    )
    .unwrap();
    let mut w = BundleWriter::new(manifest);
    let bytes = content.len() as u64;
    let file = w.add_external_file(ExternalFile {
        path: path.into(),
        bytes,
        crc32: crc32fast::hash(content),
    });
    if bytes > 0 {
        w.add_external_weight("w", DType::F32, vec![bytes / 4], file, 0, bytes);
    }
    let bundle = dir.join("b.seamb");
    w.write(&bundle, true).unwrap();
    bundle
}

/// The relative path from folder `dir` (canonical) to absolute path `to`.
fn climb(dir: &Path, to: &str) -> String {
    let up = dir.components().count() - 1;
    format!("{}{}", "../".repeat(up), to.trim_start_matches('/'))
}

/// Opens `bundle` with `allowed` on another thread and returns the error,
/// failing (instead of hanging) if that takes more than 10 seconds.
fn refused_within_10s(bundle: &Path, allowed: &[&str]) -> BundleError {
    let bundle = bundle.to_path_buf();
    let options = LoadOptions {
        allowed_weight_dirs: allowed.iter().map(PathBuf::from).collect(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(BundleReader::open_with(&bundle, &options).map(|_| ()));
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("loading the bundle did not finish within 10 s")
        .expect_err("the bundle loaded")
}

#[test]
fn dev_zero_declared_empty_or_short_is_refused_without_hanging() {
    for len in [0usize, 8] {
        let dir = scratch(&format!("zero{len}"));
        let bundle = referencing(&dir, &climb(&dir, "/dev/zero"), &vec![0; len]);
        // Outside the bundle's folder: refused before it is looked at.
        let err = refused_within_10s(&bundle, &[]);
        assert!(matches!(err, BundleError::ExternalOutside { .. }), "{err}");
        // Allowed, it is still a device, never read.
        let err = refused_within_10s(&bundle, &["/dev"]);
        assert!(
            matches!(err, BundleError::ExternalNotRegular { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}

#[test]
fn a_fifo_in_the_bundle_folder_is_refused_without_hanging() {
    let dir = scratch("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(dir.join("w.bin"))
        .status()
        .unwrap();
    assert!(made.success());
    for len in [0usize, 8] {
        let bundle = referencing(&dir, "w.bin", &vec![0; len]);
        let err = refused_within_10s(&bundle, &[]);
        assert!(
            matches!(err, BundleError::ExternalNotRegular { .. }),
            "{err}"
        );
    }
}

#[test]
fn a_path_climbing_to_etc_passwd_is_refused_without_its_size() {
    let dir = scratch("passwd");
    let real = std::fs::metadata("/etc/passwd")
        .map(|m| m.len())
        .unwrap_or(0);
    let bundle = referencing(&dir, &climb(&dir, "/etc/passwd"), &[7; 4]);
    let err = refused_within_10s(&bundle, &[]);
    assert!(matches!(err, BundleError::ExternalOutside { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("--allow-weights-from"), "{text}");
    assert!(!text.contains(&real.to_string()), "{text}");
    // A file that does not exist outside gets the same words: no existence probe.
    let missing = climb(&dir, "/etc/seam-no-such-file");
    let elsewhere = scratch("passwd-missing");
    let other = refused_within_10s(&referencing(&elsewhere, &missing, &[7; 4]), &[]);
    assert_eq!(
        other.to_string().replace(&missing, "P"),
        text.replace(&climb(&dir, "/etc/passwd"), "P")
    );
}

#[test]
fn a_symlink_in_the_bundle_folder_pointing_outside_is_refused() {
    let outside = scratch("link-target");
    std::fs::write(outside.join("w.bin"), [1u8; 8]).unwrap();
    let dir = scratch("link");
    std::os::unix::fs::symlink(outside.join("w.bin"), dir.join("file-link")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("dir-link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd-link")).unwrap();
    std::os::unix::fs::symlink("/etc/seam-no-such-file", dir.join("dangling")).unwrap();
    for path in [
        "file-link",
        "dir-link/w.bin",
        "dir-link/../link/file-link",
        "passwd-link",
        "dangling",
    ] {
        let bundle = referencing(&dir, path, &[1; 8]);
        let err = refused_within_10s(&bundle, &[]);
        assert!(
            matches!(err, BundleError::ExternalOutside { .. }),
            "{path}: {err}"
        );
    }
    // Allowing the folder the links lead to accepts them.
    let options = LoadOptions {
        allowed_weight_dirs: vec![outside.clone()],
    };
    for path in ["file-link", "dir-link/w.bin"] {
        let bundle = referencing(&dir, path, &[1; 8]);
        let b = BundleReader::open_with(&bundle, &options).unwrap();
        assert_eq!(b.weight_bytes(0), &[1; 8], "{path}");
    }
}

#[test]
fn a_symlink_within_the_bundle_folder_is_followed() {
    let dir = scratch("inner-link");
    std::fs::create_dir_all(dir.join("ckpt")).unwrap();
    std::fs::write(dir.join("ckpt/w.bin"), [2u8; 8]).unwrap();
    std::os::unix::fs::symlink("ckpt/w.bin", dir.join("w.bin")).unwrap();
    let b = BundleReader::open(&referencing(&dir, "w.bin", &[2; 8])).unwrap();
    assert_eq!(b.weight_bytes(0), &[2; 8]);
}

#[test]
fn a_missing_allowed_folder_is_named() {
    let dir = scratch("no-allowed");
    std::fs::write(dir.join("w.bin"), [3u8; 8]).unwrap();
    let bundle = referencing(&dir, "w.bin", &[3; 8]);
    let gone = dir.join("gone");
    let err = BundleReader::open_with(
        &bundle,
        &LoadOptions {
            allowed_weight_dirs: vec![gone.clone()],
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, BundleError::WeightDir { path, .. } if path == &gone.display().to_string()),
        "{err}"
    );
}
