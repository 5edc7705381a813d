//! Experts kept in host memory (`ModelOptions::experts`) on the default
//! device (lavapipe on CI): with any number of resident experts and any cache
//! policy, outputs equal the all-resident run bit for bit — the forward
//! logits of a prompt whose layers use more experts than they have slots
//! (several expert passes per layer), and batched generation on the engine —
//! for the Read-ME (pre-gated) and Mixtral (in-layer router) examples, the
//! Hugging Face MoE fixtures and stacks stored as q4_0 and q8_0 row planes; a pre-gating router's routing is read back
//! once per run, an in-layer router's once per layer; a model without MoE
//! layers is refused with a named error.

mod gpu_common;
mod hf_common;

use gpu_common::{bundle_bytes, runtime};
use hf_common::imported_for_serving;
use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::formats::WeightPolicy;
use seam_compiler::lower::Target;
use seam_compiler::optimize::OptLevel;
use seam_core::WeightFormat;
use seam_frontends::examples::{mixtral_tiny, readme_moe, MoeTransformerConfig};
use seam_ir::{random_weights, Model, Weights};
use seam_runtime::bundle::BundleReader;
use seam_runtime::experts::{ExpertOffload, PolicyKind};
use seam_runtime::generate::Sampling;
use seam_runtime::serving::{complete_all, Engine, EngineOptions, Request};
use seam_runtime::{Error, HostTensor, ModelOptions, Runtime};

/// Positions per sequence and sequences of the test bundles.
const POSITIONS: u64 = 48;
const SLOTS: u64 = 4;

fn example(mut c: MoeTransformerConfig) -> (Model, Weights) {
    c.kv_cache = Some(POSITIONS);
    c.max_batch = Some(SLOTS);
    c.max_tokens = POSITIONS;
    let model = c.build().unwrap();
    let weights = random_weights(&model, 11);
    (model, weights)
}

fn fixture(name: &str) -> (Model, Weights) {
    imported_for_serving(name, POSITIONS, SLOTS)
}

fn load(rt: &Runtime, bytes: &[u8], experts: Option<ExpertOffload>) -> seam_runtime::Model {
    let bundle = BundleReader::from_bytes(bytes.to_vec()).unwrap();
    rt.load_bundle_with(
        bundle,
        &ModelOptions {
            experts,
            ..ModelOptions::default()
        },
    )
    .unwrap()
}

/// The forward logits of a 16-token prompt, as bits.
fn forward_bits(model: &seam_runtime::Model, vocab: usize) -> Vec<u32> {
    let ids: Vec<i32> = (0..16).map(|i| ((i * 37 + 5) % vocab) as i32).collect();
    let mut session = model.session().unwrap();
    let out = session
        .run(
            &model.entry("forward").unwrap(),
            &[HostTensor::from_i32(vec![ids.len()], &ids).unwrap()],
        )
        .unwrap();
    out[0].to_f32().iter().map(|x| x.to_bits()).collect()
}

/// Four requests generated together on the engine (prompts chunked beside
/// decode tokens), one seeded top-p: their tokens.
fn generated(model: &seam_runtime::Model, vocab: usize) -> Vec<Vec<i32>> {
    let options = EngineOptions {
        max_batch: Some(SLOTS as usize),
        token_budget: Some(8),
        ..EngineOptions::default()
    };
    let mut engine = Engine::new(model, options).unwrap();
    let requests = (0..4)
        .map(|k| Request {
            prompt: (0..3 + 4 * k)
                .map(|i| ((i * 13 + k * 7 + 1) % vocab) as i32)
                .collect(),
            max_new_tokens: 6 + k,
            sampling: if k == 3 {
                Sampling::TopP {
                    temperature: 1.2,
                    top_p: 0.9,
                    seed: 5,
                }
            } else {
                Sampling::Greedy
            },
            stop_ids: Vec::new(),
        })
        .collect();
    complete_all(&mut engine, 0, requests)
        .unwrap()
        .into_iter()
        .map(|c| c.tokens)
        .collect()
}

/// Every residency below the expert count and every policy give the
/// all-resident outputs, and the offloaded runs did load experts.
fn check_exact(name: &str, model: &Model, weights: &Weights, experts: u32, opt: OptLevel) {
    let rt = runtime();
    let bytes = bundle_bytes(&rt, model, weights, opt);
    check_bundle(&rt, name, &bytes, experts);
}

/// [`check_exact`] on a compiled bundle.
fn check_bundle(rt: &Runtime, name: &str, bytes: &[u8], experts: u32) {
    let all = load(rt, bytes, None);
    let vocab = all.manifest().entry_points[0].outputs[0].shape[1]
        .as_const()
        .unwrap() as usize;
    let (want_forward, want_tokens) = (forward_bits(&all, vocab), generated(&all, vocab));
    for resident in [1, experts / 2] {
        for policy in PolicyKind::ALL {
            let offload = ExpertOffload::new(resident, policy);
            let m = load(rt, bytes, Some(offload));
            let what = format!("{name}: {resident} of {experts} resident, {policy}");
            assert!(
                forward_bits(&m, vocab) == want_forward,
                "{what}: forward logits differ"
            );
            assert_eq!(generated(&m, vocab), want_tokens, "{what}: tokens differ");
            let mut s = m.session().unwrap();
            s.run(
                &m.entry("forward").unwrap(),
                &[HostTensor::from_i32(vec![4], &[1, 2, 3, 4]).unwrap()],
            )
            .unwrap();
            let stats = s.expert_stats().unwrap();
            assert!(
                stats.counters.misses > 0 && stats.bytes_uploaded > 0,
                "{what}: {stats:?}"
            );
        }
    }
}

#[test]
fn readme_moe_offloaded_equals_all_resident_bit_for_bit() {
    let (model, weights) = example(readme_moe());
    check_exact("readme_moe", &model, &weights, 8, OptLevel::O2);
}

#[test]
fn mixtral_tiny_offloaded_equals_all_resident_bit_for_bit() {
    let (model, weights) = example(mixtral_tiny());
    check_exact("mixtral_tiny", &model, &weights, 8, OptLevel::O2);
}

#[test]
fn quantized_stacks_offloaded_equal_all_resident_bit_for_bit() {
    let rt = runtime();
    let (model, weights) = example(readme_moe());
    for format in [WeightFormat::Q4_0, WeightFormat::Q8_0] {
        let options = CompileOptions {
            weights: WeightPolicy::uniform(format),
            ..CompileOptions::new(Target::from_limits(rt.gpu().shader_limits()), OptLevel::O2)
        };
        let bundle = compile(&model, &weights, &options).unwrap().bundle;
        let stacks = &bundle.manifest.entry_points[0].expert_layers[0].stacks;
        let stored = &bundle.manifest.weights[stacks[0] as usize];
        assert_eq!(
            stored.dtype,
            seam_core::DType::U32,
            "{format:?}: stacks in row planes"
        );
        let bytes = bundle.to_bytes().unwrap();
        check_bundle(&rt, &format!("readme_moe {}", format.name()), &bytes, 8);
    }
}

#[test]
fn hf_moe_fixtures_offloaded_equal_all_resident_bit_for_bit() {
    for name in ["mixtral", "qwen2_moe", "olmoe"] {
        let (model, weights) = fixture(name);
        let experts = model
            .params
            .iter()
            .find(|p| p.name.contains("experts"))
            .and_then(|p| p.ty.shape.static_sizes())
            .map(|s| s[0] as u32)
            .unwrap();
        check_exact(name, &model, &weights, experts, OptLevel::O0);
    }
}

/// The routing reads one forward run makes.
fn routing_reads(bytes: &[u8]) -> u64 {
    let rt = runtime();
    let m = load(
        &rt,
        bytes,
        Some(ExpertOffload::new(2, PolicyKind::Lookahead)),
    );
    let mut s = m.session().unwrap();
    s.run(
        &m.entry("forward").unwrap(),
        &[HostTensor::from_i32(vec![5], &[1, 2, 3, 4, 5]).unwrap()],
    )
    .unwrap();
    s.expert_stats().unwrap().routing_reads
}

#[test]
fn a_pre_gating_router_is_read_once_an_in_layer_router_per_layer() {
    let rt = runtime();
    let (model, weights) = example(readme_moe());
    let pregated = bundle_bytes(&rt, &model, &weights, OptLevel::O2);
    assert_eq!(routing_reads(&pregated), 1);
    let (model, weights) = example(mixtral_tiny());
    let in_layer = bundle_bytes(&rt, &model, &weights, OptLevel::O2);
    assert_eq!(routing_reads(&in_layer), 4, "one per MoE layer");
}

#[test]
fn a_model_without_moe_layers_is_refused_by_name() {
    let rt = runtime();
    let (model, weights) = fixture("llama");
    let bytes = bundle_bytes(&rt, &model, &weights, OptLevel::O0);
    let bundle = BundleReader::from_bytes(bytes).unwrap();
    let options = ModelOptions {
        experts: Some(ExpertOffload::new(2, PolicyKind::Lru)),
        ..ModelOptions::default()
    };
    match rt.load_bundle_with(bundle, &options) {
        Err(Error::Experts(m)) => assert!(m.contains("no MoE layer"), "{m}"),
        other => panic!(
            "expected an expert offload error, got {:?}",
            other.map(|_| ())
        ),
    }
    let bundle =
        BundleReader::from_bytes(bundle_bytes(&rt, &model, &weights, OptLevel::O0)).unwrap();
    let zero = ModelOptions {
        experts: Some(ExpertOffload::new(0, PolicyKind::Lru)),
        ..ModelOptions::default()
    };
    assert!(matches!(
        rt.load_bundle_with(bundle, &zero),
        Err(Error::Experts(_))
    ));
}

#[test]
fn a_weight_budget_refuses_what_does_not_fit_unless_experts_stay_on_the_host() {
    let rt = runtime();
    let (model, weights) = example(readme_moe());
    let bytes = bundle_bytes(&rt, &model, &weights, OptLevel::O2);
    let total: u64 = BundleReader::from_bytes(bytes.clone())
        .unwrap()
        .manifest()
        .weights
        .iter()
        .map(|w| w.bytes)
        .sum();
    let budget = total * 3 / 4;
    let options = |experts| ModelOptions {
        experts,
        weight_budget: Some(budget),
    };
    let bundle = BundleReader::from_bytes(bytes.clone()).unwrap();
    match rt.load_bundle_with(bundle, &options(None)) {
        Err(Error::WeightBudget { needed, budget: b }) => assert_eq!((needed, b), (total, budget)),
        other => panic!("expected the budget refused, got {:?}", other.map(|_| ())),
    }
    // 2 of 8 experts resident: the stacks stay on the host and the rest fits.
    let bundle = BundleReader::from_bytes(bytes).unwrap();
    let offload = Some(ExpertOffload::new(2, PolicyKind::Lru));
    rt.load_bundle_with(bundle, &options(offload)).unwrap();
}
