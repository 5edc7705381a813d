//! The comm group: `split-all-reduce` and the all-reduce scheduler on the
//! tensor-parallel example in its ladder and standard residual forms.

#[path = "support/optimize_util.rs"]
mod util;

use seam_compiler::optimize::schedule::schedule_comm;
use seam_compiler::optimize::OptLevel;
use seam_frontends::examples::ladder_residual;
use seam_ir::{Function, Model, Op, Operand};
use util::{assert_same_outputs, count, fired, run};

const TOL: f32 = 1e-5;

fn tensor_parallel(ladder: bool) -> Model {
    let mut config = ladder_residual();
    config.ladder = ladder;
    config.build().expect("build")
}

/// Body position of the instruction defining the value named `name`.
fn position(func: &Function, name: &str) -> usize {
    let v = func
        .value_by_name(name)
        .unwrap_or_else(|| panic!("no %{name}"));
    func.body
        .iter()
        .position(|i| i.results.contains(&v))
        .unwrap_or_else(|| panic!("%{name} is not defined by an instruction"))
}

/// Positions of the start and the wait of the all-reduce whose result is `name`.
fn start_and_wait(func: &Function, name: &str) -> (usize, usize) {
    let wait = position(func, name);
    assert_eq!(func.body[wait].op, Op::AllReduceWait, "%{name}");
    let Operand::Value(started) = func.body[wait].operands[0] else {
        panic!("a wait of a param")
    };
    let start = func
        .body
        .iter()
        .position(|i| i.results.contains(&started))
        .expect("the start");
    assert!(matches!(func.body[start].op, Op::AllReduceStart { .. }));
    (start, wait)
}

#[test]
fn ladder_overlaps_each_all_reduce_with_the_next_module() {
    let model = tensor_parallel(true);
    let (opt, report) = run(&model, OptLevel::O2);
    // Three layers, two all-reduces each.
    assert_eq!(fired(&report, "split-all-reduce"), 6, "{report}");
    assert_eq!(count(&opt, "all_reduce"), 0);
    assert_eq!(count(&opt, "all_reduce_start"), 6);
    assert_eq!(count(&opt, "all_reduce_wait"), 6);
    let func = &opt.functions[0];
    for l in 0..3 {
        // AR(attn_l) runs during MLP_l.
        let (start, wait) = start_and_wait(func, &format!("l{l}.attn_reduced"));
        let mlp = position(func, &format!("l{l}.mlp_in"));
        assert!(
            start < mlp && mlp < wait,
            "layer {l}: attention AR does not overlap the MLP"
        );
        // AR(mlp_l) runs during attention l+1.
        if l < 2 {
            let (start, wait) = start_and_wait(func, &format!("l{l}.mlp_reduced"));
            let attn = position(func, &format!("l{}.attn", l + 1));
            assert!(
                start < attn && attn < wait,
                "layer {l}: MLP AR does not overlap attention {}",
                l + 1
            );
        }
    }
    assert_same_outputs(&model, &opt, 31, TOL);
}

#[test]
fn standard_residual_gets_no_invented_overlap() {
    // In the standard form every module reads the reduced sum, so no run-time
    // instruction can run between a start and its wait: whatever the scheduler
    // places there reads only params (the merged weights' concats, folded into
    // packed weights before lowering). The dataflow (and outputs) stay the same.
    let model = tensor_parallel(false);
    let (opt, report) = run(&model, OptLevel::O2);
    assert_eq!(fired(&report, "split-all-reduce"), 6, "{report}");
    let func = &opt.functions[0];
    for l in 0..3 {
        for module in ["attn", "mlp"] {
            let (start, wait) = start_and_wait(func, &format!("l{l}.{module}_reduced"));
            for instr in &func.body[start + 1..wait] {
                assert!(
                    instr
                        .operands
                        .iter()
                        .all(|o| matches!(o, Operand::Param(_))),
                    "layer {l} {module}: `{}` runs between start and wait",
                    instr.op
                );
            }
        }
    }
    assert_same_outputs(&model, &opt, 32, TOL);
}

#[test]
fn split_all_reduce_does_not_run_at_o1() {
    let model = tensor_parallel(true);
    let (opt, report) = run(&model, OptLevel::O1);
    assert_eq!(fired(&report, "split-all-reduce"), 0, "{report}");
    assert_eq!(count(&opt, "all_reduce"), 6);
    assert_eq!(count(&opt, "all_reduce_start"), 0);
}

#[test]
fn scheduling_leaves_bodies_without_waits_alone() {
    let model = util::parse(include_str!("../../examples/pregated_topk.seam"));
    assert_eq!(schedule_comm(&model.functions[0]), model.functions[0]);
}
