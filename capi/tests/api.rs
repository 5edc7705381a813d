//! The C functions called from Rust: null pointers, corrupt bundles, bad
//! inputs, unknown entry points, runs and generation (with an early stop) on
//! bundles `seam compile` writes, run on the default device (lavapipe without
//! a GPU).

mod support;

use std::ffi::{c_int, c_void, CStr, CString};
use std::ptr;

use seam_capi::*;
use support::*;

use SeamStatus::*;

/// The message of the last failure, checked to mention `needle`.
fn assert_error(status: SeamStatus, expected: SeamStatus, needle: &str) {
    let message = last_error();
    assert_eq!(status, expected, "{message}");
    assert!(
        message.contains(needle),
        "`{message}` should mention `{needle}`"
    );
}

/// An i32 input of `ids`, rank 1.
fn ids_tensor(ids: &[i32]) -> SeamTensor {
    let mut shape = [0; SEAM_MAX_RANK];
    shape[0] = ids.len();
    SeamTensor {
        dtype: SEAM_DTYPE_I32,
        rank: 1,
        shape,
        data: ids.as_ptr().cast(),
        bytes: std::mem::size_of_val(ids),
    }
}

/// An output, copied: dtype, shape, bytes.
type Output = (SeamDType, Vec<usize>, Vec<u8>);

/// Runs `entry` on `inputs`; the status and the outputs (copied, then freed).
fn run(
    session: *mut SeamSession,
    entry: &CStr,
    inputs: &[SeamTensor],
) -> (SeamStatus, Vec<Output>) {
    let mut outputs = ptr::null_mut();
    let mut n = usize::MAX;
    // SAFETY: a live session used by this thread alone, a NUL-terminated
    // name, `inputs.len()` tensors and writable out-pointers.
    let status = unsafe {
        seam_session_run(
            session,
            entry.as_ptr(),
            inputs.as_ptr(),
            inputs.len(),
            &mut outputs,
            &mut n,
        )
    };
    if status != SeamOk {
        assert!(
            outputs.is_null() && n == usize::MAX,
            "outputs untouched on failure"
        );
        return (status, Vec::new());
    }
    // SAFETY: on success `outputs` holds `n` tensors the library owns.
    let copied = unsafe { std::slice::from_raw_parts(outputs, n) }
        .iter()
        .map(|t| {
            assert_eq!(t.data as usize % 4, 0, "output data is 4-byte aligned");
            // SAFETY: each output's `data` holds `bytes` bytes.
            let bytes = unsafe { std::slice::from_raw_parts(t.data.cast::<u8>(), t.bytes) };
            (t.dtype, t.shape[..t.rank].to_vec(), bytes.to_vec())
        })
        .collect();
    // SAFETY: the array and count `seam_session_run` returned, freed once.
    unsafe { seam_tensors_free(outputs, n) };
    (status, copied)
}

#[test]
fn null_pointers_are_refused_with_a_message() {
    // SAFETY: every handle passed is live (or NULL on purpose) and every
    // pointer points to what the call's contract asks, for the call.
    unsafe {
        let mut out = ptr::null_mut();
        assert_error(
            seam_runtime_new(ptr::null_mut()),
            SeamErrorInvalidArgument,
            "`out`",
        );
        assert_error(
            seam_model_load_file(ptr::null(), c"x.seamb".as_ptr(), &mut out),
            SeamErrorInvalidArgument,
            "`runtime`",
        );
        assert_error(
            seam_model_load_bytes(ptr::null(), b"x".as_ptr(), 1, &mut out),
            SeamErrorInvalidArgument,
            "`runtime`",
        );
        let mut session = ptr::null_mut();
        assert_error(
            seam_session_new(ptr::null(), &mut session),
            SeamErrorInvalidArgument,
            "`model`",
        );
        let (mut outputs, mut n) = (ptr::null_mut(), 0);
        let cases = [
            (c"forward".as_ptr(), 0, "`session`"),
            (ptr::null(), 0, "`entry`"),
            (c"forward".as_ptr(), 1, "`inputs`"),
        ];
        for (entry, n_inputs, needle) in cases {
            let status = seam_session_run(
                ptr::null_mut(),
                entry,
                ptr::null(),
                n_inputs,
                &mut outputs,
                &mut n,
            );
            assert_error(status, SeamErrorInvalidArgument, needle);
        }
        assert_error(
            seam_session_warm_up(ptr::null_mut()),
            SeamErrorInvalidArgument,
            "`session`",
        );
        assert_error(
            seam_session_reset(ptr::null_mut()),
            SeamErrorInvalidArgument,
            "`session`",
        );
        let mut generated = usize::MAX;
        assert_error(
            seam_generate(
                ptr::null_mut(),
                ptr::null(),
                0,
                4,
                ptr::null(),
                None,
                ptr::null_mut(),
                &mut generated,
            ),
            SeamErrorInvalidArgument,
            "`session`",
        );
        assert_eq!(generated, 0);
        assert_eq!(
            CStr::from_ptr(seam_runtime_adapter_name(ptr::null())).to_bytes(),
            b""
        );
    }
}

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

#[test]
fn the_handles_are_as_thread_safe_as_the_header_says() {
    // Runtimes and models are shared between threads; a session moves
    // between threads and is used by one at a time.
    assert_send_sync::<SeamRuntime>();
    assert_send_sync::<SeamModel>();
    assert_send::<SeamSession>();
}

#[test]
fn freeing_null_is_a_no_op() {
    // SAFETY: every handle passed is live (or NULL on purpose) and every
    // pointer points to what the call's contract asks, for the call.
    unsafe {
        seam_runtime_free(ptr::null_mut());
        seam_model_free(ptr::null_mut());
        seam_session_free(ptr::null_mut());
        seam_tensors_free(ptr::null_mut(), 3);
    }
}

#[test]
fn statuses_have_names() {
    let name = |s: c_int| {
        // SAFETY: never NULL, a static string.
        unsafe { CStr::from_ptr(seam_status_name(s)) }
            .to_str()
            .unwrap()
    };
    assert_eq!(name(SeamOk as c_int), "SEAM_OK");
    assert_eq!(name(SeamErrorInput as c_int), "SEAM_ERROR_INPUT");
    assert_eq!(name(SeamErrorPanic as c_int), "SEAM_ERROR_PANIC");
    assert_eq!(name(-1), "SEAM_STATUS_UNKNOWN");
    assert_eq!(name(99), "SEAM_STATUS_UNKNOWN");
}

#[test]
fn corrupt_and_missing_bundles_are_refused() {
    // SAFETY: every handle passed is live (or NULL on purpose) and every
    // pointer points to what the call's contract asks, for the call.
    unsafe {
        let mut model = ptr::null_mut();
        let junk = b"not a bundle at all";
        assert_error(
            seam_model_load_bytes(runtime(), junk.as_ptr(), junk.len(), &mut model),
            SeamErrorBundle,
            "",
        );
        assert!(!last_error().is_empty());
        let mut bytes = std::fs::read(demo_bundle()).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        let status = seam_model_load_bytes(runtime(), bytes.as_ptr(), bytes.len(), &mut model);
        assert_eq!(status, SeamErrorBundle, "{}", last_error());
        assert!(!last_error().is_empty());
        let missing = CString::new(scratch().join("missing.seamb").to_str().unwrap()).unwrap();
        assert_error(
            seam_model_load_file(runtime(), missing.as_ptr(), &mut model),
            SeamErrorBundle,
            "missing.seamb",
        );
        assert!(model.is_null(), "no model is handed out on failure");
    }
}

#[test]
fn a_bundle_loads_from_bytes_and_runs() {
    // SAFETY: every handle passed is live (or NULL on purpose) and every
    // pointer points to what the call's contract asks, for the call.
    unsafe {
        let bytes = std::fs::read(demo_bundle()).unwrap();
        let mut model = ptr::null_mut();
        let status = seam_model_load_bytes(runtime(), bytes.as_ptr(), bytes.len(), &mut model);
        assert_eq!(status, SeamOk, "{}", last_error());
        drop(bytes);
        let session = session(model);
        // The model handle may go first: the session keeps what it needs.
        seam_model_free(model);
        let ids = [1, 2, 3, 4];
        let (status, outputs) = run(session, c"forward", &[ids_tensor(&ids)]);
        assert_eq!(status, SeamOk, "{}", last_error());
        assert_eq!(last_error(), "", "success clears the last error");
        let (dtype, shape, bytes) = &outputs[0];
        assert_eq!(*dtype, SEAM_DTYPE_F32);
        assert_eq!(shape.len(), 2);
        assert_eq!(shape[0], 4);
        assert_eq!(bytes.len(), 4 * shape[0] * shape[1]);
        seam_session_free(session);
    }
}

#[test]
fn forward_gives_the_runtimes_logits() {
    // SAFETY: every handle passed is live (or NULL on purpose) and every
    // pointer points to what the call's contract asks, for the call.
    unsafe {
        let session = session(demo_model());
        assert_eq!(seam_session_warm_up(session), SeamOk, "{}", last_error());
        let ids = [1, 2, 3, 4, 5, 6, 7, 8];
        let (status, first) = run(session, c"forward", &[ids_tensor(&ids)]);
        assert_eq!(status, SeamOk, "{}", last_error());
        let (_, again) = run(session, c"forward", &[ids_tensor(&ids)]);
        assert_eq!(first, again, "a forward run is deterministic");

        // The same bundle through the Rust API.
        let rt = seam_runtime::Runtime::new(&Default::default()).unwrap();
        let model = rt.load(demo_bundle()).unwrap();
        let forward = model.entry("forward").unwrap();
        let expected = model
            .session()
            .unwrap()
            .run(
                &forward,
                &[seam_runtime::HostTensor::from_i32(vec![8], &ids).unwrap()],
            )
            .unwrap();
        assert_eq!(first.len(), expected.len());
        for ((dtype, shape, bytes), want) in first.iter().zip(&expected) {
            assert_eq!(*dtype, SEAM_DTYPE_F32);
            assert_eq!(shape, want.shape());
            assert_eq!(bytes, want.bytes());
        }
        seam_session_free(session);
    }
}

#[test]
fn bad_inputs_and_entries_are_refused() {
    // SAFETY: every handle passed is live (or NULL on purpose) and every
    // pointer points to what the call's contract asks, for the call.
    unsafe {
        let session = session(demo_model());
        let ids = [1, 2, 3, 4];
        let good = ids_tensor(&ids);

        let (status, _) = run(session, c"forward", &[]);
        assert_error(status, SeamErrorInput, "");
        let (status, _) = run(session, c"forward", &[good, good]);
        assert_error(status, SeamErrorInput, "");

        let mut floats = good;
        floats.dtype = SEAM_DTYPE_F32;
        let (status, _) = run(session, c"forward", &[floats]);
        assert_error(status, SeamErrorInput, "");

        let mut short = good;
        short.bytes -= 4;
        let (status, _) = run(session, c"forward", &[short]);
        assert_error(status, SeamErrorInput, "bytes");

        let mut unknown_dtype = good;
        unknown_dtype.dtype = 9;
        let (status, _) = run(session, c"forward", &[unknown_dtype]);
        assert_error(status, SeamErrorInvalidArgument, "dtype 9");

        let mut deep = good;
        deep.rank = SEAM_MAX_RANK + 1;
        let (status, _) = run(session, c"forward", &[deep]);
        assert_error(status, SeamErrorInvalidArgument, "SEAM_MAX_RANK");

        let mut no_data = good;
        no_data.data = ptr::null();
        let (status, _) = run(session, c"forward", &[no_data]);
        assert_error(status, SeamErrorInvalidArgument, "data");

        let (status, _) = run(session, c"nowhere", &[good]);
        assert_error(status, SeamErrorUnknownEntry, "forward");

        let (status, _) = run(session, c"forward", &[good]);
        assert_eq!(
            status,
            SeamOk,
            "the session is usable after refusals: {}",
            last_error()
        );
        seam_session_free(session);
    }
}

/// The first largest logit of the last row of f32 logits `[rows, vocab]`.
fn argmax_of_last_row((dtype, shape, bytes): &Output) -> i32 {
    assert_eq!((*dtype, shape.len()), (SEAM_DTYPE_F32, 2));
    let logits: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let row = &logits[logits.len() - shape[1]..];
    let best = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    row.iter().position(|&v| v == best).unwrap() as i32
}

/// What the token callback collects, and after how many tokens it stops.
struct Tokens {
    ids: Vec<i32>,
    stop_after: usize,
}

extern "C" fn collect(token: i32, user_data: *mut c_void) -> c_int {
    // SAFETY: the tests pass a `&mut Tokens` as `user_data`.
    let tokens = unsafe { &mut *user_data.cast::<Tokens>() };
    tokens.ids.push(token);
    c_int::from(tokens.ids.len() >= tokens.stop_after)
}

/// Generates with `sampling` through the C API; the status, the tokens the
/// callback got and the count `seam_generate` reported.
fn generate(
    session: *mut SeamSession,
    prompt: &[i32],
    max_new: usize,
    sampling: Option<SeamSampling>,
    stop_after: usize,
) -> (SeamStatus, Vec<i32>, usize) {
    // SAFETY: every handle passed is live (or NULL on purpose) and every
    // pointer points to what the call's contract asks, for the call.
    unsafe {
        let mut tokens = Tokens {
            ids: Vec::new(),
            stop_after,
        };
        let mut count = usize::MAX;
        let status = seam_generate(
            session,
            prompt.as_ptr(),
            prompt.len(),
            max_new,
            sampling.as_ref().map_or(ptr::null(), |s| s),
            Some(collect),
            (&mut tokens as *mut Tokens).cast(),
            &mut count,
        );
        (status, tokens.ids, count)
    }
}

#[test]
fn generation_matches_the_runtime_and_stops_early() {
    // SAFETY: every handle passed is live (or NULL on purpose) and every
    // pointer points to what the call's contract asks, for the call.
    unsafe {
        use seam_runtime::generate::{generate as rust_generate, Sampler, Sampling};

        let session = session(kv_model());
        let prompt = [1, 2, 3, 4, 5, 6, 7, 8];
        let top_p = SeamSampling {
            temperature: 0.8,
            top_p: 0.9,
            seed: 42,
        };

        let (status, greedy, count) = generate(session, &prompt, 10, None, usize::MAX);
        assert_eq!(status, SeamOk, "{}", last_error());
        assert_eq!((greedy.len(), count), (10, 10));

        // Independently: `prefill`, then `decode` step by step through
        // seam_session_run, each next token the first largest logit of the
        // last row.
        assert_eq!(seam_session_reset(session), SeamOk);
        let ids = prompt;
        let (status, outputs) = run(session, c"prefill", &[ids_tensor(&ids)]);
        assert_eq!(status, SeamOk, "{}", last_error());
        let mut by_hand = vec![argmax_of_last_row(&outputs[0])];
        while by_hand.len() < 10 {
            let last = [*by_hand.last().unwrap()];
            let (status, outputs) = run(session, c"decode", &[ids_tensor(&last)]);
            assert_eq!(status, SeamOk, "{}", last_error());
            by_hand.push(argmax_of_last_row(&outputs[0]));
        }
        assert_eq!(greedy, by_hand);

        let (status, sampled, _) = generate(session, &prompt, 10, Some(top_p), usize::MAX);
        assert_eq!(status, SeamOk, "{}", last_error());

        // The same through the Rust API.
        let rt = seam_runtime::Runtime::new(&Default::default()).unwrap();
        let mut rust = rt.load(kv_bundle()).unwrap().session().unwrap();
        let mut expect = |s: Sampling| {
            let mut sampler = Sampler::new(s).unwrap();
            rust_generate(&mut rust, &prompt, 10, &mut sampler)
                .unwrap()
                .tokens
        };
        assert_eq!(greedy, expect(Sampling::Greedy));
        let want = expect(Sampling::TopP {
            temperature: 0.8,
            top_p: 0.9,
            seed: 42,
        });
        assert_eq!(sampled, want);

        // An early stop: the callback asks after 3 tokens.
        let (status, stopped, count) = generate(session, &prompt, 10, Some(top_p), 3);
        assert_eq!(status, SeamOk, "{}", last_error());
        assert_eq!(stopped, want[..3]);
        assert_eq!(count, 3);

        // No callback: the tokens are only counted; no tokens asked, none made.
        let mut count = 0;
        let status = seam_generate(
            session,
            prompt.as_ptr(),
            8,
            4,
            ptr::null(),
            None,
            ptr::null_mut(),
            &mut count,
        );
        assert_eq!((status, count), (SeamOk, 4), "{}", last_error());
        let (status, none, count) = generate(session, &prompt, 0, None, usize::MAX);
        assert_eq!((status, none.len(), count), (SeamOk, 0, 0));
        seam_session_free(session);
    }
}

#[test]
fn generation_refusals() {
    // SAFETY: every handle passed is live (or NULL on purpose) and every
    // pointer points to what the call's contract asks, for the call.
    unsafe {
        let session = session(kv_model());
        let prompt = [1, 2, 3, 4, 5, 6, 7, 8];
        let (status, _, count) = generate(session, &[], 4, None, usize::MAX);
        assert_error(status, SeamErrorInput, "empty");
        assert_eq!(count, 0);
        let (status, _, _) = generate(session, &prompt, 100, None, usize::MAX);
        assert_error(status, SeamErrorSequenceFull, "32");
        let bad = SeamSampling {
            temperature: -1.0,
            top_p: 0.9,
            seed: 0,
        };
        let (status, _, _) = generate(session, &prompt, 4, Some(bad), usize::MAX);
        assert_error(status, SeamErrorInvalidArgument, "temperature");
        let bad = SeamSampling {
            temperature: 1.0,
            top_p: 1.5,
            seed: 0,
        };
        let (status, _, _) = generate(session, &prompt, 4, Some(bad), usize::MAX);
        assert_error(status, SeamErrorInvalidArgument, "top-p");
        let (status, _, _) = generate(session, &[1, 1_000_000], 4, None, usize::MAX);
        assert_error(status, SeamErrorInput, "vocabulary");
        seam_session_free(session);

        // A bundle without a KV cache cannot generate.
        let forward_only = support::session(demo_model());
        let (status, _, _) = generate(forward_only, &prompt, 4, None, usize::MAX);
        assert_error(status, SeamErrorInput, "KV cache");
        seam_session_free(forward_only);
    }
}
