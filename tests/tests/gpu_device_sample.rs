//! Device sampling (`Session::run_sampled`) on the GPU (lavapipe on CI): the
//! id picked on the device equals the one `Draw::pick` gives on the host for
//! the same logits (read back from the same run) and the same uniform draw —
//! greedy with ties and `-inf` logits, top-p at several temperatures and
//! nucleus sizes — at vocabularies 1, 7, 1000, 32000 and 49152; only 4 bytes
//! come back; bad logits are errors; several rows picked in one run
//! (`Session::run_sampled_rows`), each with its own draw.

use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::lower::Target;
use seam_compiler::optimize::OptLevel;
use seam_ir::{random_tensor_in, random_weights, text, DType};
use seam_runtime::bundle::BundleReader;
use seam_runtime::generate::{Draw, Sampler, Sampling};
use seam_runtime::{DeviceOptions, Entry, Error, HostTensor, Model, Runtime, Session};

/// A model whose logits are `-x` (exact) for any `[rows, vocab]` input.
const MODEL: &str = "model logits\ndim t <= 4\ndim v <= 65536\n\
    func f(%x: f32[t, v]) -> (f32[t, v]) {\n  %y = neg(%x) : f32[t, v]\n  return %y\n}\n";

struct Fixture {
    rt: Runtime,
    model: Model,
}

fn fixture() -> Fixture {
    std::env::set_var(
        "WGPU_BACKEND",
        std::env::var("WGPU_BACKEND").unwrap_or("vulkan".into()),
    );
    let (ir, _) = text::parse_and_verify("logits", MODEL).unwrap();
    let rt = Runtime::new(&DeviceOptions::default()).expect("a Vulkan device (lavapipe on CI)");
    let options = CompileOptions::new(Target::from_limits(rt.gpu().shader_limits()), OptLevel::O0);
    let bundle = compile(&ir, &random_weights(&ir, 1), &options)
        .unwrap()
        .bundle;
    let model = rt
        .load_bundle(BundleReader::from_bytes(bundle.to_bytes().unwrap()).unwrap())
        .unwrap();
    Fixture { rt, model }
}

/// Seeded logits in `[-4, 4)`, rounded to multiples of `step` (ties when coarse).
fn logits(rows: usize, vocab: usize, seed: u64, step: f32) -> Vec<f32> {
    let t = random_tensor_in(DType::F32, &[rows, vocab], -4.0, 4.0, seed).unwrap();
    t.to_f32_vec()
        .into_iter()
        .map(|x| (x / step).round() * step)
        .collect()
}

/// The device's pick and the host's pick on the last row of the logits the
/// same run produced (read back by a plain run of the same input).
fn both(s: &mut Session, f: &Entry, x: &[f32], shape: [usize; 2], draw: &Draw) -> (usize, usize) {
    let input = [HostTensor::from_f32(shape.to_vec(), x).unwrap()];
    let on_device = s.run_sampled(f, &input, draw).unwrap();
    assert_eq!(on_device.vocab, shape[1]);
    let all = s.run(f, &input).unwrap()[0].to_f32();
    let last = &all[(shape[0] - 1) * shape[1]..];
    (on_device.id as usize, draw.pick(last).unwrap())
}

#[test]
fn device_greedy_matches_the_host_with_ties_and_neg_infinities() {
    let fx = fixture();
    let f = fx.model.entry("f").unwrap();
    let mut s = fx.model.session().unwrap();
    for (i, &vocab) in [1usize, 7, 32000, 49152].iter().enumerate() {
        for rows in [1usize, 3] {
            // Fine logits (ties unlikely), coarse ones (many ties of the max),
            // all equal (the answer is 0), and some at -inf (here +inf before
            // the negation).
            let fine = logits(rows, vocab, 10 + i as u64, 1e-6);
            let coarse = logits(rows, vocab, 20 + i as u64, 2.0);
            let equal = vec![0.25f32; rows * vocab];
            let mut with_inf = logits(rows, vocab, 30 + i as u64, 0.5);
            for x in with_inf.iter_mut().step_by(3) {
                *x = f32::INFINITY;
            }
            for (what, x) in [
                ("fine", fine),
                ("coarse", coarse),
                ("equal", equal),
                ("inf", with_inf),
            ] {
                let (device, host) = both(&mut s, &f, &x, [rows, vocab], &Draw::Greedy);
                assert_eq!(device, host, "vocab {vocab}, rows {rows}, {what}");
            }
        }
    }
}

#[test]
fn device_top_p_matches_the_host_for_the_same_draw() {
    let fx = fixture();
    let f = fx.model.entry("f").unwrap();
    let mut s = fx.model.session().unwrap();
    let mut checked = 0;
    let mut distinct = std::collections::BTreeSet::new();
    for (i, &vocab) in [7usize, 1000, 32000].iter().enumerate() {
        let x = logits(2, vocab, 40 + i as u64, 1e-6);
        for (j, (temperature, top_p)) in [(0.5, 0.9), (1.0, 0.5), (1.0, 1.0), (2.0, 0.95)]
            .into_iter()
            .enumerate()
        {
            let sampling = Sampling::TopP {
                temperature,
                top_p,
                seed: (i * 10 + j) as u64,
            };
            let mut sampler = Sampler::new(sampling).unwrap();
            for _ in 0..4 {
                let draw = sampler.draw();
                let (device, host) = both(&mut s, &f, &x, [2, vocab], &draw);
                assert_eq!(device, host, "vocab {vocab}, {draw:?}");
                distinct.insert((vocab, device));
                checked += 1;
            }
        }
    }
    // The draws picked many different tokens, not just the argmax.
    assert!(distinct.len() > checked / 2, "{distinct:?}");
}

#[test]
fn a_sampled_run_reads_back_four_bytes() {
    let fx = fixture();
    let f = fx.model.entry("f").unwrap();
    let mut s = fx.model.session().unwrap();
    let x = logits(2, 32000, 5, 1e-6);
    let input = [HostTensor::from_f32(vec![2, 32000], &x).unwrap()];
    // The first sampled run builds the kernel (and runs it once); then measure.
    s.run_sampled(&f, &input, &Draw::Greedy).unwrap();
    let gpu = fx.rt.gpu();
    let before = gpu.bytes_read_back();
    s.run_sampled(&f, &input, &Draw::Greedy).unwrap();
    assert_eq!(gpu.bytes_read_back() - before, 4);
    let before = gpu.bytes_read_back();
    s.run(&f, &input).unwrap();
    assert_eq!(gpu.bytes_read_back() - before, 2 * 32000 * 4);
}

#[test]
fn bad_logits_are_errors() {
    let fx = fixture();
    let f = fx.model.entry("f").unwrap();
    let mut s = fx.model.session().unwrap();
    let run = |s: &mut Session, x: &[f32], draw: &Draw| {
        let input = [HostTensor::from_f32(vec![1, x.len()], x).unwrap()];
        s.run_sampled(&f, &input, draw)
    };
    let top_p = Draw::TopP {
        inv_temperature: 1.0,
        top_p: 0.9,
        u: 0.5,
    };
    let nan = [1.0, f32::NAN, 0.0];
    for draw in [Draw::Greedy, top_p] {
        assert!(matches!(run(&mut s, &nan, &draw), Err(Error::Sampling(_))));
        assert!(draw.pick(&nan).is_err());
    }
    // -inf before the negation: the largest logit is +inf.
    let infinite = [1.0, f32::NEG_INFINITY, 0.0];
    assert!(matches!(
        run(&mut s, &infinite, &top_p),
        Err(Error::Sampling(_))
    ));
    assert_eq!(run(&mut s, &infinite, &Draw::Greedy).unwrap().id, 1);
    // No logits to sample from: an empty vocabulary.
    assert!(run(&mut s, &[], &Draw::Greedy).is_err());
    // The session still works after the errors.
    assert_eq!(run(&mut s, &[3.0, -2.0, 1.0], &Draw::Greedy).unwrap().id, 1);
}

#[test]
fn many_rows_are_sampled_at_once_each_with_its_own_draw() {
    let fx = fixture();
    let f = fx.model.entry("f").unwrap();
    let mut s = fx.model.session().unwrap();
    let (rows, vocab) = (4, 1000);
    let x = logits(rows, vocab, 77, 1e-6);
    let input = [HostTensor::from_f32(vec![rows, vocab], &x).unwrap()];
    let all = s.run(&f, &input).unwrap()[0].to_f32();
    let mut sampler = Sampler::new(Sampling::TopP {
        temperature: 1.5,
        top_p: 0.9,
        seed: 3,
    })
    .unwrap();
    // Rows out of order, one twice, greedy and top-p mixed; then a NaN row
    // fails alone.
    for round in 0..3 {
        let picks: Vec<(usize, Draw)> = [3usize, 0, 2, 0, 1]
            .iter()
            .enumerate()
            .map(|(j, &row)| {
                let draw = if (j + round) % 2 == 0 {
                    Draw::Greedy
                } else {
                    sampler.draw()
                };
                (row, draw)
            })
            .collect();
        let expected: Vec<usize> = picks
            .iter()
            .map(|(row, draw)| draw.pick(&all[row * vocab..(row + 1) * vocab]).unwrap())
            .collect();
        let got = s
            .run_sampled_rows(&f, &input, |n| {
                assert_eq!(n, rows);
                picks.clone()
            })
            .unwrap();
        assert_eq!(got.vocab, vocab);
        let got: Vec<usize> = got.ids.into_iter().map(|r| r.unwrap() as usize).collect();
        assert_eq!(got, expected, "round {round}");
    }
    let mut bad = x.clone();
    bad[vocab + 5] = f32::NAN;
    let input = [HostTensor::from_f32(vec![rows, vocab], &bad).unwrap()];
    let got = s
        .run_sampled_rows(&f, &input, |_| vec![(0, Draw::Greedy), (1, Draw::Greedy)])
        .unwrap();
    assert!(got.ids[0].is_ok());
    assert!(matches!(got.ids[1], Err(Error::Sampling(_))));
    // A row past the logits is refused before anything runs.
    assert!(s
        .run_sampled_rows(&f, &input, |n| vec![(n, Draw::Greedy)])
        .is_err());
}
