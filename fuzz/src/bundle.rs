//! A small valid bundle, and the bundle layout with fresh checksums around any
//! manifest bytes (the writer validates its manifest first, so it cannot
//! produce the inconsistent manifests the reader must refuse).

use std::hint::black_box;

use seam_bundle::{Bundle, BundleWriter, GenerationMeta, SectionKind, MAGIC};

/// Header bytes before the section table.
const HEADER_LEN: usize = 32;
/// Bytes per section table entry.
const ENTRY_LEN: usize = 32;
/// Sections start at multiples of this.
const ALIGN: usize = 64;

#[path = "../../bundle/tests/support/sample.rs"]
mod sample;

/// The bundle format tests' sample bundle (one dim, one weight, one kernel
/// with two bindings, two buffers, an entry point with one dispatch, a
/// tokenizer) with generation metadata too: every section kind and most
/// manifest fields.
pub fn sample_writer() -> BundleWriter {
    let mut w = sample::sample_writer();
    w.set_generation(GenerationMeta {
        eos_token_ids: vec![2],
        ..GenerationMeta::default()
    });
    w
}

/// A bundle's sections, in order: `(kind, bytes)`.
pub type Sections = Vec<(SectionKind, Vec<u8>)>;

/// The sections of a bundle the writer made.
pub fn sections(bundle: &[u8]) -> Sections {
    let count = u32::from_le_bytes(bundle[12..16].try_into().unwrap()) as usize;
    (0..count)
        .map(|i| {
            let at = HEADER_LEN + i * ENTRY_LEN;
            let field =
                |o: usize| u64::from_le_bytes(bundle[at + o..at + o + 8].try_into().unwrap());
            let code = u32::from_le_bytes(bundle[at..at + 4].try_into().unwrap());
            let kind = SectionKind::from_code(code).expect("known section");
            let (offset, len) = (field(8) as usize, field(16) as usize);
            (kind, bundle[offset..offset + len].to_vec())
        })
        .collect()
}

/// Lays out a bundle of format `version` holding `sections`, as the writer
/// does: header, table, 64-byte-aligned sections, every checksum right.
pub fn layout(version: u32, sections: &[(SectionKind, Vec<u8>)]) -> Vec<u8> {
    let table_end = HEADER_LEN + sections.len() * ENTRY_LEN;
    let mut out = vec![0u8; table_end];
    let mut table = Vec::with_capacity(sections.len() * ENTRY_LEN);
    for (kind, data) in sections {
        let offset = out.len().next_multiple_of(ALIGN);
        out.resize(offset, 0);
        out.extend_from_slice(data);
        table.extend_from_slice(&kind.code().to_le_bytes());
        table.extend_from_slice(&[0; 4]);
        table.extend_from_slice(&(offset as u64).to_le_bytes());
        table.extend_from_slice(&(data.len() as u64).to_le_bytes());
        table.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        table.extend_from_slice(&[0; 4]);
    }
    out.resize(out.len().next_multiple_of(ALIGN), 0);
    out[..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&version.to_le_bytes());
    out[12..16].copy_from_slice(&(sections.len() as u32).to_le_bytes());
    let total = out.len() as u64;
    out[16..24].copy_from_slice(&total.to_le_bytes());
    out[HEADER_LEN..table_end].copy_from_slice(&table);
    let mut header = out[..24].to_vec();
    header.extend_from_slice(&table);
    out[24..28].copy_from_slice(&crc32fast::hash(&header).to_le_bytes());
    out
}

/// Reads everything an accepted bundle offers, as the runtime would.
pub fn touch(bundle: &Bundle) {
    let manifest = bundle.manifest();
    for i in 0..manifest.kernels.len() {
        black_box(bundle.kernel_source(i));
    }
    for i in 0..manifest.weights.len() {
        black_box(bundle.weight_bytes(i));
    }
    black_box(bundle.tokenizer());
    black_box(bundle.generation());
    black_box(bundle.sections());
}
