//! Typed access to a GGUF file's metadata, with errors that name the key and
//! the hostile-number limits of the Hugging Face importer.

use std::path::{Path, PathBuf};

use super::error::GgufError;
use super::metadata::{Metadata, Value};
use crate::hf::config::{MAX_COUNT, MAX_SIZE};

/// The metadata of one file, read key by key; `{arch}.…` keys are prefixed
/// with the architecture.
pub(crate) struct Keys<'a> {
    path: PathBuf,
    meta: &'a Metadata,
    arch: String,
}

impl<'a> Keys<'a> {
    /// Keys of `meta` (from `path`) for architecture `arch`.
    pub(crate) fn new(path: &Path, meta: &'a Metadata, arch: &str) -> Self {
        Keys {
            path: path.to_path_buf(),
            meta,
            arch: arch.to_string(),
        }
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `{arch}.{suffix}`.
    pub(crate) fn arch_key(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.arch)
    }

    /// An error about `key`'s value.
    pub(crate) fn error(&self, key: &str, problem: impl Into<String>) -> GgufError {
        GgufError::Key {
            path: self.path.clone(),
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    /// An "unsupported" error about `key`.
    pub(crate) fn unsupported(&self, key: &str, why: impl Into<String>) -> GgufError {
        GgufError::Unsupported {
            path: self.path.clone(),
            key: key.to_string(),
            why: why.into(),
        }
    }

    /// The raw value of `key`, if present.
    pub(crate) fn value(&self, key: &str) -> Option<&'a Value> {
        self.meta.get(key)
    }

    /// A non-negative integer, if present.
    pub(crate) fn opt_u64(&self, key: &str) -> Result<Option<u64>, GgufError> {
        self.value(key)
            .map(|v| {
                v.as_u64().ok_or_else(|| {
                    self.error(
                        key,
                        format!("must be a non-negative integer, found a {}", v.type_name()),
                    )
                })
            })
            .transpose()
    }

    /// A number, if present.
    pub(crate) fn opt_f64(&self, key: &str) -> Result<Option<f64>, GgufError> {
        self.value(key)
            .map(|v| {
                v.as_f64().ok_or_else(|| {
                    self.error(key, format!("must be a number, found a {}", v.type_name()))
                })
            })
            .transpose()
    }

    /// A string, if present.
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, GgufError> {
        self.value(key)
            .map(|v| {
                v.as_str().ok_or_else(|| {
                    self.error(key, format!("must be a string, found a {}", v.type_name()))
                })
            })
            .transpose()
    }

    /// A boolean, if present.
    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        self.value(key)
            .map(|v| {
                v.as_bool().ok_or_else(|| {
                    self.error(key, format!("must be a bool, found a {}", v.type_name()))
                })
            })
            .transpose()
    }

    /// A required string.
    pub(crate) fn str(&self, key: &str) -> Result<&'a str, GgufError> {
        self.opt_str(key)?.ok_or_else(|| self.missing(key))
    }

    fn missing(&self, key: &str) -> GgufError {
        GgufError::MissingKey {
            path: self.path.clone(),
            key: key.to_string(),
        }
    }

    /// `value` of `key`, or an error when it exceeds `limit`.
    pub(crate) fn at_most(&self, key: &str, value: u64, limit: u64) -> Result<u64, GgufError> {
        if value > limit {
            return Err(GgufError::TooLarge {
                path: self.path.clone(),
                key: key.to_string(),
                value,
                limit,
            });
        }
        Ok(value)
    }

    /// A size (at most 2^24), if present.
    pub(crate) fn opt_size(&self, key: &str) -> Result<Option<u64>, GgufError> {
        self.opt_u64(key)?
            .map(|v| self.at_most(key, v, MAX_SIZE))
            .transpose()
    }

    /// A required positive value of at most `limit`.
    fn positive_at_most(&self, key: &str, limit: u64) -> Result<u64, GgufError> {
        match self.opt_u64(key)?.ok_or_else(|| self.missing(key))? {
            0 => Err(self.error(key, "must be positive, found 0")),
            v => self.at_most(key, v, limit),
        }
    }

    /// A required positive size (at most 2^24).
    pub(crate) fn size(&self, key: &str) -> Result<u64, GgufError> {
        self.positive_at_most(key, MAX_SIZE)
    }

    /// A required positive count of blocks (at most 2^16).
    pub(crate) fn count(&self, key: &str) -> Result<u64, GgufError> {
        self.positive_at_most(key, MAX_COUNT)
    }

    /// An optional count of blocks (at most 2^16); 0 when absent.
    pub(crate) fn opt_count(&self, key: &str) -> Result<u64, GgufError> {
        Ok(self
            .opt_u64(key)?
            .map(|v| self.at_most(key, v, MAX_COUNT))
            .transpose()?
            .unwrap_or(0))
    }
}
