//! The opaque handles (runtime, model, session): creating and freeing them.
//!
//! Each handle owns what it needs (a model keeps the device open, a session
//! keeps its model loaded), so they may be freed in any order.

use std::ffi::{c_char, CStr, CString};
use std::path::Path;
use std::slice;

use seam_runtime::{DeviceOptions, Model, Runtime, Session};

use crate::error::{guard, Failure, SeamStatus};

/// An open device, ready to load bundles.
///
/// Thread safety: may be shared between threads; `seam_model_load_*` may be
/// called on one runtime from several threads at once.
pub struct SeamRuntime {
    runtime: Runtime,
    adapter: CString,
}

/// A bundle loaded on a device: its compiled kernels and its weights.
///
/// Thread safety: may be shared between threads; each thread creates its own
/// sessions from it.
pub struct SeamModel {
    model: Model,
}

/// A model's buffers and KV cache for running its entry points.
///
/// Thread safety: used by one thread at a time (a call on a session must not
/// overlap another call on the same session); it may move between threads.
/// Give each thread its own session.
pub struct SeamSession {
    pub(crate) session: Session,
}

/// `ptr`, or an `SEAM_ERROR_INVALID_ARGUMENT` failure naming `what` when it is NULL.
pub(crate) fn non_null<T>(ptr: *const T, what: &str) -> Result<*const T, Failure> {
    if ptr.is_null() {
        Err(Failure::invalid(format!("`{what}` is NULL")))
    } else {
        Ok(ptr)
    }
}

/// Writes `value`, boxed, to the out-pointer `out`: the handle the caller
/// frees with the matching `*_free`.
///
/// # Safety
/// `out` is not NULL and points to writable storage for a pointer.
unsafe fn hand_out<T>(out: *mut *mut T, value: T) {
    // SAFETY: per this function's contract.
    unsafe { out.write(Box::into_raw(Box::new(value))) };
}

/// Frees a handle made by [`hand_out`] (a panic in a destructor is caught);
/// NULL is a no-op.
///
/// # Safety
/// `handle` is NULL or a handle [`hand_out`] made, not freed before and not
/// used after.
unsafe fn free_handle<T>(handle: *mut T) {
    let _ = guard(|| {
        if !handle.is_null() {
            // SAFETY: per this function's contract, it is `hand_out`'s `Box::into_raw`.
            drop(unsafe { Box::from_raw(handle) });
        }
        Ok(())
    });
}

/// The value behind a non-NULL handle, or an `SEAM_ERROR_INVALID_ARGUMENT`
/// failure naming `what`.
///
/// # Safety
/// `handle` is NULL or a live handle [`hand_out`] made.
unsafe fn handle_ref<'a, T>(handle: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: not NULL, so live per this function's contract.
    Ok(unsafe { &*non_null(handle, what)? })
}

/// Loads a model with `load` on the runtime behind `runtime` and hands it
/// out through `out`.
///
/// # Safety
/// `runtime` is NULL or a live runtime; `out` is NULL or points to writable
/// storage for a pointer.
unsafe fn load_into(
    runtime: *const SeamRuntime,
    out: *mut *mut SeamModel,
    load: impl FnOnce(&Runtime) -> Result<Model, Failure>,
) -> Result<(), Failure> {
    non_null(out, "out")?;
    // SAFETY: per this function's contract.
    let runtime = unsafe { handle_ref(runtime, "runtime") }?;
    let model = load(&runtime.runtime)?;
    // SAFETY: `out` is not NULL; writable per this function's contract.
    unsafe { hand_out(out, SeamModel { model }) };
    Ok(())
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `s` is NULL or points to a NUL-terminated string valid for this call.
pub(crate) unsafe fn utf8<'a>(s: *const c_char, what: &str) -> Result<&'a str, Failure> {
    let s = non_null(s, what)?;
    // SAFETY: not NULL, and NUL-terminated per this function's contract.
    unsafe { CStr::from_ptr(s) }
        .to_str()
        .map_err(|_| Failure::invalid(format!("`{what}` is not UTF-8")))
}

/// A NUL-terminated path argument: any bytes on Unix, UTF-8 elsewhere.
///
/// # Safety
/// `s` is NULL or points to a NUL-terminated string valid for this call.
unsafe fn path_arg<'a>(s: *const c_char) -> Result<&'a Path, Failure> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let s = non_null(s, "path")?;
        // SAFETY: not NULL, and NUL-terminated per this function's contract.
        let bytes = unsafe { CStr::from_ptr(s) }.to_bytes();
        Ok(Path::new(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        // SAFETY: per this function's contract.
        Ok(Path::new(unsafe { utf8(s, "path") }?))
    }
}

/// Opens the default device: the best adapter of every backend (Vulkan
/// first; the `WGPU_BACKEND` environment variable, e.g. `vulkan`, restricts
/// them; lavapipe where there is no GPU). On success `*out` is a runtime to
/// free with `seam_runtime_free`; on failure it is left unchanged.
///
/// # Safety
/// `out` is NULL or points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn seam_runtime_new(out: *mut *mut SeamRuntime) -> SeamStatus {
    guard(|| {
        non_null(out, "out")?;
        let runtime = Runtime::new(&DeviceOptions::default())?;
        let adapter = CString::new(runtime.adapter().name.replace('\0', " ")).unwrap_or_default();
        // SAFETY: `out` is not NULL; the caller promised writable storage.
        unsafe { hand_out(out, SeamRuntime { runtime, adapter }) };
        Ok(())
    })
}

/// The name of the runtime's adapter (`llvmpipe (LLVM 15.0.6, 256 bits)`),
/// owned by the runtime and valid until it is freed; `""` when `runtime` is
/// NULL. Never NULL.
///
/// # Safety
/// `runtime` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn seam_runtime_adapter_name(runtime: *const SeamRuntime) -> *const c_char {
    if runtime.is_null() {
        return c"".as_ptr();
    }
    // SAFETY: a non-NULL runtime is a live handle from `seam_runtime_new`.
    unsafe { (*runtime).adapter.as_ptr() }
}

/// Frees a runtime (models and sessions made from it stay usable). NULL is a
/// no-op.
///
/// # Safety
/// `runtime` is NULL or a live runtime, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn seam_runtime_free(runtime: *mut SeamRuntime) {
    // SAFETY: the caller passes NULL or a live runtime, used no more.
    unsafe { free_handle(runtime) };
}

/// Reads, verifies and loads the bundle file at `path` (a NUL-terminated
/// path: any bytes on Unix, UTF-8 elsewhere; external weight files must lie
/// inside its folder). On success
/// `*out` is a model to free with `seam_model_free`.
///
/// # Safety
/// `runtime` is NULL or a live runtime; `path` is NULL or a NUL-terminated
/// string; `out` is NULL or points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn seam_model_load_file(
    runtime: *const SeamRuntime,
    path: *const c_char,
    out: *mut *mut SeamModel,
) -> SeamStatus {
    guard(|| {
        // SAFETY: the caller passes a NUL-terminated string or NULL.
        let path = unsafe { path_arg(path) }?;
        // SAFETY: the caller passes NULL or a live runtime, and NULL or
        // writable storage for `out`.
        unsafe { load_into(runtime, out, |rt| Ok(rt.load(path)?)) }
    })
}

/// Verifies and loads a bundle from the `len` bytes at `bytes` (copied: the
/// buffer may be freed when this returns; a bundle without external weight
/// files). On success `*out` is a model to free with `seam_model_free`.
///
/// # Safety
/// `runtime` is NULL or a live runtime; `bytes` is NULL or points to `len`
/// readable bytes; `out` is NULL or points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn seam_model_load_bytes(
    runtime: *const SeamRuntime,
    bytes: *const u8,
    len: usize,
    out: *mut *mut SeamModel,
) -> SeamStatus {
    guard(|| {
        let bytes = non_null(bytes, "bytes")?;
        // SAFETY: the caller promised `len` readable bytes at `bytes` (not NULL).
        let bytes = unsafe { slice::from_raw_parts(bytes, len) }.to_vec();
        // SAFETY: the caller passes NULL or a live runtime, and NULL or
        // writable storage for `out`.
        unsafe { load_into(runtime, out, |rt| Ok(rt.load_bytes(bytes)?)) }
    })
}

/// Frees a model (its sessions stay usable: the weights stay on the device
/// until the last one is freed). NULL is a no-op.
///
/// # Safety
/// `model` is NULL or a live model, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn seam_model_free(model: *mut SeamModel) {
    // SAFETY: the caller passes NULL or a live model, used no more.
    unsafe { free_handle(model) };
}

/// Creates a session of `model`: zeroed KV cache (if the bundle has one),
/// activation buffers allocated on first use. On success `*out` is a session
/// to free with `seam_session_free`.
///
/// # Safety
/// `model` is NULL or a live model; `out` is NULL or points to writable
/// storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn seam_session_new(
    model: *const SeamModel,
    out: *mut *mut SeamSession,
) -> SeamStatus {
    guard(|| {
        non_null(out, "out")?;
        // SAFETY: the caller passes NULL or a live model.
        let session = unsafe { handle_ref(model, "model") }?.model.session()?;
        // SAFETY: `out` is not NULL; the caller promised writable storage.
        unsafe { hand_out(out, SeamSession { session }) };
        Ok(())
    })
}

/// Frees a session. NULL is a no-op.
///
/// # Safety
/// `session` is NULL or a live session that no other call is using, not
/// used afterwards.
#[no_mangle]
pub unsafe extern "C" fn seam_session_free(session: *mut SeamSession) {
    // SAFETY: the caller passes NULL or a live session, used no more.
    unsafe { free_handle(session) };
}

/// The session behind a non-NULL handle, for a call that uses it alone.
///
/// # Safety
/// `session` is NULL or a live handle from `seam_session_new` that no other
/// call uses at the same time.
pub(crate) unsafe fn session_mut<'a>(
    session: *mut SeamSession,
) -> Result<&'a mut Session, Failure> {
    let session = non_null(session, "session")?.cast_mut();
    // SAFETY: per this function's contract, live and not aliased.
    Ok(unsafe { &mut (*session).session })
}

/// Runs every entry point once on the smallest zero inputs, then resets the
/// session. Drivers that compile kernels at their first dispatch (lavapipe)
/// do it now, so later runs are not slowed by it. Optional.
///
/// # Safety
/// `session` is NULL or a live session that no other call is using.
#[no_mangle]
pub unsafe extern "C" fn seam_session_warm_up(session: *mut SeamSession) -> SeamStatus {
    guard(|| {
        // SAFETY: the caller passes a live session (or NULL) used by no other call.
        unsafe { session_mut(session) }?.warm_up()?;
        Ok(())
    })
}

/// Starts a new sequence: the KV cache emptied (length 0). `seam_generate`
/// does it itself.
///
/// # Safety
/// `session` is NULL or a live session that no other call is using.
#[no_mangle]
pub unsafe extern "C" fn seam_session_reset(session: *mut SeamSession) -> SeamStatus {
    guard(|| {
        // SAFETY: the caller passes a live session (or NULL) used by no other call.
        unsafe { session_mut(session) }?.reset()?;
        Ok(())
    })
}
