//! The example model families build and verify, with the routing structure each promises.

use seam_frontends::examples::{mixtral_tiny, pregated_topk, readme_moe};
use seam_ir::{Op, Operand};

fn count(model: &seam_ir::Model, name: &str) -> usize {
    model.functions[0]
        .body
        .iter()
        .filter(|i| i.op.name() == name)
        .count()
}

#[test]
fn readme_moe_has_one_shared_top1_decision_used_by_every_layer() {
    let m = readme_moe().build().unwrap();
    assert_eq!(count(&m, "route"), 1);
    assert_eq!(count(&m, "moe"), 4);
    let f = &m.functions[0];
    let route = f.body.iter().find(|i| i.op.name() == "route").unwrap();
    assert!(matches!(route.op, Op::Route { k: 1, .. }));
    for moe in f.body.iter().filter(|i| i.op.name() == "moe") {
        assert_eq!(moe.operands[1], Operand::Value(route.results[0]));
        assert_eq!(moe.operands[2], Operand::Value(route.results[1]));
        assert_eq!(moe.operands.len(), 9, "shared expert present");
    }
}

#[test]
fn pregated_topk_has_one_top2_decision_per_layer() {
    let m = pregated_topk().build().unwrap();
    assert_eq!(count(&m, "route"), 4);
    assert_eq!(count(&m, "moe"), 4);
}

#[test]
fn mixtral_routes_inside_each_layer() {
    let m = mixtral_tiny().build().unwrap();
    assert_eq!(count(&m, "route"), 4);
    assert!(m.params.iter().all(|p| !p.name.starts_with("router.")));
    assert!(m.param_by_name("layers.3.router").is_some());
}
