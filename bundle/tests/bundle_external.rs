//! External weights in the bundle format: a weight read from a byte range of a
//! file beside the bundle, found relative to the bundle's folder, checked by
//! length and CRC-32 at load; every way the file can go wrong is a named error
//! (no panic), and bundles without external weights stay format 1.

use std::path::PathBuf;

use seam_bundle::{
    BundleError, BundleReader, BundleWriter, ExternalFile, LoadOptions, Manifest,
    BASE_FORMAT_VERSION, EXTERNAL_FORMAT_VERSION,
};
use seam_core::DType;

/// Bytes of the external file: a pattern with no repeats in 251 bytes.
fn file_bytes() -> Vec<u8> {
    (0..1000u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// Where the external weight lies in the file (12 f32 = [3, 4]).
const OFFSET: u64 = 100;
const LEN: u64 = 48;

/// A fresh scratch folder for `test`.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seam-bundle-ext-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn empty_manifest() -> Manifest {
    Manifest::new("ext", "test")
}

/// A bundle with one embedded weight (index 0) and one external weight (index
/// 1) at [`OFFSET`] of `path`, recorded with `content`'s length and CRC-32.
fn external_writer(path: &str, content: &[u8]) -> BundleWriter {
    let mut w = BundleWriter::new(empty_manifest());
    w.add_weight("embedded", DType::F32, vec![2], &[1, 2, 3, 4, 5, 6, 7, 8]);
    let file = w.add_external_file(ExternalFile {
        path: path.into(),
        bytes: content.len() as u64,
        crc32: crc32fast::hash(content),
    });
    w.add_external_weight("external", DType::F32, vec![3, 4], file, OFFSET, LEN);
    w
}

/// Writes `ckpt/w.bin` under `dir` and a bundle `dir/b.seamb` referencing it.
fn setup(test: &str) -> (PathBuf, PathBuf) {
    let dir = scratch(test);
    std::fs::create_dir_all(dir.join("ckpt")).unwrap();
    let file = dir.join("ckpt/w.bin");
    std::fs::write(&file, file_bytes()).unwrap();
    let bundle = dir.join("b.seamb");
    external_writer("ckpt/w.bin", &file_bytes())
        .write(&bundle, false)
        .unwrap();
    (bundle, file)
}

fn weight_range() -> Vec<u8> {
    file_bytes()[OFFSET as usize..(OFFSET + LEN) as usize].to_vec()
}

#[test]
fn external_weights_load_from_the_bundle_folder() {
    let (bundle, _) = setup("load");
    let bytes = std::fs::read(&bundle).unwrap();
    assert_eq!(bytes[8..12], EXTERNAL_FORMAT_VERSION.to_le_bytes());
    let b = BundleReader::open(&bundle).unwrap();
    assert_eq!(b.weight_bytes(0), &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(b.weight_bytes(1), weight_range());
    assert_eq!(b.manifest().external_files[0].path, "ckpt/w.bin");
    // The bundle holds the embedded weight only.
    assert!(b.file_len() < 4096);
}

#[test]
fn paths_climbing_out_need_an_allowed_folder() {
    let dir = scratch("climb");
    std::fs::create_dir_all(dir.join("ckpt")).unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    std::fs::write(dir.join("ckpt/w.bin"), file_bytes()).unwrap();
    let bundle = dir.join("out/b.seamb");
    external_writer("../ckpt/w.bin", &file_bytes())
        .write(&bundle, false)
        .unwrap();
    let err = BundleReader::open(&bundle).unwrap_err();
    assert!(matches!(err, BundleError::ExternalOutside { .. }), "{err}");
    let allowed = LoadOptions {
        allowed_weight_dirs: vec![dir.join("ckpt")],
    };
    assert_eq!(
        BundleReader::open_with(&bundle, &allowed)
            .unwrap()
            .weight_bytes(1),
        weight_range()
    );
    let bytes = std::fs::read(&bundle).unwrap();
    let b = BundleReader::from_bytes_in_with(bytes, &dir.join("out"), &allowed).unwrap();
    assert_eq!(b.weight_bytes(1), weight_range());
}

#[test]
fn bytes_alone_need_a_folder() {
    let (bundle, _) = setup("bytes");
    let bytes = std::fs::read(&bundle).unwrap();
    let err = BundleReader::from_bytes(bytes.clone()).unwrap_err();
    assert!(
        matches!(&err, BundleError::ExternalNeedsBaseDir { count: 1, first } if first == "ckpt/w.bin"),
        "{err}"
    );
    assert!(err.to_string().contains("from_bytes_in"), "{err}");
    let b = BundleReader::from_bytes_in(bytes, bundle.parent().unwrap()).unwrap();
    assert_eq!(b.weight_bytes(1), weight_range());
}

#[test]
fn a_missing_file_is_named() {
    let (bundle, file) = setup("missing");
    std::fs::remove_file(&file).unwrap();
    let err = BundleReader::open(&bundle).unwrap_err();
    assert!(
        matches!(&err, BundleError::ExternalIo { reference, .. } if reference == "ckpt/w.bin"),
        "{err}"
    );
    assert!(err.to_string().contains("w.bin"), "{err}");
}

#[test]
fn a_truncated_file_is_refused() {
    let (bundle, file) = setup("truncated");
    std::fs::write(&file, &file_bytes()[..999]).unwrap();
    let err = BundleReader::open(&bundle).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::ExternalLength {
                expected: 1000,
                found: 999,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_changed_byte_anywhere_in_the_file_is_refused() {
    // Inside the weight's range and outside it: the whole file is pinned.
    for at in [OFFSET as usize + 3, 900] {
        let (bundle, file) = setup(&format!("flip{at}"));
        let mut changed = file_bytes();
        changed[at] ^= 1;
        std::fs::write(&file, changed).unwrap();
        let err = BundleReader::open(&bundle).unwrap_err();
        assert!(
            matches!(err, BundleError::ExternalChecksum { .. }),
            "byte {at}: {err}"
        );
    }
}

#[test]
fn absolute_paths_are_refused() {
    let err = external_writer("/etc/w.bin", &file_bytes())
        .to_bytes()
        .unwrap_err();
    assert!(matches!(err, BundleError::ExternalPath { .. }), "{err}");
}

#[test]
fn a_weight_past_the_end_of_its_file_is_refused() {
    let err = external_writer("w.bin", &file_bytes()[..120])
        .to_bytes()
        .unwrap_err();
    assert!(
        matches!(&err, BundleError::ManifestInvalid(m) if m.contains("outside external file")),
        "{err}"
    );
}

/// Rewrites the header's version field and its checksum.
fn set_version(bytes: &mut [u8], version: u32) {
    bytes[8..12].copy_from_slice(&version.to_le_bytes());
    let count = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[..24]);
    h.update(&bytes[32..32 + 32 * count]);
    bytes[24..28].copy_from_slice(&h.finalize().to_le_bytes());
}

#[test]
fn format_1_cannot_carry_external_weights() {
    let (bundle, _) = setup("v1");
    let mut bytes = std::fs::read(&bundle).unwrap();
    set_version(&mut bytes, BASE_FORMAT_VERSION);
    let err = BundleReader::from_bytes_in(bytes, bundle.parent().unwrap()).unwrap_err();
    assert!(
        matches!(&err, BundleError::ManifestInvalid(m) if m.contains("format version")),
        "{err}"
    );
}

#[test]
fn bundles_without_external_weights_stay_format_1() {
    let mut w = BundleWriter::new(empty_manifest());
    w.add_weight("embedded", DType::F32, vec![2], &[0; 8]);
    let bytes = w.to_bytes().unwrap();
    assert_eq!(bytes[8..12], BASE_FORMAT_VERSION.to_le_bytes());
    // The manifest JSON has none of the new keys, as format-1 runtimes expect.
    let json = serde_json::to_string(&w.manifest).unwrap();
    assert!(
        !json.contains("external_files") && !json.contains("\"file\""),
        "{json}"
    );
    BundleReader::from_bytes(bytes).unwrap();
}

#[test]
fn a_format_1_manifest_without_the_new_fields_decodes() {
    // Written by hand in the shape of a format-1 manifest (no `file`, no `external_files`).
    let json = r#"{"model":"old","compiler_version":"0.1.0","dims":[],
        "weights":[{"name":"w","dtype":"f32","shape":[2],"offset":0,"bytes":8}],
        "kernels":[],"buffers":[],"entry_points":[],
        "stats":{"opt_level":0,"peak_activation_bytes":0,"weight_bytes":8},
        "source_ir":null,"params":[]}"#;
    let m: Manifest = serde_json::from_str(json).unwrap();
    assert_eq!(m.weights[0].file, None);
    assert!(m.external_files.is_empty());
    m.validate(0, 8).unwrap();
}

#[test]
fn overlapping_and_shared_ranges_each_get_their_bytes() {
    // Tied embeddings give two weights over one range; partial overlaps and a
    // range listed before one it contains are read right too.
    let dir = scratch("overlap");
    std::fs::write(dir.join("w.bin"), file_bytes()).unwrap();
    let mut w = BundleWriter::new(empty_manifest());
    let file = w.add_external_file(ExternalFile {
        path: "w.bin".into(),
        bytes: 1000,
        crc32: crc32fast::hash(&file_bytes()),
    });
    let ranges = [
        (100, 48),
        (120, 48),
        (100, 48),
        (0, 400),
        (396, 4),
        (900, 100),
    ];
    for (i, &(offset, len)) in ranges.iter().enumerate() {
        w.add_external_weight(
            &format!("w{i}"),
            DType::F32,
            vec![len / 4],
            file,
            offset,
            len,
        );
    }
    let bundle = dir.join("b.seamb");
    w.write(&bundle, false).unwrap();
    let b = BundleReader::open(&bundle).unwrap();
    for (i, &(offset, len)) in ranges.iter().enumerate() {
        assert_eq!(
            b.weight_bytes(i),
            &file_bytes()[offset as usize..(offset + len) as usize],
            "weight {i} at {offset}+{len}"
        );
    }
}
