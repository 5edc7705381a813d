//! `--resident-experts`, `--cache-policy` and `--routing-trace` on the
//! command line: offloaded generation prints the all-resident tokens and an
//! expert line, the recorded trace has one line per (token, layer, choice)
//! and replays through `seam cache-sim`, and misuse gets clear errors.

#[path = "support/cli.rs"]
mod cli;
use cli::{scratch, seam, stderr, text};

/// The `generated:` line of `seam generate` output.
fn generated(out: &str) -> &str {
    out.lines().find(|l| l.starts_with("generated:")).unwrap()
}

#[test]
fn offloaded_generation_matches_and_its_trace_replays() {
    let dir = scratch("experts_offload");
    let bundle = dir.join("pregated.seamb").display().to_string();
    let out = seam(&[
        "compile",
        "../examples/pregated_topk_kv.seam",
        "-o",
        &bundle,
        "--random-weights",
        "3",
        "--max-seq-len",
        "64",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let generate = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            &bundle,
            "--prompt-ids",
            "1,2,3,4,5,6,7,8",
            "--max-new-tokens",
            "16",
        ];
        args.extend_from_slice(extra);
        let out = seam(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        text(&out)
    };
    let all = generate(&[]);
    let trace = dir.join("routing.jsonl").display().to_string();
    let offloaded = generate(&[
        "--resident-experts",
        "2",
        "--cache-policy",
        "belady",
        "--routing-trace",
        &trace,
    ]);
    assert_eq!(generated(&all), generated(&offloaded));
    assert!(!all.contains("experts:"), "{all}");
    let line = offloaded
        .lines()
        .find(|l| l.starts_with("experts:"))
        .unwrap();
    assert!(
        line.contains("2 resident per layer, policy belady"),
        "{line}"
    );
    // 8 prompt tokens and 15 decoded ones fed, 4 MoE layers, top-2.
    let written = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(written.lines().count(), (8 + 15) * 4 * 2, "{written}");
    let sim = seam(&[
        "cache-sim",
        "--trace",
        &trace,
        "--capacity",
        "2",
        "--policy",
        "lru,belady",
    ]);
    assert!(sim.status.success(), "{}", stderr(&sim));
    assert!(
        text(&sim).contains("policy=belady capacity=2 accesses=184"),
        "{}",
        text(&sim)
    );
    // The trace is not overwritten without --force.
    let again = seam(&[
        "generate",
        &bundle,
        "--prompt-ids",
        "1,2",
        "--routing-trace",
        &trace,
    ]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
}

#[test]
fn misuse_is_refused_clearly() {
    let out = seam(&[
        "generate",
        "../examples/pregated_topk_kv.seam",
        "--prompt-ids",
        "1",
        "--cache-policy",
        "fifo",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown cache policy `fifo`"),
        "{}",
        stderr(&out)
    );
}
