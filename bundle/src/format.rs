//! Constants and the fixed-size header of the bundle format.

use std::fmt;

/// The first eight bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"SEAMBNDL";

/// The newest format version this crate reads and writes: version 2 adds
/// external weights ([`crate::ExternalFile`]), version 3 caches
/// ([`crate::CacheEntry`]), version 4 shard sets ([`crate::ShardEntry`]: a
/// rank's bundle, which a runtime without its other ranks must not run).
pub const FORMAT_VERSION: u32 = 4;

/// The version written for bundles with caches and no shard.
pub const CACHE_FORMAT_VERSION: u32 = 3;

/// The version written for bundles with external weights and no caches.
pub const EXTERNAL_FORMAT_VERSION: u32 = 2;

/// The version written for bundles without external weights, which format-1
/// runtimes read as before (the oldest version read).
pub const BASE_FORMAT_VERSION: u32 = 1;

/// Bytes in the fixed header (before the section table).
pub(crate) const HEADER_LEN: usize = 32;

/// Bytes per section-table entry.
pub(crate) const SECTION_ENTRY_LEN: usize = 32;

/// Alignment of every section and of every weight blob.
pub const ALIGN: u64 = 64;

/// Most sections a bundle may declare.
pub(crate) const MAX_SECTIONS: u32 = 16;

/// What a section holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SectionKind {
    /// The JSON manifest.
    Manifest,
    /// WGSL sources.
    Shaders,
    /// Weight blobs.
    Weights,
    /// Optional: a Hugging Face `tokenizer.json`, stored as the compiler found
    /// it beside the checkpoint. The runtime carries it but never reads it.
    Tokenizer,
    /// Optional: generation metadata ([`crate::GenerationMeta`], JSON): EOS
    /// and BOS ids, the chat template, the model's name.
    Generation,
}

impl SectionKind {
    /// The code stored in the section table.
    pub fn code(self) -> u32 {
        match self {
            SectionKind::Manifest => 1,
            SectionKind::Shaders => 2,
            SectionKind::Weights => 3,
            SectionKind::Tokenizer => 4,
            SectionKind::Generation => 5,
        }
    }

    /// The kind for a code, if known.
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            1 => Some(SectionKind::Manifest),
            2 => Some(SectionKind::Shaders),
            3 => Some(SectionKind::Weights),
            4 => Some(SectionKind::Tokenizer),
            5 => Some(SectionKind::Generation),
            _ => None,
        }
    }
}

impl fmt::Display for SectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SectionKind::Manifest => "manifest",
            SectionKind::Shaders => "shaders",
            SectionKind::Weights => "weights",
            SectionKind::Tokenizer => "tokenizer",
            SectionKind::Generation => "generation",
        })
    }
}

/// Rounds `n` up to a multiple of [`ALIGN`].
pub(crate) fn align_up(n: u64) -> u64 {
    n.div_ceil(ALIGN) * ALIGN
}
