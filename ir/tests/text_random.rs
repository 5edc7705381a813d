//! Round trips of seeded random well-typed models through the text format.

#[path = "support/random_graph.rs"]
mod random_graph;

use std::collections::HashSet;

use random_graph::{ops_used, random_model, random_model_with, Config};
use seam_ir::op::op_names;
use seam_ir::text::{parse, parse_and_verify, print};
use seam_ir::verify;

const SEEDS: u64 = 300;

#[test]
fn random_models_round_trip() {
    for seed in 0..SEEDS {
        let m = random_model(seed);
        verify(&m).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let printed = print(&m);
        let (m2, map) = parse(&printed).unwrap_or_else(|e| {
            let d = seam_ir::text::Diagnostic::from_parse_error("random.seam", &printed, &e);
            panic!("seed {seed}: {}\n{printed}", d.render(false))
        });
        assert_eq!(m2, m, "seed {seed}: parse(print(m)) != m\n{printed}");
        assert_eq!(print(&m2), printed, "seed {seed}: printing is not stable");
        // The source map covers every instruction of every function.
        assert_eq!(
            (0..m.functions.len())
                .map(|fi| map
                    .span(seam_ir::Location::Instr {
                        func: fi,
                        instr: m.functions[fi].body.len().saturating_sub(1)
                    })
                    .is_some()
                    || m.functions[fi].body.is_empty())
                .filter(|ok| !ok)
                .count(),
            0
        );
        parse_and_verify("random.seam", &printed).unwrap_or_else(|d| panic!("seed {seed}: {d}"));
    }
}

#[test]
fn generator_is_deterministic_and_varied() {
    assert_eq!(random_model(42), random_model(42));
    assert_eq!(print(&random_model(7)), print(&random_model(7)));
    let distinct: HashSet<String> = (0..20).map(|s| print(&random_model(s))).collect();
    assert_eq!(distinct.len(), 20);
}

#[test]
fn generator_covers_every_op_and_feature() {
    let mut used = HashSet::new();
    let (mut f16, mut scalars, mut sym, mut multi_fn, mut digit_names) =
        (false, false, false, false, false);
    for seed in 0..SEEDS {
        let m = random_model(seed);
        used.extend(ops_used(&m));
        multi_fn |= m.functions.len() > 1;
        digit_names |= m
            .params
            .iter()
            .any(|p| p.name.starts_with(|c: char| c.is_ascii_digit()));
        for f in &m.functions {
            for v in &f.values {
                f16 |= v.ty.dtype == seam_ir::DType::F16;
                scalars |= v.ty.rank() == 0;
                sym |= !v.ty.shape.is_static();
            }
        }
    }
    let all: HashSet<&str> = op_names().into_iter().collect();
    let missing: Vec<_> = all.difference(&used).collect();
    assert!(missing.is_empty(), "ops never generated: {missing:?}");
    assert!(f16 && scalars && sym && multi_fn && digit_names);
}

#[test]
fn generator_config_is_respected() {
    let cfg = Config {
        max_functions: 1,
        max_steps: 40,
        f16: false,
    };
    for seed in 0..20 {
        let m = random_model_with(seed, &cfg);
        assert_eq!(m.functions.len(), 1);
        assert!(m.functions[0]
            .values
            .iter()
            .all(|v| v.ty.dtype != seam_ir::DType::F16));
        assert_eq!(parse(&print(&m)).unwrap().0, m);
    }
}
