//! Status codes, the thread's last error message, and the guard every entry
//! point runs its body in: no panic and no Rust error crosses the boundary.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use seam_runtime::Error;

/// What a call did: `SEAM_OK`, or why it failed. Every function that can fail
/// returns one; `seam_last_error()` then gives a message on the same thread.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SeamStatus {
    /// Success.
    SeamOk = 0,
    /// A required pointer was NULL, a string was not UTF-8, a count or a
    /// setting was out of range: the caller's mistake, nothing was done.
    SeamErrorInvalidArgument = 1,
    /// The bundle could not be read or is unusable (corrupt, truncated, of an
    /// unsupported version, a missing file); verified before any GPU work.
    SeamErrorBundle = 2,
    /// The bundle has no entry point of that name (`prefill` and `decode` for
    /// `seam_generate`).
    SeamErrorUnknownEntry = 3,
    /// The inputs do not fit the entry point (count, dtype, rank, shape, data
    /// size), or a prompt is empty or holds ids outside the vocabulary.
    SeamErrorInput = 4,
    /// A run would grow the session's KV cache past its capacity (compile with
    /// a larger `--max-seq-len`, or generate fewer tokens).
    SeamErrorSequenceFull = 5,
    /// The device failed or refused: no adapter, out of memory, a device
    /// limit, a lost device, a failed read-back.
    SeamErrorDevice = 6,
    /// A bug in Seam: a panic was caught at the boundary. The handles used in
    /// the call should be freed and not used again.
    SeamErrorPanic = 7,
}

/// A failure on its way to the caller: the status and the message.
#[derive(Debug)]
pub(crate) struct Failure {
    status: SeamStatus,
    message: String,
}

impl Failure {
    /// A failure the caller caused (`SEAM_ERROR_INVALID_ARGUMENT`).
    pub(crate) fn invalid(message: impl Into<String>) -> Failure {
        Failure {
            status: SeamStatus::SeamErrorInvalidArgument,
            message: message.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure {
            status: status_of(&e),
            message: e.to_string(),
        }
    }
}

/// The status a runtime error is reported with.
fn status_of(e: &Error) -> SeamStatus {
    use SeamStatus::*;
    match e {
        Error::Bundle(_) | Error::Shader { .. } | Error::Binding { .. } | Error::Experts(_) => {
            SeamErrorBundle
        }
        Error::UnknownEntry { .. } => SeamErrorUnknownEntry,
        Error::Input(_)
        | Error::SizeExpr(_)
        | Error::Sampling(_)
        | Error::ForeignEntry { .. }
        | Error::Cache(_)
        | Error::Shard(_) => SeamErrorInput,
        Error::SequenceFull { .. } => SeamErrorSequenceFull,
        Error::NoAdapter { .. }
        | Error::RequestDevice { .. }
        | Error::OutOfMemory { .. }
        | Error::Validation { .. }
        | Error::Internal { .. }
        | Error::DeviceLost(_)
        | Error::Readback { .. }
        | Error::Launch(_)
        | Error::WorkgroupMemory { .. }
        | Error::GridBudget { .. }
        | Error::Buffer { .. }
        | Error::Collective(_)
        | Error::Control(_)
        | Error::WeightBudget { .. } => SeamErrorDevice,
    }
}

thread_local! {
    /// The message of the last failed call on this thread.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Stores `message` as this thread's last error (interior NULs replaced).
fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = c);
}

/// Runs `body`, the whole of an entry point: its error becomes the returned
/// status and this thread's last error, a panic becomes `SEAM_ERROR_PANIC`;
/// success clears the last error.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> SeamStatus {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            set_last_error("");
            return SeamStatus::SeamOk;
        }
        Ok(Err(failure)) => failure,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            Failure {
                status: SeamStatus::SeamErrorPanic,
                message: format!("internal error (a bug in Seam): {what}"),
            }
        }
    };
    // Formatting the message cannot unwind out of here: a panic inside a
    // `Display` impl was already caught above, this only copies a string.
    set_last_error(&failure.message);
    failure.status
}

/// The message of the last call on this thread that failed, or `""` after a
/// call that succeeded. Never NULL. The string is owned by the library and
/// stays valid until the next `seam_*` call on this thread; copy it to keep it.
#[no_mangle]
pub extern "C" fn seam_last_error() -> *const c_char {
    catch_unwind(|| LAST_ERROR.with(|last| last.borrow().as_ptr()))
        .unwrap_or(c"internal error reading the last error".as_ptr())
}

/// A static, NUL-terminated name for a `SeamStatus` value
/// (`"SEAM_ERROR_BUNDLE"`), for logs; `"SEAM_STATUS_UNKNOWN"` for any other
/// number. Never NULL. (An `int`, so any number a caller holds is safe to pass.)
#[no_mangle]
pub extern "C" fn seam_status_name(status: c_int) -> *const c_char {
    use SeamStatus::*;
    let name = [
        (SeamOk, c"SEAM_OK"),
        (SeamErrorInvalidArgument, c"SEAM_ERROR_INVALID_ARGUMENT"),
        (SeamErrorBundle, c"SEAM_ERROR_BUNDLE"),
        (SeamErrorUnknownEntry, c"SEAM_ERROR_UNKNOWN_ENTRY"),
        (SeamErrorInput, c"SEAM_ERROR_INPUT"),
        (SeamErrorSequenceFull, c"SEAM_ERROR_SEQUENCE_FULL"),
        (SeamErrorDevice, c"SEAM_ERROR_DEVICE"),
        (SeamErrorPanic, c"SEAM_ERROR_PANIC"),
    ]
    .into_iter()
    .find(|&(s, _)| s as c_int == status)
    .map_or(c"SEAM_STATUS_UNKNOWN", |(_, name)| name);
    name.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last() -> String {
        // SAFETY: never NULL, valid until the next call on this thread.
        unsafe { CStr::from_ptr(seam_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = guard(|| panic!("boom {}", 7));
        assert_eq!(status, SeamStatus::SeamErrorPanic);
        assert!(last().contains("boom 7"), "{}", last());
        assert_eq!(guard(|| Ok(())), SeamStatus::SeamOk);
        assert_eq!(last(), "");
    }

    #[test]
    fn runtime_errors_keep_their_message() {
        let status = guard(|| Err(Error::Input("no\0pe".into()).into()));
        assert_eq!(status, SeamStatus::SeamErrorInput);
        assert_eq!(last(), "bad input: no\\0pe");
    }
}
