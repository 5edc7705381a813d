//! Tensor-parallel sharding (`seam_compiler::shard`): every shard set,
//! evaluated on all its ranks together with real sums, computes what its
//! single-device model does; its weights are slices of the single-device
//! weights; shapes that do not divide, and structures the pass cannot carry
//! over, are refused by name; and the rank model goes through the optimizer's
//! comm rules.

#[path = "support/optimize_util.rs"]
mod util;

use std::path::PathBuf;

use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::lower::Target;
use seam_compiler::optimize::OptLevel;
use seam_compiler::shard::{
    max_relative_difference, random_inputs, shard_tensor_parallel, ShardError, ShardSet,
};
use seam_frontends::examples::{ladder_residual, mixtral_tiny, readme_moe, TensorParallelConfig};
use seam_frontends::hf::{import, ImportOptions};
use seam_ir::{random_weights, Dim, Model, Tensor, Weights};
use util::{count, fired, run};

/// The bound of the relative difference to the single-device model.
const TOL: f32 = 1e-4;

fn tensor_parallel(edit: impl FnOnce(&mut TensorParallelConfig)) -> (Model, Weights) {
    let mut config = ladder_residual();
    edit(&mut config);
    let model = config.build().expect("build");
    let weights = random_weights(&model, 7);
    (model, weights)
}

fn hf(name: &str) -> (Model, Weights) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/hf")
        .join(name);
    let imported = import(&dir, &ImportOptions::default()).expect("import the fixture");
    (imported.model, imported.weights)
}

fn llama() -> (Model, Weights) {
    hf("llama")
}

/// Shards over `ranks`, checks the set on two random inputs and returns the
/// largest relative difference.
fn max_difference(model: &Model, weights: &Weights, ranks: usize) -> f32 {
    let set = shard_tensor_parallel(model, weights, ranks).expect("shard");
    assert_eq!(set.ranks(), ranks);
    difference(model, weights, &set)
}

fn difference(model: &Model, weights: &Weights, set: &ShardSet) -> f32 {
    let mut worst = 0.0f32;
    for seed in [1, 2] {
        let inputs = random_inputs(model, "forward", 9, seed).expect("inputs");
        let d = max_relative_difference(model, weights, set, "forward", &inputs)
            .expect("evaluate the shard set");
        assert!(d <= TOL, "{} ranks: relative difference {d}", set.ranks());
        worst = worst.max(d);
    }
    eprintln!(
        "{} over {} ranks: max relative difference {worst:e}",
        model.name,
        set.ranks()
    );
    worst
}

#[test]
fn ladder_residual_shard_sets_equal_the_single_device_model() {
    let (model, weights) = tensor_parallel(|_| {});
    for ranks in [1, 2, 4] {
        max_difference(&model, &weights, ranks);
    }
}

#[test]
fn standard_form_shard_sets_equal_the_single_device_model() {
    let (model, weights) = tensor_parallel(|c| {
        c.name = "tp_standard".into();
        c.ladder = false;
    });
    for ranks in [2, 4] {
        max_difference(&model, &weights, ranks);
    }
}

#[test]
fn hf_llama_shard_sets_equal_the_single_device_model() {
    let (model, weights) = llama();
    for ranks in [2, 4] {
        max_difference(&model, &weights, ranks);
    }
}

#[test]
fn the_model_s_all_reduces_are_kept_and_missing_ones_inserted() {
    let (model, weights) = tensor_parallel(|_| {});
    let set = shard_tensor_parallel(&model, &weights, 2).unwrap();
    assert_eq!(
        count(&set.model, "all_reduce"),
        6,
        "one per module, none added"
    );
    let (model, weights) = llama();
    assert_eq!(count(&model, "all_reduce"), 0);
    let set = shard_tensor_parallel(&model, &weights, 2).unwrap();
    // After each output and down projection, before its bias is added.
    assert_eq!(count(&set.model, "all_reduce"), 4);
    let func = &set.model.functions[0];
    let reduced = func
        .value_by_name("l0.attn_out.all_reduce")
        .expect("inserted");
    let bias_add = func
        .body
        .iter()
        .find(|i| i.results == [func.value_by_name("l0.attn_out.bias").unwrap()])
        .unwrap();
    assert_eq!(bias_add.operands[0], reduced.into());
}

#[test]
fn rank_weights_are_slices_of_the_single_device_weights() {
    let (model, weights) = tensor_parallel(|_| {});
    let set = shard_tensor_parallel(&model, &weights, 4).unwrap();
    let whole = |name: &str| weights.by_name(name).unwrap();
    for (rank, w) in set.weights.iter().enumerate() {
        // q by 32 columns (one head), k and v by the kv head the rank's query
        // head reads, wo by 32 rows, gate/up by 64 columns, down by 64 rows.
        let cases = [
            ("layers.1.wq", 1, 32 * rank, 32),
            ("layers.1.wk", 1, 32 * (rank / 2), 32),
            ("layers.1.wv", 1, 32 * (rank / 2), 32),
            ("layers.1.wo", 0, 32 * rank, 32),
            ("layers.1.mlp.w_gate", 1, 64 * rank, 64),
            ("layers.1.mlp.w_up", 1, 64 * rank, 64),
            ("layers.1.mlp.w_down", 0, 64 * rank, 64),
        ];
        for (name, axis, start, len) in cases {
            let want = whole(name).slice_axis(axis, start, start + len).unwrap();
            assert_eq!(w.by_name(name).unwrap(), &want, "rank {rank} {name}");
        }
        for name in ["embed", "layers.1.attn_norm", "norm", "lm_head"] {
            assert_eq!(w.by_name(name).unwrap(), whole(name), "rank {rank} {name}");
        }
    }
    let bytes = set.model.param_bytes();
    assert!(bytes < model.param_bytes(), "{bytes} per rank");
}

#[test]
fn shapes_that_do_not_divide_are_refused_by_name() {
    let (model, weights) = tensor_parallel(|_| {});
    let err = shard_tensor_parallel(&model, &weights, 3).unwrap_err();
    assert!(
        matches!(&err, ShardError::Indivisible { param, what: "query heads", size: 4, ranks: 3, .. } if param == "layers.0.wq"),
        "{err}"
    );
    assert!(err.to_string().contains("layers.0.wq"), "{err}");

    let (model, weights) = tensor_parallel(|c| {
        c.d_model = 96;
        c.heads = 6;
        c.kv_heads = 3;
    });
    let err = shard_tensor_parallel(&model, &weights, 2).unwrap_err();
    assert!(
        matches!(&err, ShardError::Indivisible { param, what: "key/value heads", size: 3, ranks: 2, .. } if param == "layers.0.wk"),
        "{err}"
    );

    let (model, weights) = tensor_parallel(|c| c.ffn = 250);
    let err = shard_tensor_parallel(&model, &weights, 4).unwrap_err();
    assert!(
        matches!(&err, ShardError::Indivisible { param, what: "FFN hidden units", size: 250, ranks: 4, .. } if param == "layers.0.mlp.w_down"),
        "{err}"
    );
    assert_eq!(
        shard_tensor_parallel(&model, &weights, 0).unwrap_err(),
        ShardError::NoRanks
    );
    assert!(matches!(
        shard_tensor_parallel(&model, &weights, usize::MAX).unwrap_err(),
        ShardError::TooManyRanks { .. }
    ));
}

#[test]
fn an_all_reduce_of_a_whole_value_is_refused() {
    let model = util::parse(
        "model m\n\
         dim tokens <= 8\n\
         param w: f32[4]\n\
         func forward(%x: f32[tokens, 4]) -> (f32[tokens, 4]) {\n\
           %n = rms_norm(%x, @w, eps=1e-5) : f32[tokens, 4]\n\
           %r = all_reduce(%n, reduce=sum) : f32[tokens, 4]\n\
           return %r\n\
         }\n",
    );
    let weights = random_weights(&model, 1);
    // One rank: a sum over one rank is still the identity.
    let set = shard_tensor_parallel(&model, &weights, 1).unwrap();
    util::assert_same_outputs(&model, &set.model, 3, 0.0);
    let err = shard_tensor_parallel(&model, &weights, 2).unwrap_err();
    assert!(
        matches!(&err, ShardError::Unsupported { op: "all_reduce", value, .. } if value == "r"),
        "{err}"
    );
}

#[test]
fn rank_models_verify_and_the_comm_rules_schedule_their_all_reduces() {
    let (model, weights) = tensor_parallel(|_| {});
    let set = shard_tensor_parallel(&model, &weights, 2).unwrap();
    seam_ir::verify(&set.model).expect("the rank model verifies");
    let (opt, report) = run(&set.model, OptLevel::O2);
    assert_eq!(fired(&report, "split-all-reduce"), 6, "{report}");
    assert_eq!(count(&opt, "all_reduce"), 0);
    assert_eq!(count(&opt, "all_reduce_start"), 6);
    assert_eq!(count(&opt, "all_reduce_wait"), 6);
    // The optimized rank model, on every rank, still computes the model.
    let optimized = ShardSet {
        model: opt,
        weights: set.weights.clone(),
    };
    difference(&model, &weights, &optimized);

    let (model, weights) = llama();
    let set = shard_tensor_parallel(&model, &weights, 2).unwrap();
    let (opt, report) = run(&set.model, OptLevel::O2);
    assert_eq!(fired(&report, "split-all-reduce"), 4, "{report}");
    let optimized = ShardSet {
        model: opt,
        weights: set.weights.clone(),
    };
    difference(&model, &weights, &optimized);

    // Expert-parallel: the route tables' gathers go through the optimizer too.
    let model = mixtral_tiny().build().unwrap();
    let weights = random_weights(&model, 2);
    let set = shard_tensor_parallel(&model, &weights, 2).unwrap();
    let (opt, report) = run(&set.model, OptLevel::O2);
    assert_eq!(
        fired(&report, "split-all-reduce"),
        2 * count(&model, "moe"),
        "{report}"
    );
    let optimized = ShardSet {
        model: opt,
        weights: set.weights.clone(),
    };
    difference(&model, &weights, &optimized);
}

#[test]
fn moe_models_shard_expert_parallel_exactly() {
    // Mixtral-style (no shared expert) and Read-ME-style (a shared expert
    // and a router of its own), built and random, and the HF MoE fixtures
    // (Qwen2-MoE's gated shared expert included).
    for config in [mixtral_tiny(), readme_moe()] {
        let model = config.build().expect("build");
        let weights = random_weights(&model, 11);
        for ranks in [2, 4] {
            max_difference(&model, &weights, ranks);
        }
    }
    for name in ["mixtral", "qwen2_moe"] {
        let (model, weights) = hf(name);
        for ranks in [2, 4] {
            max_difference(&model, &weights, ranks);
        }
    }
}

#[test]
fn each_rank_holds_its_experts_and_routes_only_to_them() {
    let model = mixtral_tiny().build().unwrap();
    let weights = random_weights(&model, 3);
    let set = shard_tensor_parallel(&model, &weights, 4).unwrap();
    let experts = weights.by_name("layers.0.experts.w_gate").unwrap().shape[0];
    let per_rank = experts / 4;
    for (rank, w) in set.weights.iter().enumerate() {
        let lo = rank * per_rank;
        for stack in ["w_gate", "w_up", "w_down"] {
            let name = format!("layers.0.experts.{stack}");
            let want = weights
                .by_name(&name)
                .unwrap()
                .slice_axis(0, lo, lo + per_rank)
                .unwrap();
            assert_eq!(w.by_name(&name).unwrap(), &want, "rank {rank} {name}");
        }
        let ids = w.by_name("layers.0.experts.w_gate.rank_local_ids").unwrap();
        let held = w.by_name("layers.0.experts.w_gate.rank_held").unwrap();
        for e in 0..experts {
            let mine = (lo..lo + per_rank).contains(&e);
            assert_eq!(held.to_f32_vec()[e], if mine { 1.0 } else { 0.0 });
            assert_eq!(ids.to_i64_vec()[e], if mine { (e - lo) as i64 } else { 0 });
        }
    }
    // Per layer, the attention's partial sum and the MoE layer's, reduced.
    assert_eq!(count(&set.model, "all_reduce"), 2 * count(&model, "moe"));
}

#[test]
fn experts_that_do_not_divide_are_refused_by_name() {
    let model = util::parse(
        "model m\n\
         dim tokens <= 8\n\
         param router: f32[8, 6]\n\
         param e.w_gate: f32[6, 8, 16]\n\
         param e.w_up: f32[6, 8, 16]\n\
         param e.w_down: f32[6, 16, 8]\n\
         func forward(%x: f32[tokens, 8]) -> (f32[tokens, 8]) {\n\
           %logits = matmul(%x, @router) : f32[tokens, 6]\n\
           %ids, %w = route(%logits, k=2, mode=softmax_topk, renorm=true) : i32[tokens, 2], f32[tokens, 2]\n\
           %y = moe(%x, %ids, %w, @e.w_gate, @e.w_up, @e.w_down, act=swiglu) : f32[tokens, 8]\n\
           return %y\n\
         }\n",
    );
    let weights = random_weights(&model, 1);
    max_difference(&model, &weights, 2);
    let err = shard_tensor_parallel(&model, &weights, 4).unwrap_err();
    assert!(
        matches!(&err, ShardError::Indivisible { param, what: "experts", size: 6, ranks: 4, .. } if param == "e.w_gate"),
        "{err}"
    );
}

#[test]
fn kv_caches_are_split_by_kv_heads_and_prefill_and_decode_are_exact() {
    let model = mixtral_tiny().with_kv_cache(32).build().unwrap();
    let weights = random_weights(&model, 5);
    let (llama, llama_weights) = {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hf/llama");
        let options = ImportOptions {
            kv_cache: Some(32),
            ..ImportOptions::default()
        };
        let imported = import(&dir, &options).unwrap();
        (imported.model, imported.weights)
    };
    for (model, weights) in [(&model, &weights), (&llama, &llama_weights)] {
        for ranks in [2, 4] {
            let set = shard_tensor_parallel(model, weights, ranks).unwrap();
            // Each rank's caches and pools hold its kv heads: 2 kv heads over
            // 2 ranks, one each; over 4, the one its query heads read.
            for func in &set.model.functions {
                for b in &func.states {
                    let ty = &func.value(func.inputs[b.input]).ty;
                    let heads = &ty.shape.dims()[ty.rank() - 2];
                    assert_eq!(*heads, Dim::Static(1), "{} {}", func.name, ty);
                }
            }
            for function in ["prefill", "decode"] {
                let inputs = random_inputs(model, function, 7, 3).unwrap();
                let d = max_relative_difference(model, weights, &set, function, &inputs).unwrap();
                eprintln!(
                    "{} {function} over {ranks} ranks: max relative difference {d:e}",
                    model.name
                );
                assert!(d <= TOL, "{function}: {d}");
            }
        }
    }
}

#[test]
fn slot_pools_are_split_by_kv_heads_and_a_batched_step_is_exact() {
    let model = mixtral_tiny().with_kv_cache(16).build().unwrap();
    let weights = random_weights(&model, 9);
    // Three sequences' first tokens, one per slot, every row's logits.
    let mut inputs = random_inputs(&model, "step", 3, 4).unwrap();
    let func = model.function("step").unwrap();
    for (i, &v) in func.inputs.iter().enumerate() {
        let rows = match func.value(v).name.as_str() {
            "slots" | "rows" => vec![0, 1, 2],
            "positions" => vec![0, 0, 0],
            _ => continue,
        };
        inputs[i] = Tensor::i32(vec![3], rows).unwrap();
    }
    for ranks in [2, 4] {
        let set = shard_tensor_parallel(&model, &weights, ranks).unwrap();
        let step = set.model.function("step").unwrap();
        for b in &step.states {
            let ty = &step.value(step.inputs[b.input]).ty;
            assert_eq!(ty.shape.dims()[2], Dim::Static(1), "{ty}");
        }
        let d = max_relative_difference(&model, &weights, &set, "step", &inputs).unwrap();
        eprintln!("mixtral_tiny_kv step over {ranks} ranks: max relative difference {d:e}");
        assert!(d <= TOL, "{d}");
    }
}

#[test]
fn rank_models_compile_to_bundles() {
    // Dense, expert-parallel and KV-cached rank models lower to kernels (the
    // bundle's all_reduce is the identity until a communicator runs it).
    let models = [tensor_parallel(|_| {}), {
        let model = mixtral_tiny().with_kv_cache(16).build().unwrap();
        let weights = random_weights(&model, 1);
        (model, weights)
    }];
    for (model, weights) in &models {
        let set = shard_tensor_parallel(model, weights, 2).unwrap();
        for level in [OptLevel::O0, OptLevel::O2] {
            let options = CompileOptions::new(Target::lavapipe(), level);
            if let Err(e) = compile(&set.model, &set.weights[1], &options) {
                panic!("{} at {level:?}: {e}", model.name);
            }
        }
    }
}
