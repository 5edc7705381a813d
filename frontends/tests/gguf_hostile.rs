//! Hostile and malformed GGUF files: each is refused with a named error,
//! quickly and without allocating by the sizes it claims.

mod gguf_support;

use gguf_support::*;
use seam_core::quant::GgmlType;
use seam_frontends::gguf::{self, FormatError, GgufError, GgufFile};
use seam_frontends::hf::ImportOptions;

/// A small valid file: metadata with a string array, an F32 and a Q8_0 tensor.
fn small() -> Writer {
    let mut w = Writer::default();
    w.str("general.architecture", "llama")
        .str_array("tokenizer.ggml.tokens", &["a", "bc", "d"])
        .u32("llama.block_count", 1);
    let vals: Vec<f32> = (0..96).map(|i| i as f32 / 10.0).collect();
    w.values("a.weight", &[2, 32], GgmlType::F32, &vals[..64]);
    w.values("b.weight", &[3, 32], GgmlType::Q8_0, &vals);
    w
}

fn open_bytes(bytes: &[u8], test: &str) -> Result<GgufFile, GgufError> {
    let path = scratch(test).join("f.gguf");
    std::fs::write(&path, bytes).unwrap();
    GgufFile::open(&path)
}

fn format_error(w: &Writer, test: &str) -> FormatError {
    let (bytes, _) = w.build();
    match open_bytes(&bytes, test) {
        Err(GgufError::Format { source, .. }) => source,
        Err(other) => panic!("{test}: expected a format error, got {other}"),
        Ok(_) => panic!("{test}: accepted"),
    }
}

#[test]
fn a_small_file_reads_back() {
    let (bytes, _) = small().build();
    let f = open_bytes(&bytes, "small").unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.tensors().len(), 2);
    let b = f.tensor("b.weight").unwrap();
    assert_eq!(
        (b.dims.clone(), b.ty, b.bytes),
        (vec![32, 3], GgmlType::Q8_0, 3 * 34)
    );
    assert_eq!(f.data(b), &small().tensors[1].data[..]);
    let tokens = f
        .metadata()
        .get("tokenizer.ggml.tokens")
        .unwrap()
        .as_array()
        .unwrap();
    assert_eq!(
        tokens
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect::<Vec<_>>(),
        ["a", "bc", "d"]
    );
}

#[test]
fn a_file_truncated_anywhere_is_a_named_error() {
    let (bytes, layout) = small().build();
    assert!(layout.metadata_start < layout.infos_start && layout.infos_start < layout.data_start);
    let dir = scratch("truncated");
    for cut in 0..bytes.len() {
        let path = dir.join("f.gguf");
        std::fs::write(&path, &bytes[..cut]).unwrap();
        match GgufFile::open(&path) {
            Err(GgufError::Format { source, .. }) => {
                let expected = match cut {
                    0..4 => matches!(source, FormatError::Magic { .. }),
                    _ if cut < layout.data_start => matches!(
                        source,
                        FormatError::Truncated { .. } | FormatError::PastEnd { .. }
                    ),
                    _ => matches!(source, FormatError::PastEnd { .. }),
                };
                assert!(expected, "cut at {cut}: {source}");
            }
            other => panic!("cut at {cut}: {:?}", other.map(|f| f.tensors().len())),
        }
    }
}

#[test]
fn a_string_length_of_2_63_is_refused() {
    let mut w = small();
    let mut value = (1u64 << 63).to_le_bytes().to_vec();
    value.extend_from_slice(b"abc");
    w.raw_kv("general.name", 8, value);
    let err = format_error(&w, "string_len");
    assert!(
        matches!(err, FormatError::TooLarge { value, .. } if value == 1 << 63),
        "{err}"
    );
    assert!(err.to_string().contains("general.name"), "{err}");
}

#[test]
fn an_array_count_of_2_63_is_refused() {
    let mut w = small();
    let mut value = 8u32.to_le_bytes().to_vec();
    value.extend_from_slice(&(1u64 << 63).to_le_bytes());
    w.raw_kv("tokenizer.ggml.merges", 9, value);
    let err = format_error(&w, "array_count");
    assert!(
        matches!(err, FormatError::TooLarge { value, .. } if value == 1 << 63),
        "{err}"
    );
    assert!(err.to_string().contains("tokenizer.ggml.merges"), "{err}");
}

#[test]
fn huge_header_counts_are_refused() {
    let (mut bytes, _) = small().build();
    bytes[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let Err(GgufError::Format { source, .. }) = open_bytes(&bytes, "tensor_count") else {
        panic!()
    };
    assert!(
        matches!(source, FormatError::TooLarge { value, .. } if value == 1 << 40),
        "{source}"
    );
    let (mut bytes, _) = small().build();
    bytes[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    let Err(GgufError::Format { source, .. }) = open_bytes(&bytes, "kv_count") else {
        panic!()
    };
    assert!(matches!(source, FormatError::TooLarge { .. }), "{source}");
}

fn with_tensor(t: RawTensor) -> Writer {
    let mut w = small();
    w.tensors.push(t);
    w
}

fn raw(name: &str, dims: Vec<u64>, type_id: u32, data: Vec<u8>, offset: Option<u64>) -> RawTensor {
    RawTensor {
        name: name.into(),
        dims,
        type_id,
        data,
        offset,
    }
}

#[test]
fn bad_tensor_infos_are_refused_by_name() {
    let err = format_error(
        &with_tensor(raw("c", vec![1; 9], 0, vec![0; 4], None)),
        "n_dims",
    );
    assert_eq!(
        err,
        FormatError::Dims {
            name: "c".into(),
            n_dims: 9
        }
    );

    let huge = vec![1 << 32, 1 << 32, 1 << 32];
    let err = format_error(&with_tensor(raw("c", huge, 0, vec![], None)), "overflow");
    assert!(
        matches!(&err, FormatError::Shape { name, .. } if name == "c"),
        "{err}"
    );

    let err = format_error(
        &with_tensor(raw("c", vec![4], 0, vec![0; 16], Some(1 << 40))),
        "past_end",
    );
    assert!(
        matches!(&err, FormatError::PastEnd { name, offset, .. } if name == "c" && *offset == 1 << 40),
        "{err}"
    );

    let err = format_error(
        &with_tensor(raw("c", vec![4], 0, vec![0; 16], Some(u64::MAX - 31))),
        "wrap",
    );
    assert!(matches!(&err, FormatError::PastEnd { .. }), "{err}");

    let err = format_error(
        &with_tensor(raw("c", vec![4], 0, vec![0; 16], Some(1))),
        "unaligned",
    );
    assert_eq!(
        err,
        FormatError::Unaligned {
            name: "c".into(),
            offset: 1,
            alignment: 32
        }
    );

    let err = format_error(
        &with_tensor(raw("c", vec![4], 99, vec![0; 16], None)),
        "type",
    );
    assert_eq!(
        err,
        FormatError::TensorType {
            name: "c".into(),
            id: 99
        }
    );

    let err = format_error(
        &with_tensor(raw("a.weight", vec![4], 0, vec![0; 16], None)),
        "dup",
    );
    assert_eq!(
        err,
        FormatError::DuplicateTensor {
            name: "a.weight".into()
        }
    );

    let err = format_error(
        &with_tensor(raw("c", vec![16], GgmlType::Q8_0.id(), vec![0; 34], None)),
        "block",
    );
    assert!(matches!(&err, FormatError::Shape { .. }), "{err}");

    let err = format_error(&with_tensor(raw("c", vec![4, 0], 0, vec![], None)), "zero");
    assert!(matches!(&err, FormatError::Shape { .. }), "{err}");
}

#[test]
fn bad_metadata_is_refused_by_name() {
    let mut w = small();
    w.kvs
        .push(("llama.block_count".into(), 4, 2u32.to_le_bytes().to_vec()));
    assert_eq!(
        format_error(&w, "dup_key"),
        FormatError::DuplicateKey {
            key: "llama.block_count".into()
        }
    );

    let mut w = small();
    w.raw_kv("x", 13, vec![0; 8]);
    assert!(matches!(
        format_error(&w, "value_type"),
        FormatError::ValueType { id: 13, .. }
    ));

    let mut w = small();
    w.alignment = Some(48);
    assert_eq!(
        format_error(&w, "alignment"),
        FormatError::Alignment { value: 48 }
    );

    let mut w = small();
    w.raw_kv(
        "x",
        8,
        [2u64.to_le_bytes().to_vec(), vec![0xff, 0xfe]].concat(),
    );
    assert!(matches!(format_error(&w, "utf8"), FormatError::Utf8 { .. }));

    let (mut bytes, _) = small().build();
    bytes[4..8].copy_from_slice(&1u32.to_le_bytes());
    let Err(GgufError::Format { source, .. }) = open_bytes(&bytes, "version") else {
        panic!()
    };
    assert_eq!(source, FormatError::Version { version: 1 });
}

#[test]
fn a_custom_alignment_is_honoured() {
    let mut w = small();
    w.alignment = Some(64);
    let (bytes, layout) = w.build();
    assert_eq!(layout.data_start % 64, 0);
    let f = open_bytes(&bytes, "align64").unwrap();
    assert_eq!(
        f.data(f.tensor("b.weight").unwrap()),
        &small().tensors[1].data[..]
    );
}

fn import_err(w: &Writer, test: &str) -> GgufError {
    let path = scratch(test).join("m.gguf");
    w.write(&path);
    match gguf::import(&path, &ImportOptions::default()) {
        Err(e) => e,
        Ok(_) => panic!("{test}: imported"),
    }
}

#[test]
fn hostile_hyperparameters_are_refused_before_the_graph_is_built() {
    let mut w = fixture_gguf("llama", GgmlType::F32);
    w.u64("llama.block_count", 1 << 40);
    let err = import_err(&w, "block_count_huge");
    assert!(
        matches!(&err, GgufError::TooLarge { key, value, .. } if key == "llama.block_count" && *value == 1 << 40),
        "{err}"
    );

    w.u32("llama.block_count", 3);
    let err = import_err(&w, "block_count_3");
    assert!(
        matches!(&err, GgufError::CountMismatch { key, value: 3, held: 2, .. } if key == "llama.block_count"),
        "{err}"
    );

    let mut w = fixture_gguf("mixtral", GgmlType::F32);
    w.u32("llama.expert_count", 1000);
    let err = import_err(&w, "experts");
    assert!(
        matches!(&err, GgufError::CountMismatch { key, value: 1000, held: 4, .. } if key == "llama.expert_count"),
        "{err}"
    );

    let mut w = fixture_gguf("llama", GgmlType::F32);
    w.u32("llama.embedding_length", 1 << 30);
    let err = import_err(&w, "embedding");
    assert!(
        matches!(&err, GgufError::TooLarge { key, .. } if key == "llama.embedding_length"),
        "{err}"
    );
}

#[test]
fn unsupported_models_are_refused_by_name() {
    let mut w = fixture_gguf("llama", GgmlType::F32);
    w.str("llama.rope.scaling.type", "yarn");
    let err = import_err(&w, "rope_scaling");
    assert!(
        matches!(&err, GgufError::Unsupported { key, .. } if key == "llama.rope.scaling.type"),
        "{err}"
    );

    let mut w = fixture_gguf("llama", GgmlType::F32);
    w.str("general.architecture", "gpt2");
    assert!(
        matches!(import_err(&w, "arch"), GgufError::UnknownArchitecture { architecture, .. } if architecture == "gpt2")
    );

    let mut w = fixture_gguf("llama", GgmlType::F32);
    w.u32("llama.feed_forward_length", 128);
    let err = import_err(&w, "ffn");
    assert!(
        matches!(&err, GgufError::WrongShape { tensor, .. } if tensor.ends_with("ffn_gate.weight")),
        "{err}"
    );

    let mut w = fixture_gguf("llama", GgmlType::F32);
    w.tensors.retain(|t| t.name != "blk.1.attn_v.weight");
    let err = import_err(&w, "missing");
    assert!(
        matches!(&err, GgufError::MissingTensor { hf_name, .. } if hf_name == "model.layers.1.self_attn.v_proj.weight"),
        "{err}"
    );
}
