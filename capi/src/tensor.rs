//! Host tensors across the boundary, and running an entry point on them.

use std::ffi::{c_char, c_void};
use std::ptr;
use std::slice;

use seam_core::DType;
use seam_runtime::HostTensor;

use crate::error::{guard, Failure, SeamStatus};
use crate::handles::{non_null, session_mut, utf8, SeamSession};

/// An element type: one of the `SEAM_DTYPE_*` values. (A plain integer rather
/// than a C enum, so that any value a caller stores is checked, not trusted.)
pub type SeamDType = u32;

/// IEEE 754 binary32 (`float`).
pub const SEAM_DTYPE_F32: SeamDType = 0;
/// IEEE 754 binary16, as its 16-bit pattern.
pub const SEAM_DTYPE_F16: SeamDType = 1;
/// `int32_t` (token ids).
pub const SEAM_DTYPE_I32: SeamDType = 2;
/// `uint32_t`.
pub const SEAM_DTYPE_U32: SeamDType = 3;

/// The most dimensions a `SeamTensor` has.
pub const SEAM_MAX_RANK: usize = 8;

/// A tensor in host memory: row-major, little-endian elements.
///
/// As an input, the caller owns `data` (read only, during the call). As an
/// output, the library owns `data` (aligned to at least 4 bytes) until the
/// array is passed to `seam_tensors_free`.
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct SeamTensor {
    /// The element type, a `SEAM_DTYPE_*` value.
    pub dtype: SeamDType,
    /// The number of dimensions used in `shape` (at most `SEAM_MAX_RANK`).
    pub rank: usize,
    /// The sizes, outermost first; entries past `rank` are ignored (zero in
    /// outputs).
    pub shape: [usize; SEAM_MAX_RANK],
    /// The elements; may be NULL when `bytes` is 0.
    pub data: *const c_void,
    /// The length of `data` in bytes: the element count times the element size.
    pub bytes: usize,
}

/// The element type of a `SEAM_DTYPE_*` value.
fn dtype_of(code: SeamDType) -> Result<DType, Failure> {
    match code {
        SEAM_DTYPE_F32 => Ok(DType::F32),
        SEAM_DTYPE_F16 => Ok(DType::F16),
        SEAM_DTYPE_I32 => Ok(DType::I32),
        SEAM_DTYPE_U32 => Ok(DType::U32),
        other => Err(Failure::invalid(format!("unknown dtype {other}"))),
    }
}

/// The `SEAM_DTYPE_*` value of an element type.
fn code_of(dtype: DType) -> SeamDType {
    match dtype {
        DType::F32 => SEAM_DTYPE_F32,
        DType::F16 => SEAM_DTYPE_F16,
        DType::I32 => SEAM_DTYPE_I32,
        DType::U32 => SEAM_DTYPE_U32,
    }
}

/// Copies a caller's tensor into a host tensor (its size checked against its
/// shape by [`HostTensor::from_bytes`]).
fn to_host(t: &SeamTensor, index: usize) -> Result<HostTensor, Failure> {
    let dtype = dtype_of(t.dtype)?;
    if t.rank > SEAM_MAX_RANK {
        return Err(Failure::invalid(format!(
            "input {index}: rank {} exceeds SEAM_MAX_RANK ({SEAM_MAX_RANK})",
            t.rank
        )));
    }
    let bytes = if t.bytes == 0 {
        Vec::new()
    } else {
        let data = non_null(t.data.cast::<u8>(), "data of an input")?;
        // SAFETY: the caller promised `bytes` readable bytes at `data` (not NULL).
        unsafe { slice::from_raw_parts(data, t.bytes) }.to_vec()
    };
    Ok(HostTensor::from_bytes(
        dtype,
        t.shape[..t.rank].to_vec(),
        bytes,
    )?)
}

/// Hands a host tensor out: its bytes copied into 4-byte-aligned memory the
/// library owns until [`seam_tensors_free`].
fn to_c(t: &HostTensor) -> Result<SeamTensor, Failure> {
    if t.shape().len() > SEAM_MAX_RANK {
        return Err(Failure::invalid(format!(
            "an output of rank {} exceeds SEAM_MAX_RANK ({SEAM_MAX_RANK})",
            t.shape().len()
        )));
    }
    let mut shape = [0; SEAM_MAX_RANK];
    shape[..t.shape().len()].copy_from_slice(t.shape());
    let mut words = vec![0u32; t.bytes().len().div_ceil(4)].into_boxed_slice();
    copy_bytes(&mut words, t.bytes());
    Ok(SeamTensor {
        dtype: code_of(t.dtype()),
        rank: t.shape().len(),
        shape,
        data: Box::into_raw(words).cast_const().cast::<c_void>(),
        bytes: t.bytes().len(),
    })
}

/// Copies `bytes` into the start of `words` (as little-endian words).
fn copy_bytes(words: &mut [u32], bytes: &[u8]) {
    for (w, chunk) in words.iter_mut().zip(bytes.chunks(4)) {
        let mut b = [0u8; 4];
        b[..chunk.len()].copy_from_slice(chunk);
        *w = u32::from_ne_bytes(b);
    }
}

/// Frees the memory [`to_c`] allocated for one output.
fn free_data(t: &SeamTensor) {
    if !t.data.is_null() {
        let words = t.bytes.div_ceil(4);
        // SAFETY: `data` is `to_c`'s `Box<[u32]>` of `bytes.div_ceil(4)` words,
        // unchanged by the caller as `seam_tensors_free` requires.
        drop(unsafe {
            Box::from_raw(ptr::slice_from_raw_parts_mut(
                t.data.cast_mut().cast::<u32>(),
                words,
            ))
        });
    }
}

/// Hands `outputs` out as an array the caller frees with `seam_tensors_free`.
fn hand_out_all(outputs: &[HostTensor]) -> Result<(*mut SeamTensor, usize), Failure> {
    let mut array = Vec::with_capacity(outputs.len());
    for t in outputs {
        match to_c(t) {
            Ok(c) => array.push(c),
            Err(e) => {
                array.iter().for_each(free_data);
                return Err(e);
            }
        }
    }
    let n = array.len();
    Ok((
        Box::into_raw(array.into_boxed_slice()).cast::<SeamTensor>(),
        n,
    ))
}

/// Runs entry point `entry` (a NUL-terminated name: `forward`, `prefill`,
/// `decode`) on the `n_inputs` tensors at `inputs` (in the entry's signature
/// order; `inputs` may be NULL when `n_inputs` is 0). On success `*outputs`
/// is an array of `*n_outputs` tensors owned by the library, freed with
/// `seam_tensors_free(*outputs, *n_outputs)`; on failure both are left
/// unchanged. The entry's KV cache, if any, grows by the run (see
/// `seam_session_reset`).
///
/// # Safety
/// `session` is NULL or a live session that no other call is using; `entry`
/// is NULL or a NUL-terminated string; `inputs` is NULL or points to
/// `n_inputs` tensors, each `data` NULL or pointing to `bytes` readable
/// bytes; `outputs` and `n_outputs` are NULL or point to writable storage.
#[no_mangle]
pub unsafe extern "C" fn seam_session_run(
    session: *mut SeamSession,
    entry: *const c_char,
    inputs: *const SeamTensor,
    n_inputs: usize,
    outputs: *mut *mut SeamTensor,
    n_outputs: *mut usize,
) -> SeamStatus {
    guard(|| {
        non_null(outputs, "outputs")?;
        non_null(n_outputs, "n_outputs")?;
        // SAFETY: the caller passes a NUL-terminated string or NULL.
        let entry = unsafe { utf8(entry, "entry") }?;
        let inputs: &[SeamTensor] = if n_inputs == 0 {
            &[]
        } else {
            let inputs = non_null(inputs, "inputs")?;
            // SAFETY: the caller promised `n_inputs` tensors at `inputs` (not NULL).
            unsafe { slice::from_raw_parts(inputs, n_inputs) }
        };
        let host = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| to_host(t, i))
            .collect::<Result<Vec<_>, _>>()?;
        // SAFETY: the caller passes a live session (or NULL) used by no other call.
        let session = unsafe { session_mut(session) }?;
        let entry = session.model().entry(entry)?;
        let results = session.run(&entry, &host)?;
        let (array, n) = hand_out_all(&results)?;
        // SAFETY: both checked non-NULL above; the caller promised writable storage.
        unsafe {
            outputs.write(array);
            n_outputs.write(n);
        }
        Ok(())
    })
}

/// Frees an output array of `seam_session_run` and every tensor's data; `n`
/// must be the count it returned. NULL is a no-op.
///
/// # Safety
/// `tensors` is NULL or an array `seam_session_run` returned with `n`
/// tensors, unchanged, not freed before and not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn seam_tensors_free(tensors: *mut SeamTensor, n: usize) {
    let _ = guard(|| {
        if tensors.is_null() {
            return Ok(());
        }
        // SAFETY: `tensors` is `hand_out_all`'s boxed slice of `n` tensors,
        // passed back once, as this function's contract requires.
        let array = unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(tensors, n)) };
        array.iter().for_each(free_data);
        Ok(())
    });
}
