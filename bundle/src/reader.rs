//! Reading and verifying a bundle. Nothing here touches a GPU.

use std::ops::Range;
use std::path::Path;

use crate::format::{
    SectionKind, BASE_FORMAT_VERSION, CACHE_FORMAT_VERSION, EXTERNAL_FORMAT_VERSION,
    FORMAT_VERSION, HEADER_LEN, MAGIC, MAX_SECTIONS, SECTION_ENTRY_LEN,
};
use crate::weight_dirs::WeightDirs;
use crate::{external, BundleError, GenerationMeta, LoadOptions, Manifest};

/// A verified bundle in memory: the manifest plus the shader and weight bytes
/// (external weights read and verified too).
#[derive(Debug)]
pub struct Bundle {
    manifest: Manifest,
    bytes: Vec<u8>,
    shaders: Range<usize>,
    weights: Range<usize>,
    /// Per weight: its bytes when external, else empty.
    external: Vec<Vec<u8>>,
    tokenizer: Option<Range<usize>>,
    generation: Option<GenerationMeta>,
}

impl Bundle {
    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The WGSL source of kernel `i` (verified UTF-8 and in range at load).
    pub fn kernel_source(&self, i: usize) -> &str {
        let k = &self.manifest.kernels[i];
        let start = self.shaders.start + k.source_offset as usize;
        let bytes = &self.bytes[start..start + k.source_len as usize];
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    /// The bytes of weight `i` (in range at load), from the bundle or its
    /// external file.
    pub fn weight_bytes(&self, i: usize) -> &[u8] {
        let w = &self.manifest.weights[i];
        if w.file.is_some() {
            return &self.external[i];
        }
        let start = self.weights.start + w.offset as usize;
        &self.bytes[start..start + w.bytes as usize]
    }

    /// The bytes of the optional tokenizer section (a Hugging Face
    /// `tokenizer.json` as the compiler stored it), if the bundle has one.
    pub fn tokenizer(&self) -> Option<&[u8]> {
        self.tokenizer.clone().map(|r| &self.bytes[r])
    }

    /// The optional generation metadata (EOS ids, chat template, …),
    /// validated at load.
    pub fn generation(&self) -> Option<&GenerationMeta> {
        self.generation.as_ref()
    }

    /// Total size of the bundle file (external weights not included).
    pub fn file_len(&self) -> usize {
        self.bytes.len()
    }

    /// `(kind, offset, length)` of every section, for `seam inspect`.
    pub fn sections(&self) -> Vec<(SectionKind, u64, u64)> {
        parse_table(&self.bytes)
            .map(|t| t.into_iter().map(|s| (s.kind, s.offset, s.len)).collect())
            .unwrap_or_default()
    }
}

/// Reads bundles from files or bytes, verifying everything first.
#[derive(Debug, Default, Clone, Copy)]
pub struct BundleReader;

struct Section {
    kind: SectionKind,
    offset: u64,
    len: u64,
    crc: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Checks the fixed header and its checksum, and decodes the section table.
fn parse_table(bytes: &[u8]) -> Result<Vec<Section>, BundleError> {
    let found = bytes.len() as u64;
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(if bytes.len() < MAGIC.len() && MAGIC.starts_with(bytes) {
            BundleError::Truncated {
                expected: HEADER_LEN as u64,
                found,
            }
        } else {
            BundleError::BadMagic
        });
    }
    if bytes.len() < HEADER_LEN {
        return Err(BundleError::Truncated {
            expected: HEADER_LEN as u64,
            found,
        });
    }
    let version = u32_at(bytes, 8);
    let count = u32_at(bytes, 12);
    let declared_len = u64_at(bytes, 16);
    let header_crc = u32_at(bytes, 24);
    if count > MAX_SECTIONS {
        return Err(BundleError::SectionTable(format!(
            "{count} sections declared (at most {MAX_SECTIONS})"
        )));
    }
    let table_end = HEADER_LEN + count as usize * SECTION_ENTRY_LEN;
    if bytes.len() < table_end {
        return Err(BundleError::Truncated {
            expected: table_end as u64,
            found,
        });
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..24]);
    hasher.update(&bytes[HEADER_LEN..table_end]);
    let known = (BASE_FORMAT_VERSION..=FORMAT_VERSION).contains(&version);
    if hasher.finalize() != header_crc {
        // A newer version may lay out its header differently: report the version first.
        if !known {
            return Err(BundleError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        return Err(BundleError::HeaderChecksum);
    }
    if !known {
        return Err(BundleError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if declared_len > found {
        return Err(BundleError::Truncated {
            expected: declared_len,
            found,
        });
    }
    if declared_len < found {
        return Err(BundleError::TrailingBytes {
            extra: found - declared_len,
        });
    }
    let mut sections = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        let at = HEADER_LEN + i * SECTION_ENTRY_LEN;
        let code = u32_at(bytes, at);
        let kind = SectionKind::from_code(code)
            .ok_or_else(|| BundleError::SectionTable(format!("unknown section kind {code}")))?;
        let s = Section {
            kind,
            offset: u64_at(bytes, at + 8),
            len: u64_at(bytes, at + 16),
            crc: u32_at(bytes, at + 24),
        };
        if s.offset < table_end as u64 || s.offset.checked_add(s.len).is_none_or(|e| e > found) {
            return Err(BundleError::SectionTable(format!(
                "section `{kind}` ({} bytes at {}) lies outside the file",
                s.len, s.offset
            )));
        }
        if sections.iter().any(|o: &Section| o.kind == kind) {
            return Err(BundleError::SectionTable(format!(
                "section `{kind}` appears twice"
            )));
        }
        sections.push(s);
    }
    check_padding(bytes, table_end, &sections)?;
    Ok(sections)
}

/// Every byte not covered by the header, the table or a section must be zero,
/// so that a flip anywhere in the file is detected.
fn check_padding(bytes: &[u8], table_end: usize, sections: &[Section]) -> Result<(), BundleError> {
    if bytes[28..32] != [0; 4] {
        return Err(BundleError::SectionTable(
            "reserved header bytes are not zero".into(),
        ));
    }
    let mut covered: Vec<(usize, usize)> = sections
        .iter()
        .map(|s| (s.offset as usize, (s.offset + s.len) as usize))
        .collect();
    covered.sort_unstable();
    let mut at = table_end;
    for (start, end) in covered {
        if start < at {
            return Err(BundleError::SectionTable("sections overlap".into()));
        }
        if bytes[at..start].iter().any(|&b| b != 0) {
            return Err(BundleError::SectionTable(format!(
                "non-zero padding at byte {at}"
            )));
        }
        at = end;
    }
    if bytes[at..].iter().any(|&b| b != 0) {
        return Err(BundleError::SectionTable(format!(
            "non-zero padding at byte {at}"
        )));
    }
    Ok(())
}

impl BundleReader {
    /// Reads and verifies a bundle file; external weight files are found
    /// relative to its folder and must lie inside its folder tree.
    pub fn open(path: &Path) -> Result<Bundle, BundleError> {
        Self::open_with(path, &LoadOptions::default())
    }

    /// [`BundleReader::open`] whose external weight files may also lie inside
    /// the folders `options` allows.
    pub fn open_with(path: &Path, options: &LoadOptions) -> Result<Bundle, BundleError> {
        let bytes = std::fs::read(path).map_err(|source| BundleError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        Self::from_bytes_in_with(bytes, dir, options)
    }

    /// Verifies a bundle in memory: magic, version, lengths, every checksum,
    /// then the manifest's consistency. A bundle with external weights is
    /// refused ([`BundleError::ExternalNeedsBaseDir`]): use
    /// [`BundleReader::from_bytes_in`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Bundle, BundleError> {
        let verified = verify(&bytes)?;
        let manifest = &verified.manifest;
        if let Some(first) = manifest.external_files.first() {
            return Err(BundleError::ExternalNeedsBaseDir {
                count: manifest.external_files.len(),
                first: first.path.clone(),
            });
        }
        let external = vec![Vec::new(); manifest.weights.len()];
        Ok(verified.into_bundle(bytes, external))
    }

    /// [`BundleReader::from_bytes`] for a bundle whose external weight files
    /// (if any) are found relative to `dir`, must lie inside its folder tree,
    /// and are verified.
    pub fn from_bytes_in(bytes: Vec<u8>, dir: &Path) -> Result<Bundle, BundleError> {
        Self::from_bytes_in_with(bytes, dir, &LoadOptions::default())
    }

    /// [`BundleReader::from_bytes_in`] whose external weight files may also lie
    /// inside the folders `options` allows.
    pub fn from_bytes_in_with(
        bytes: Vec<u8>,
        dir: &Path,
        options: &LoadOptions,
    ) -> Result<Bundle, BundleError> {
        let verified = verify(&bytes)?;
        let manifest = &verified.manifest;
        let external = if manifest.external_files.is_empty() {
            vec![Vec::new(); manifest.weights.len()]
        } else {
            external::load(manifest, &WeightDirs::new(dir, options)?)?
        };
        Ok(verified.into_bundle(bytes, external))
    }
}

/// What [`BundleReader::from_bytes`] checked: the decoded manifest, the
/// shader and weight sections' ranges, the optional tokenizer section's, and
/// the decoded generation metadata.
struct Verified {
    manifest: Manifest,
    shaders: Range<usize>,
    weights: Range<usize>,
    tokenizer: Option<Range<usize>>,
    generation: Option<GenerationMeta>,
}

impl Verified {
    /// The bundle of `bytes` (as verified), with its external weights' bytes.
    fn into_bundle(self, bytes: Vec<u8>, external: Vec<Vec<u8>>) -> Bundle {
        Bundle {
            manifest: self.manifest,
            bytes,
            shaders: self.shaders,
            weights: self.weights,
            external,
            tokenizer: self.tokenizer,
            generation: self.generation,
        }
    }
}

fn verify(bytes: &[u8]) -> Result<Verified, BundleError> {
    let sections = parse_table(bytes)?;
    let mut ranges = [None, None, None, None, None];
    for s in &sections {
        let range = s.offset as usize..(s.offset + s.len) as usize;
        if crc32fast::hash(&bytes[range.clone()]) != s.crc {
            return Err(BundleError::SectionChecksum(s.kind));
        }
        ranges[s.kind.code() as usize - 1] = Some(range);
    }
    let [Some(manifest), Some(shaders), Some(weights), tokenizer, generation] = ranges else {
        return Err(BundleError::SectionTable(
            "the manifest, shaders and weights sections are all required".into(),
        ));
    };
    let manifest: Manifest = serde_json::from_slice(&bytes[manifest])
        .map_err(|e| BundleError::ManifestDecode(e.to_string()))?;
    manifest.validate(shaders.len() as u64, weights.len() as u64)?;
    for k in &manifest.kernels {
        let start = shaders.start + k.source_offset as usize;
        if std::str::from_utf8(&bytes[start..start + k.source_len as usize]).is_err() {
            return Err(BundleError::ManifestInvalid(format!(
                "kernel `{}` source is not UTF-8",
                k.kernel.name
            )));
        }
    }
    if !manifest.external_files.is_empty() && u32_at(bytes, 8) < EXTERNAL_FORMAT_VERSION {
        return Err(BundleError::ManifestInvalid(format!(
            "external weight files need format version {EXTERNAL_FORMAT_VERSION}"
        )));
    }
    if !manifest.caches.is_empty() && u32_at(bytes, 8) < CACHE_FORMAT_VERSION {
        return Err(BundleError::ManifestInvalid(format!(
            "caches need format version {CACHE_FORMAT_VERSION}"
        )));
    }
    if manifest.shard.is_some() && u32_at(bytes, 8) < FORMAT_VERSION {
        return Err(BundleError::ManifestInvalid(format!(
            "a shard set's bundle needs format version {FORMAT_VERSION}"
        )));
    }
    tracing::debug!(
        model = %manifest.model,
        kernels = manifest.kernels.len(),
        weights = manifest.weights.len(),
        external_files = manifest.external_files.len(),
        "bundle verified"
    );
    let generation = generation
        .map(|r| GenerationMeta::from_json(&bytes[r]))
        .transpose()?;
    Ok(Verified {
        manifest,
        shaders,
        weights,
        tokenizer,
        generation,
    })
}
