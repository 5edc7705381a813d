//! Reductions across ranks on the default device (lavapipe on CI): a small
//! tensor-parallel block (column-parallel up projection, row-parallel down
//! projection, `all_reduce`, a replicated projection) run as 2 and 4 ranks
//! in one process — each rank a thread with its own device and session,
//! summing through a `LocalGroup` — gives every rank the single-device
//! output within 1e-5 relative, with a blocking `all_reduce` and with one
//! split into `all_reduce_start` / `all_reduce_wait` around a replicated
//! product (which, as written, runs while the ranks sum), at -O0 and -O2; a rank that never joins
//! is a timeout error on the others, not a hang, and ranks disagreeing on a
//! reduction's size are refused. A replicated serving engine over a 2-rank
//! `mixtral_tiny` (rank 0 given the requests, rank 1 following) generates
//! the single-device engine's greedy tokens.

mod gpu_common;

use std::sync::Arc;
use std::time::Duration;

use gpu_common::{bundle_bytes, runtime};
use seam_compiler::optimize::OptLevel;
use seam_ir::{random_weights, text, Model, Tensor, Weights};
use seam_runtime::bundle::BundleReader;
use seam_runtime::collective::{Communicator, LocalGroup};
use seam_runtime::{Error, HostTensor};

const HIDDEN: usize = 48;

/// The block with `h` of the hidden units (all of them on one device); with
/// `split`, the reduction written as `all_reduce_start` / `all_reduce_wait`
/// around the replicated product.
fn block(h: usize, split: bool) -> Model {
    let reduce = if split {
        "%t = all_reduce_start(%p, reduce=sum) : f32[tokens, 24]
  %q = matmul(%x, @wd) : f32[tokens, 24]
  %s = all_reduce_wait(%t) : f32[tokens, 24]"
    } else {
        "%s = all_reduce(%p, reduce=sum) : f32[tokens, 24]
  %q = matmul(%x, @wd) : f32[tokens, 24]"
    };
    let source = format!(
        "model tp_block
dim tokens <= 16
param wa: f32[32, {h}]
param wb: f32[{h}, 24]
param wc: f32[24, 24]
param wd: f32[32, 24]

func forward(%x: f32[tokens, 32]) -> (f32[tokens, 24]) {{
  %h = matmul(%x, @wa) : f32[tokens, {h}]
  %g = silu(%h) : f32[tokens, {h}]
  %p = matmul(%g, @wb) : f32[tokens, 24]
  {reduce}
  %m = matmul(%s, @wc) : f32[tokens, 24]
  %o = add(%m, %q) : f32[tokens, 24]
  return %o
}}
"
    );
    text::parse(&source).unwrap().0
}

/// Columns `cols` of a row-major `[rows, n]` matrix.
fn columns(t: &Tensor, rows: usize, n: usize, cols: std::ops::Range<usize>) -> Tensor {
    let v = t.to_f32_vec();
    let data = (0..rows)
        .flat_map(|r| v[r * n + cols.start..r * n + cols.end].to_vec())
        .collect();
    Tensor::f32(vec![rows, cols.len()], data).unwrap()
}

/// Rows `rows` of a row-major `[_, n]` matrix.
fn rows(t: &Tensor, n: usize, rows: std::ops::Range<usize>) -> Tensor {
    let v = t.to_f32_vec();
    Tensor::f32(
        vec![rows.len(), n],
        v[rows.start * n..rows.end * n].to_vec(),
    )
    .unwrap()
}

/// Rank `r` of `n`'s model and weights, sliced from the full ones.
fn shard(full: &Weights, r: usize, n: usize, split: bool) -> (Model, Weights) {
    let h = HIDDEN / n;
    let model = block(h, split);
    let part = r * h..(r + 1) * h;
    let weights = Weights::from_named(
        &model,
        [
            (
                "wa".to_string(),
                columns(full.by_name("wa").unwrap(), 32, HIDDEN, part.clone()),
            ),
            (
                "wb".to_string(),
                rows(full.by_name("wb").unwrap(), 24, part),
            ),
            ("wc".to_string(), full.by_name("wc").unwrap().clone()),
            ("wd".to_string(), full.by_name("wd").unwrap().clone()),
        ],
    )
    .unwrap();
    (model, weights)
}

fn input(tokens: usize) -> HostTensor {
    let x: Vec<f32> = (0..tokens * 32)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
        .collect();
    HostTensor::from_f32(vec![tokens, 32], &x).unwrap()
}

/// Each rank's output, every rank run on its own thread and device.
fn run_ranks(
    bundles: Vec<Vec<u8>>,
    tokens: Vec<usize>,
    timeout: Duration,
) -> Vec<Result<Vec<f32>, Error>> {
    let group = LocalGroup::new(bundles.len(), timeout);
    let threads: Vec<_> = group
        .into_iter()
        .zip(bundles)
        .zip(tokens)
        .map(|((comm, bytes), t)| {
            std::thread::spawn(move || {
                let rt = runtime();
                let model = rt.load_bundle(BundleReader::from_bytes(bytes)?)?;
                let mut session = model.session()?;
                session.set_communicator(Arc::new(comm) as Arc<dyn Communicator>);
                let out = session.run(&model.entry("forward")?, &[input(t)])?;
                assert_eq!(session.collective_stats().reductions, 1);
                Ok(out[0].to_f32())
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn max_relative(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn shard_sets_of_2_and_4_ranks_equal_the_single_device_run() {
    let rt = runtime();
    let single = block(HIDDEN, false);
    let full = random_weights(&single, 5);
    for (level, split) in [
        (OptLevel::O0, false),
        (OptLevel::O0, true),
        (OptLevel::O2, true),
    ] {
        let bytes = bundle_bytes(&rt, &single, &full, level);
        let model = rt
            .load_bundle(BundleReader::from_bytes(bytes).unwrap())
            .unwrap();
        let want = model
            .session()
            .unwrap()
            .run(&model.entry("forward").unwrap(), &[input(5)])
            .unwrap()[0]
            .to_f32();
        for n in [2, 4] {
            let bundles: Vec<Vec<u8>> = (0..n)
                .map(|r| {
                    let (m, w) = shard(&full, r, n, split);
                    bundle_bytes(&rt, &m, &w, level)
                })
                .collect();
            let read = BundleReader::from_bytes(bundles[0].clone()).unwrap();
            let c = &read.manifest().entry_points[0].collectives;
            assert_eq!(c.len(), 1, "{c:?}");
            // Split as written (-O0), the replicated product runs while the
            // ranks sum; -O2's scheduler may run it before the partial instead.
            if level == OptLevel::O0 {
                assert_eq!(c[0].start < c[0].wait, split, "{c:?}");
            }
            for (r, got) in run_ranks(bundles, vec![5; n], Duration::from_secs(60))
                .into_iter()
                .enumerate()
            {
                let got = got.unwrap();
                let err = max_relative(&got, &want);
                assert!(
                    err < 1e-5,
                    "{level:?}, {n} ranks, rank {r}: max relative error {err}"
                );
            }
        }
    }
}

#[test]
fn a_missing_rank_times_out_and_a_mismatch_is_refused() {
    let rt = runtime();
    let full = random_weights(&block(HIDDEN, false), 5);
    let bundles: Vec<Vec<u8>> = (0..2)
        .map(|r| {
            let (m, w) = shard(&full, r, 2, true);
            bundle_bytes(&rt, &m, &w, OptLevel::O0)
        })
        .collect();
    // Rank 1 runs 3 tokens where rank 0 runs 5: their partials differ in size.
    let results = run_ranks(bundles.clone(), vec![5, 3], Duration::from_secs(60));
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(Error::Collective(_)))),
        "{results:?}"
    );
    // A group of 2 where only rank 0 runs: it times out.
    let mut group = LocalGroup::new(2, Duration::from_millis(500));
    let _absent = group.pop();
    let comm = group.pop().unwrap();
    let model = rt
        .load_bundle(BundleReader::from_bytes(bundles[0].clone()).unwrap())
        .unwrap();
    let mut session = model.session().unwrap();
    session.set_communicator(Arc::new(comm));
    let started = std::time::Instant::now();
    let err = session
        .run(&model.entry("forward").unwrap(), &[input(5)])
        .unwrap_err();
    assert!(matches!(err, Error::Collective(_)), "{err}");
    assert!(err.to_string().contains("did not join"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// `mixtral_tiny` with a KV cache and the batched `step` (8 slots of 32
/// positions), random weights.
fn serving_model() -> (Model, Weights) {
    let mut c = seam_frontends::examples::mixtral_tiny();
    c.kv_cache = Some(32);
    c.max_batch = Some(8);
    c.max_tokens = 32;
    let model = c.build().unwrap();
    let weights = random_weights(&model, 9);
    (model, weights)
}

/// Five greedy requests of different lengths.
fn serving_requests() -> Vec<seam_runtime::serving::Request> {
    (0..5)
        .map(|k| seam_runtime::serving::Request {
            prompt: (0..1 + 3 * k)
                .map(|i| ((i * 13 + k * 7 + 1) % 50) as i32)
                .collect(),
            max_new_tokens: 3 + 2 * k,
            sampling: seam_runtime::generate::Sampling::Greedy,
            stop_ids: Vec::new(),
        })
        .collect()
}

#[test]
fn a_replicated_engine_serves_a_shard_set_from_rank_zeros_requests() {
    use seam_runtime::serving::{complete_all, Engine, EngineOptions};
    let rt = runtime();
    let (model, weights) = serving_model();
    // One device.
    let one = rt
        .load_bundle(
            BundleReader::from_bytes(bundle_bytes(&rt, &model, &weights, OptLevel::O2)).unwrap(),
        )
        .unwrap();
    let options = || EngineOptions {
        max_batch: Some(4),
        ..EngineOptions::default()
    };
    let mut alone = Engine::new(&one, options()).unwrap();
    let want = complete_all(&mut alone, 0, serving_requests()).unwrap();
    // Replicating needs the ranks; rank 0 does not follow.
    assert!(Engine::new(
        &one,
        EngineOptions {
            replicate: true,
            ..options()
        }
    )
    .is_err());
    assert!(alone.follow().is_err());
    // Two ranks: only rank 0's engine gets the requests.
    let set = seam_compiler::shard::shard_tensor_parallel(&model, &weights, 2).unwrap();
    let threads: Vec<_> = LocalGroup::new(2, Duration::from_secs(60))
        .into_iter()
        .zip(set.weights)
        .map(|(comm, w)| {
            let bytes = bundle_bytes(&rt, &set.model, &w, OptLevel::O2);
            std::thread::spawn(move || {
                let rt = runtime();
                let model = rt.load_bundle(BundleReader::from_bytes(bytes)?)?;
                let rank = comm.rank();
                let options = EngineOptions {
                    communicator: Some(Arc::new(comm) as Arc<dyn Communicator>),
                    replicate: true,
                    ..options()
                };
                let mut engine = Engine::new(&model, options)?;
                if rank == 0 {
                    let done = complete_all(&mut engine, 0, serving_requests())?;
                    engine.keep_followers()?;
                    engine.release_followers()?;
                    Ok(Some(done))
                } else {
                    engine.follow()?;
                    Ok(None)
                }
            })
        })
        .collect();
    let results: Vec<Result<_, Error>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let got = results[0].as_ref().unwrap().as_ref().unwrap();
    assert!(matches!(results[1], Ok(None)), "{:?}", results[1]);
    let tokens = |c: &[seam_runtime::serving::Completion]| -> Vec<Vec<i32>> {
        c.iter().map(|c| c.tokens.clone()).collect()
    };
    assert_eq!(tokens(got), tokens(&want));
}
