//! The evaluator's memory budget: parameter sets and result tensors larger than
//! the host can hold are refused, with an error naming them, their size and the
//! budget, before anything is allocated.
//!
//! The budget is [`BUDGET_ENV`] (`SEAM_MEMORY_BUDGET`) when set: a byte count,
//! optionally with a binary suffix `K`, `M`, `G` or `T` (`8G` is 8 GiB).
//! Otherwise it is the host's available memory (`MemAvailable` of
//! `/proc/meminfo` on Linux), or [`FALLBACK_BUDGET`] where that cannot be read.

use thiserror::Error;

use crate::model::Model;
use crate::shape::Dim;
use seam_core::DType;

/// The environment variable that sets the budget.
pub const BUDGET_ENV: &str = "SEAM_MEMORY_BUDGET";

/// The budget where neither [`BUDGET_ENV`] nor the host's memory says: 16 GiB.
pub const FALLBACK_BUDGET: u64 = 16 << 30;

/// Why the budget refused something, or could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BudgetError {
    /// Something would need more bytes than the budget allows.
    #[error(
        "{what} needs {bytes} bytes ({}), over the memory budget of {budget} bytes ({}; set {BUDGET_ENV} to change it)",
        gib(*bytes), gib(*budget)
    )]
    OverBudget {
        /// What would be allocated (`param \`w\``, `the 3 params together`, …).
        what: String,
        /// Bytes it needs (saturated at `u64::MAX`).
        bytes: u64,
        /// The budget in bytes.
        budget: u64,
    },
    /// [`BUDGET_ENV`] is set to something that is not a size.
    #[error("{BUDGET_ENV} = `{value}` is not a byte count (e.g. `17179869184` or `16G`)")]
    BadSetting {
        /// The variable's value.
        value: String,
    },
}

/// A size in GiB with one decimal, for messages.
fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// A limit on the bytes the evaluator may allocate at once.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MemoryBudget {
    bytes: u64,
}

impl MemoryBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: u64) -> Self {
        MemoryBudget { bytes }
    }

    /// The budget of this process: [`BUDGET_ENV`], else the host's available
    /// memory, else [`FALLBACK_BUDGET`].
    pub fn from_env() -> Result<Self, BudgetError> {
        match std::env::var(BUDGET_ENV) {
            Ok(value) => parse_size(&value)
                .map(MemoryBudget::new)
                .ok_or(BudgetError::BadSetting { value }),
            Err(_) => Ok(MemoryBudget::new(
                available_memory().unwrap_or(FALLBACK_BUDGET),
            )),
        }
    }

    /// The budget in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Errors when `what`, `bytes` large, exceeds the budget.
    pub fn check(&self, what: impl FnOnce() -> String, bytes: u64) -> Result<(), BudgetError> {
        if bytes > self.bytes {
            return Err(BudgetError::OverBudget {
                what: what(),
                bytes,
                budget: self.bytes,
            });
        }
        Ok(())
    }

    /// Errors when a tensor of `dtype` and `shape` exceeds the budget.
    pub fn check_tensor(
        &self,
        what: impl FnOnce() -> String,
        dtype: DType,
        shape: &[usize],
    ) -> Result<(), BudgetError> {
        let elements = shape.iter().fold(1u64, |n, &d| n.saturating_mul(d as u64));
        self.check(what, elements.saturating_mul(dtype.size_bytes() as u64))
    }

    /// Errors when one param of `model`, or all of them together, exceed the
    /// budget (checked before weights are generated or loaded for it; a
    /// symbolic dim counts at its bound, as [`crate::random_weights`] sizes it).
    pub fn check_params(&self, model: &Model) -> Result<(), BudgetError> {
        let mut total = 0u64;
        for p in &model.params {
            let elements = p.ty.shape.dims().iter().fold(1u64, |n, d| {
                let size = match d {
                    Dim::Static(s) => *s,
                    Dim::Sym(s) => model.dim(s).map_or(1, |d| d.max),
                };
                n.saturating_mul(size)
            });
            let bytes = elements.saturating_mul(p.ty.dtype.size_bytes() as u64);
            self.check(|| format!("param `{}` ({})", p.name, p.ty), bytes)?;
            total = total.saturating_add(bytes);
        }
        self.check(
            || format!("the {} params together", model.params.len()),
            total,
        )
    }
}

/// `12345`, `16G`, `512M`, `64K`, `1T` as bytes (binary suffixes).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last()? {
        (i, 'K' | 'k') => (&text[..i], 10),
        (i, 'M' | 'm') => (&text[..i], 20),
        (i, 'G' | 'g') => (&text[..i], 30),
        (i, 'T' | 't') => (&text[..i], 40),
        _ => (text, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// `MemAvailable` of `/proc/meminfo` in bytes (Linux only).
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("16G"), Some(16 << 30));
        assert_eq!(parse_size(" 2m "), Some(2 << 20));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("99999999999T"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn a_tensor_over_the_budget_is_refused_with_its_size() {
        let budget = MemoryBudget::new(1 << 20);
        assert!(budget
            .check_tensor(|| "x".into(), DType::F32, &[256, 1024])
            .is_ok());
        let err = budget
            .check_tensor(|| "x".into(), DType::F32, &[usize::MAX, 4])
            .unwrap_err();
        assert!(matches!(
            err,
            BudgetError::OverBudget {
                bytes: u64::MAX,
                budget: 1048576,
                ..
            }
        ));
    }
}
