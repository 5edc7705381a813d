//! `seam check --tensor-parallel N`: the shard set of a text model (random
//! weights) and of an HF checkpoint, evaluated on all ranks together, equals
//! the model; shapes that do not divide are refused by name.

#[path = "support/cli.rs"]
mod cli;
use cli::{seam, stderr};

fn example(name: &str) -> String {
    format!("{}/../examples/{name}.seam", env!("CARGO_MANIFEST_DIR"))
}

/// The differences printed, one per function.
fn differences(out: &str) -> Vec<f32> {
    out.lines()
        .filter_map(|l| l.split("max relative difference ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn ladder_residual_shards_exactly() {
    for ranks in ["2", "4"] {
        let o = seam(&[
            "check",
            &example("ladder_residual"),
            "--tensor-parallel",
            ranks,
            "--random-weights",
            "5",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains(&format!("tensor parallel over {ranks} rank(s): ok")),
            "{out}"
        );
        let last = format!("rank {}: ", ranks.parse::<usize>().unwrap() - 1);
        assert!(out.contains(&last), "{out}");
        let d = differences(&out);
        assert_eq!(d.len(), 1, "{out}");
        assert!(d[0] <= 1e-4, "{out}");
    }
}

#[test]
fn hf_checkpoint_shards_exactly() {
    let dir = format!("{}/../tests/fixtures/hf/llama", env!("CARGO_MANIFEST_DIR"));
    let o = seam(&["check", &dir, "--tensor-parallel", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let d = differences(&out);
    assert!(d.len() == 1 && d[0] <= 1e-4, "{out}");
}

#[test]
fn shapes_that_do_not_divide_are_refused_by_name() {
    let o = seam(&[
        "check",
        &example("ladder_residual"),
        "--tensor-parallel",
        "3",
        "--random-weights",
        "5",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("4 query heads of `@layers.0.wq` over 3 ranks"),
        "{err}"
    );
}

#[test]
fn a_text_model_needs_a_seed() {
    let o = seam(&[
        "check",
        &example("ladder_residual"),
        "--tensor-parallel",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).contains("--random-weights"));
}
