//! # seam-capi
//!
//! A C ABI for [`seam_runtime`]: apps in C, C++ or any language with a C FFI
//! load a Seam bundle, run its entry points on host tensors and generate
//! tokens, through opaque handles and status codes. The header,
//! `capi/include/seam.h`, is generated from this crate's source by cbindgen
//! (the `header_is_current` test keeps it in step); its comments are the doc
//! comments here.
//!
//! - Handles: `SeamRuntime` (a device), `SeamModel` (a loaded bundle),
//!   `SeamSession` (buffers and KV cache), each created by a `seam_*_new` /
//!   `seam_model_load_*` function through an out-pointer and freed with its
//!   `seam_*_free` (NULL is a no-op). Each owns what it needs, so they may be
//!   freed in any order.
//! - Errors: every function that can fail returns a `SeamStatus`;
//!   `seam_last_error()` gives the message of the thread's last failure.
//!   Nothing unwinds across the boundary: every entry point catches panics
//!   (`SEAM_ERROR_PANIC`).
//! - Thread safety: a runtime and a model may be shared between threads; a
//!   session is used by one thread at a time (one session per thread).
//!
//! ```c
//! SeamRuntime *rt; SeamModel *model; SeamSession *session;
//! if (seam_runtime_new(&rt) != SEAM_OK) { fprintf(stderr, "%s\n", seam_last_error()); return 1; }
//! seam_model_load_file(rt, "out/readme_moe.seamb", &model);
//! seam_session_new(model, &session);
//! int32_t ids[4] = {1, 2, 3, 4};
//! SeamTensor input = { SEAM_DTYPE_I32, 1, {4}, ids, sizeof ids };
//! SeamTensor *outputs; size_t n_outputs;
//! seam_session_run(session, "forward", &input, 1, &outputs, &n_outputs);
//! /* outputs[0]: f32 logits [4, vocab] */
//! seam_tensors_free(outputs, n_outputs);
//! seam_session_free(session); seam_model_free(model); seam_runtime_free(rt);
//! ```

#![warn(missing_docs)]

// In this order in the header: statuses, handles, tensors, generation.
mod error;
mod generate;
mod handles;
mod tensor;

pub use error::{seam_last_error, seam_status_name, SeamStatus};
pub use generate::{seam_generate, SeamSampling, SeamTokenCallback};
pub use handles::{
    seam_model_free, seam_model_load_bytes, seam_model_load_file, seam_runtime_adapter_name,
    seam_runtime_free, seam_runtime_new, seam_session_free, seam_session_new, seam_session_reset,
    seam_session_warm_up, SeamModel, SeamRuntime, SeamSession,
};
pub use tensor::{
    seam_session_run, seam_tensors_free, SeamDType, SeamTensor, SEAM_DTYPE_F16, SEAM_DTYPE_F32,
    SEAM_DTYPE_I32, SEAM_DTYPE_U32, SEAM_MAX_RANK,
};
