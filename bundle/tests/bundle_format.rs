//! The bundle format: round trip, and rejection of every kind of corruption with
//! a named error (no panic, nothing touches a GPU).

use seam_bundle::{
    BufferEntry, BufferRole, BundleError, BundleReader, BundleWriter, DimBound, GenerationMeta,
    Manifest, SectionKind, StateEntry, StateLength, FORMAT_VERSION,
};
use seam_core::{DType, SizeExpr};

#[path = "support/sample.rs"]
mod sample;
use sample::{sample_kernel, sample_writer};

fn sample_bytes() -> Vec<u8> {
    sample_writer().to_bytes().expect("sample bundle writes")
}

/// Byte range of the manifest section, read from the section table.
fn manifest_range(bytes: &[u8]) -> std::ops::Range<usize> {
    let off = u64::from_le_bytes(bytes[32 + 8..32 + 16].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(bytes[32 + 16..32 + 24].try_into().unwrap()) as usize;
    off..off + len
}

#[test]
fn round_trip_preserves_manifest_kernels_and_weights() {
    let w = sample_writer();
    let b = BundleReader::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(*b.manifest(), w.manifest);
    assert_eq!(
        b.kernel_source(0),
        "@compute @workgroup_size(64) fn main() {}"
    );
    assert_eq!(
        b.weight_bytes(0),
        (0..48).map(|i| i as u8).collect::<Vec<_>>()
    );
    assert_eq!(b.file_len() % 64, 0);
}

#[test]
fn every_single_byte_flip_in_header_and_manifest_is_rejected() {
    let bytes = sample_bytes();
    let m = manifest_range(&bytes);
    let mut checked = 0;
    for i in (0..m.start).chain(m.clone()) {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            let err = BundleReader::from_bytes(b)
                .expect_err(&format!("flip {flip:#x} at byte {i} accepted"));
            assert!(!err.to_string().is_empty());
            checked += 1;
        }
    }
    assert!(checked > 3 * 200, "only {checked} flips checked");
}

#[test]
fn truncation_anywhere_is_rejected() {
    let bytes = sample_bytes();
    for k in 0..20 {
        let cut = bytes.len() * k / 20;
        let err =
            BundleReader::from_bytes(bytes[..cut].to_vec()).expect_err("truncated bundle accepted");
        assert!(
            matches!(err, BundleError::Truncated { .. } | BundleError::BadMagic),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn wrong_magic_is_named() {
    let mut b = sample_bytes();
    b[..8].copy_from_slice(b"GGUF\0\0\0\0");
    assert!(matches!(
        BundleReader::from_bytes(b),
        Err(BundleError::BadMagic)
    ));
    assert!(matches!(
        BundleReader::from_bytes(Vec::new()),
        Err(BundleError::Truncated { .. })
    ));
}

#[test]
fn newer_format_version_is_named() {
    let mut b = sample_bytes();
    b[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    match BundleReader::from_bytes(b) {
        Err(BundleError::UnsupportedVersion { found, supported }) => {
            assert_eq!((found, supported), (FORMAT_VERSION + 1, FORMAT_VERSION));
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
}

/// Rewrites the header checksum so that only the semantic checks can catch a change.
fn reseal(b: &mut [u8]) {
    let count = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..24]);
    h.update(&b[32..32 + 32 * count]);
    let crc = h.finalize();
    b[24..28].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn oversized_length_fields_are_rejected_without_allocating() {
    // Section length far past the end of the file, header checksum made valid.
    let mut b = sample_bytes();
    b[32 + 16..32 + 24].copy_from_slice(&u64::MAX.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        BundleReader::from_bytes(b),
        Err(BundleError::SectionTable(_))
    ));
    // Declared file length larger than the file.
    let mut b = sample_bytes();
    b[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        BundleReader::from_bytes(b),
        Err(BundleError::Truncated { .. })
    ));
    // Section count far beyond the limit.
    let mut b = sample_bytes();
    b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(BundleReader::from_bytes(b).is_err());
}

#[test]
fn inconsistent_manifests_are_rejected_by_validation() {
    let mut w = sample_writer();
    w.manifest.buffers[1].bytes = SizeExpr::Mul(vec![
        SizeExpr::Dim("tokens".into()),
        SizeExpr::Const(1 << 40),
    ]);
    assert!(matches!(w.to_bytes(), Err(BundleError::ManifestInvalid(_))));
    let mut w = sample_writer();
    w.manifest.entry_points[0].dispatches[0].kernel = 7;
    assert!(matches!(w.to_bytes(), Err(BundleError::ManifestInvalid(_))));
    let mut w = sample_writer();
    w.manifest.buffers[1].bytes = SizeExpr::Dim("batch".into());
    assert!(matches!(w.to_bytes(), Err(BundleError::ManifestInvalid(_))));
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut b = sample_bytes();
    b.push(0);
    assert!(matches!(
        BundleReader::from_bytes(b),
        Err(BundleError::TrailingBytes { extra: 1 })
    ));
}

#[test]
fn existing_files_are_kept_unless_replace_is_asked() {
    let dir = std::env::temp_dir().join(format!("seam-bundle-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.seamb");
    std::fs::write(&path, b"precious").unwrap();
    let w = sample_writer();
    assert!(w.write(&path, false).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    w.write(&path, true).unwrap();
    assert!(BundleReader::open(&path).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The sample plus a `kv_len` state shared by two entry points, `prefill`
/// (appending `tokens` rows) and `decode` (appending 1).
fn stateful_writer() -> BundleWriter {
    let mut w = sample_writer();
    w.manifest.dims.push(DimBound {
        name: "kv_len".into(),
        max: 32,
    });
    w.manifest.buffers.push(BufferEntry {
        name: "k_cache".into(),
        bytes: SizeExpr::Const(32 * 4 * 4),
        role: BufferRole::State,
    });
    w.manifest.states.push(StateEntry {
        name: "k_cache".into(),
        dtype: DType::F32,
        shape: vec![SizeExpr::Dim("kv_len".into()), SizeExpr::Const(4)],
        buffer: 2,
    });
    let forward = w.manifest.entry_points[0].clone();
    for (name, advance) in [
        ("prefill", SizeExpr::Dim("tokens".into())),
        ("decode", SizeExpr::Const(1)),
    ] {
        let mut e = forward.clone();
        e.name = name.into();
        e.states = vec![0];
        e.state_length = Some(StateLength {
            dim: "kv_len".into(),
            advance,
        });
        w.manifest.entry_points.push(e);
    }
    w
}

#[test]
fn multi_entry_bundles_with_shared_states_round_trip() {
    let w = stateful_writer();
    let b = BundleReader::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(*b.manifest(), w.manifest);
    let names: Vec<&str> = b
        .manifest()
        .entry_points
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, ["forward", "prefill", "decode"]);
    assert_eq!(b.manifest().entry_points[2].states, [0]);
}

/// A change that breaks a manifest.
type Corruption = Box<dyn Fn(&mut Manifest)>;

#[test]
fn inconsistent_states_are_rejected_by_validation() {
    let cases: Vec<(&str, Corruption)> = vec![
        ("missing buffer", Box::new(|m| m.states[0].buffer = 99)),
        ("not a state buffer", Box::new(|m| m.states[0].buffer = 1)),
        (
            "does not fit",
            Box::new(|m| m.buffers[2].bytes = SizeExpr::Const(16)),
        ),
        (
            "missing state",
            Box::new(|m| m.entry_points[1].states = vec![3]),
        ),
        (
            "length dim",
            Box::new(|m| m.entry_points[2].state_length.as_mut().unwrap().dim = "tokens".into()),
        ),
        (
            "a session has one length",
            Box::new(|m| {
                m.dims.push(DimBound {
                    name: "other".into(),
                    max: 32,
                });
                m.entry_points[2].state_length.as_mut().unwrap().dim = "other".into();
                m.states.push(StateEntry {
                    name: "v_cache".into(),
                    shape: vec![SizeExpr::Dim("other".into()), SizeExpr::Const(4)],
                    ..m.states[0].clone()
                });
                m.entry_points[2].states = vec![1];
            }),
        ),
        (
            // An entry without a length has pool states, of static shapes.
            "has no length dim, so its shape must be static",
            Box::new(|m| m.entry_points[2].state_length = None),
        ),
        (
            "which no input binds",
            Box::new(|m| {
                m.entry_points[1].state_length.as_mut().unwrap().advance =
                    SizeExpr::Dim("kv_len".into())
            }),
        ),
    ];
    for (expected, corrupt) in cases {
        let mut w = stateful_writer();
        corrupt(&mut w.manifest);
        // The writer validates as the reader does.
        let err = w.to_bytes().expect_err(expected).to_string();
        assert!(err.contains(expected), "{expected}: {err}");
    }
}

#[test]
fn the_optional_tokenizer_section_round_trips_and_is_checksummed() {
    let plain = BundleReader::from_bytes(sample_bytes()).unwrap();
    assert_eq!(plain.tokenizer(), None);
    assert_eq!(plain.sections().len(), 3);

    let json = br#"{"version":"1.0","model":{"type":"WordLevel"}}"#;
    let mut w = sample_writer();
    w.set_tokenizer(json.to_vec());
    let bytes = w.to_bytes().unwrap();
    let b = BundleReader::from_bytes(bytes.clone()).unwrap();
    assert_eq!(b.tokenizer(), Some(&json[..]));
    assert_eq!(*b.manifest(), w.manifest);
    let (kind, offset, len) = b.sections()[3];
    assert_eq!((kind, len), (SectionKind::Tokenizer, json.len() as u64));

    // A flipped byte inside the tokenizer is caught by its section checksum.
    let mut flipped = bytes;
    flipped[offset as usize + 3] ^= 0x20;
    assert!(matches!(
        BundleReader::from_bytes(flipped),
        Err(BundleError::SectionChecksum(SectionKind::Tokenizer))
    ));
}

/// Identical weight blobs (same dtype, shape and bytes: a tied embedding, a
/// folded weight every entry point uses) are stored once; any difference keeps
/// them apart.
#[test]
fn the_optional_generation_section_round_trips_and_is_validated() {
    assert_eq!(
        BundleReader::from_bytes(sample_bytes())
            .unwrap()
            .generation(),
        None
    );
    let meta = GenerationMeta {
        model_name: Some("tiny".into()),
        eos_token_ids: vec![2, 32000],
        bos_token_id: Some(1),
        chat_template: Some("{{ messages }}".into()),
    };
    let mut w = sample_writer();
    w.set_generation(meta.clone());
    let bytes = w.to_bytes().unwrap();
    let b = BundleReader::from_bytes(bytes.clone()).unwrap();
    assert_eq!(b.generation(), Some(&meta));
    let (kind, offset, len) = b.sections()[3];
    assert_eq!(kind, SectionKind::Generation);

    // A hostile section with valid checksums: a negative id, then a string
    // where ids belong, are named errors.
    for (from, to) in [("[2,", "[-2"), ("[2,32000]", "\"32000\"")] {
        let json = String::from_utf8(bytes[offset as usize..(offset + len) as usize].to_vec())
            .unwrap()
            .replace(from, &format!("{to:<width$}", width = from.len()));
        let mut hostile = bytes.clone();
        hostile[offset as usize..(offset + len) as usize].copy_from_slice(json.as_bytes());
        let entry = 32 + 3 * 32;
        let crc = crc32fast::hash(json.as_bytes());
        hostile[entry + 24..entry + 28].copy_from_slice(&crc.to_le_bytes());
        reseal(&mut hostile);
        let err = BundleReader::from_bytes(hostile).unwrap_err();
        assert!(
            matches!(err, BundleError::GenerationInvalid(_)),
            "{json}: {err}"
        );
    }
}

#[test]
fn identical_weights_are_stored_once() {
    let mut w = sample_writer();
    let before = w.to_bytes().unwrap().len();
    let blob: Vec<u8> = (0..4 * 64).map(|i| (i * 7) as u8).collect();
    let a = w.add_weight("embed", DType::F32, vec![4, 16], &blob);
    let b = w.add_weight("lm_head", DType::F32, vec![4, 16], &blob);
    assert_eq!(a, b);
    let stored_once = w.to_bytes().unwrap().len();
    assert!(
        stored_once - before <= blob.len() + 64 + 200,
        "{before} → {stored_once}"
    );
    let mut other = blob.clone();
    other[255] ^= 1;
    assert_ne!(w.add_weight("other", DType::F32, vec![4, 16], &other), a);
    assert_ne!(w.add_weight("reshaped", DType::F32, vec![16, 4], &blob), a);
    assert_ne!(w.add_weight("ints", DType::I32, vec![4, 16], &blob), a);
}

#[test]
fn identical_kernels_are_stored_once() {
    let mut w = sample_writer();
    let first = w.add_kernel(&sample_kernel());
    assert_eq!(first, 0, "the sample's kernel is already stored");
    assert_eq!(w.add_kernel(&sample_kernel()), first);
}
