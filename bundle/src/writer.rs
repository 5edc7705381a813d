//! Writing a bundle: collect kernels and weights, then lay out the file.

use std::collections::HashMap;
use std::path::Path;

use crate::files::write_new_file;
use crate::format::{
    align_up, SectionKind, BASE_FORMAT_VERSION, CACHE_FORMAT_VERSION, EXTERNAL_FORMAT_VERSION,
    FORMAT_VERSION, HEADER_LEN, MAGIC, SECTION_ENTRY_LEN,
};
use crate::{BundleError, ExternalFile, GenerationMeta, KernelEntry, Manifest, WeightEntry};
use seam_core::{DType, Kernel};

/// Builds a bundle. Kernels and weights are appended and referenced by the
/// indices returned; the manifest's other fields are set by the caller.
#[derive(Debug)]
pub struct BundleWriter {
    /// The manifest being built; `kernels` and `weights` are filled by the add methods.
    pub manifest: Manifest,
    shaders: Vec<u8>,
    weights: Vec<u8>,
    tokenizer: Option<Vec<u8>>,
    generation: Option<GenerationMeta>,
    /// Embedded weights by CRC-32 and length, to store identical blobs once.
    blobs: HashMap<(u32, usize), Vec<u32>>,
}

impl BundleWriter {
    /// A writer around a manifest with no kernels or weights yet.
    pub fn new(manifest: Manifest) -> Self {
        BundleWriter {
            manifest,
            shaders: Vec::new(),
            weights: Vec::new(),
            tokenizer: None,
            generation: None,
            blobs: HashMap::new(),
        }
    }

    /// Adds a kernel; an identical kernel (same source and launch description)
    /// is stored once. Returns its index.
    pub fn add_kernel(&mut self, kernel: &Kernel) -> u32 {
        let source_offset = self.shaders.len() as u64;
        let entry = KernelEntry {
            kernel: Kernel {
                wgsl: String::new(),
                ..kernel.clone()
            },
            source_offset,
            source_len: kernel.wgsl.len() as u64,
        };
        let existing = self.manifest.kernels.iter().position(|k| {
            let source = &self.shaders[k.source_offset as usize..][..k.source_len as usize];
            source == kernel.wgsl.as_bytes() && k.kernel == entry.kernel
        });
        if let Some(i) = existing {
            return i as u32;
        }
        self.shaders.extend_from_slice(kernel.wgsl.as_bytes());
        self.manifest.kernels.push(entry);
        self.manifest.kernels.len() as u32 - 1
    }

    /// The WGSL source of kernel `i` added so far.
    pub fn kernel_source(&self, i: usize) -> &str {
        let k = &self.manifest.kernels[i];
        std::str::from_utf8(&self.shaders[k.source_offset as usize..][..k.source_len as usize])
            .unwrap_or_default()
    }

    /// Adds a weight blob, 64-byte aligned. A blob identical to one added
    /// before (same dtype, shape and bytes: a tied embedding, a folded weight
    /// every entry point uses) is stored once; its index is returned.
    pub fn add_weight(&mut self, name: &str, dtype: DType, shape: Vec<u64>, bytes: &[u8]) -> u32 {
        let key = (crc32fast::hash(bytes), bytes.len());
        let same = |w: &WeightEntry| {
            w.file.is_none()
                && w.dtype == dtype
                && w.shape == shape
                && self.weights[w.offset as usize..][..w.bytes as usize] == *bytes
        };
        let candidates = self.blobs.get(&key).map(Vec::as_slice).unwrap_or_default();
        if let Some(&i) = candidates
            .iter()
            .find(|&&i| same(&self.manifest.weights[i as usize]))
        {
            return i;
        }
        let offset = align_up(self.weights.len() as u64);
        self.weights.resize(offset as usize, 0);
        self.weights.extend_from_slice(bytes);
        self.manifest.weights.push(WeightEntry {
            name: name.to_string(),
            dtype,
            shape,
            offset,
            bytes: bytes.len() as u64,
            file: None,
        });
        let index = self.manifest.weights.len() as u32 - 1;
        self.blobs.entry(key).or_default().push(index);
        index
    }

    /// Records an external file (the same path is recorded once). Returns its index.
    pub fn add_external_file(&mut self, file: ExternalFile) -> u32 {
        let files = &mut self.manifest.external_files;
        match files.iter().position(|f| f.path == file.path) {
            Some(i) => i as u32,
            None => {
                files.push(file);
                files.len() as u32 - 1
            }
        }
    }

    /// Adds a weight whose `bytes` bytes lie at `offset` of external file `file`
    /// (from [`BundleWriter::add_external_file`]).
    pub fn add_external_weight(
        &mut self,
        name: &str,
        dtype: DType,
        shape: Vec<u64>,
        file: u32,
        offset: u64,
        bytes: u64,
    ) -> u32 {
        self.manifest.weights.push(WeightEntry {
            name: name.to_string(),
            dtype,
            shape,
            offset,
            bytes,
            file: Some(file),
        });
        self.manifest.weights.len() as u32 - 1
    }

    /// Stores a tokenizer (a Hugging Face `tokenizer.json`) in the optional
    /// tokenizer section, replacing any set before. The bytes are not checked here.
    pub fn set_tokenizer(&mut self, json: Vec<u8>) {
        self.tokenizer = Some(json);
    }

    /// Stores generation metadata in the optional generation section,
    /// replacing any set before (validated when the bundle is laid out).
    pub fn set_generation(&mut self, meta: GenerationMeta) {
        self.generation = Some(meta);
    }

    /// Lays out the file: header, section table, then the sections, 64-byte
    /// aligned. Written as format version 1 unless there are external weights.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BundleError> {
        let manifest = serde_json::to_vec(&self.manifest)
            .map_err(|e| BundleError::ManifestDecode(e.to_string()))?;
        self.manifest
            .validate(self.shaders.len() as u64, self.weights.len() as u64)?;
        let mut sections: Vec<(SectionKind, &[u8])> = vec![
            (SectionKind::Manifest, &manifest),
            (SectionKind::Shaders, &self.shaders),
            (SectionKind::Weights, &self.weights),
        ];
        if let Some(tokenizer) = &self.tokenizer {
            sections.push((SectionKind::Tokenizer, tokenizer));
        }
        let generation = self.generation.as_ref().map(|g| g.to_json()).transpose()?;
        if let Some(generation) = &generation {
            sections.push((SectionKind::Generation, generation));
        }
        let table_end = (HEADER_LEN + sections.len() * SECTION_ENTRY_LEN) as u64;
        let mut out = vec![0u8; table_end as usize];
        let mut table = Vec::with_capacity(sections.len() * SECTION_ENTRY_LEN);
        for &(kind, data) in &sections {
            let offset = align_up(out.len() as u64);
            out.resize(offset as usize, 0);
            out.extend_from_slice(data);
            table.extend_from_slice(&kind.code().to_le_bytes());
            table.extend_from_slice(&0u32.to_le_bytes());
            table.extend_from_slice(&offset.to_le_bytes());
            table.extend_from_slice(&(data.len() as u64).to_le_bytes());
            table.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
            table.extend_from_slice(&0u32.to_le_bytes());
        }
        out.resize(align_up(out.len() as u64) as usize, 0);
        out[..8].copy_from_slice(&MAGIC);
        let version = if self.manifest.shard.is_some() {
            FORMAT_VERSION
        } else if !self.manifest.caches.is_empty() {
            CACHE_FORMAT_VERSION
        } else if !self.manifest.external_files.is_empty() {
            EXTERNAL_FORMAT_VERSION
        } else {
            BASE_FORMAT_VERSION
        };
        out[8..12].copy_from_slice(&version.to_le_bytes());
        out[12..16].copy_from_slice(&(sections.len() as u32).to_le_bytes());
        let total = out.len() as u64;
        out[16..24].copy_from_slice(&total.to_le_bytes());
        out[HEADER_LEN..table_end as usize].copy_from_slice(&table);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&out[..24]);
        hasher.update(&table);
        out[24..28].copy_from_slice(&hasher.finalize().to_le_bytes());
        Ok(out)
    }

    /// Writes the bundle atomically; an existing file is replaced only with `replace`.
    pub fn write(&self, path: &Path, replace: bool) -> Result<(), BundleError> {
        let bytes = self.to_bytes()?;
        write_new_file(path, &bytes, replace).map_err(|source| BundleError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}
