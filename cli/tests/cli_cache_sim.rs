//! `seam trace-gen` and `seam cache-sim`: the output lines, hand-counted hits,
//! and clear errors (with line numbers) on bad traces and arguments.

use std::path::Path;
use std::process::Output;

#[path = "support/cli.rs"]
mod cli;
use cli::{scratch, seam, stderr};

/// Writes `text` to `dir/name`, returning the path.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// A trace of layer 0 with these experts, one step each.
fn layer0_trace(experts: &[u32]) -> String {
    experts
        .iter()
        .enumerate()
        .map(|(step, e)| {
            format!("{{\"step\": {step}, \"seq\": 0, \"layer\": 0, \"expert\": {e}}}\n")
        })
        .collect()
}

/// `seam cache-sim` on `trace` with these capacities and policies.
fn simulate(trace: &str, capacity: &str, policy: &str) -> Output {
    seam(&[
        "cache-sim",
        "--trace",
        trace,
        "--capacity",
        capacity,
        "--policy",
        policy,
    ])
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts that `line` (of `all`) starts with `prefix`.
fn assert_starts(line: &str, prefix: &str, all: &str) {
    assert!(line.starts_with(prefix), "expected `{prefix}…` in: {all}");
}

fn assert_error(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn prints_one_line_per_policy_and_capacity() {
    let d = scratch("sim-lines");
    // The textbook reference string: with 3 slots OPT hits 11 of 20, LRU 8.
    let classic = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];
    let trace = write(&d, "classic.jsonl", &layer0_trace(&classic));
    let o = simulate(&trace, "3", "lru,belady");
    assert_eq!(
        stdout(&o),
        "policy=lru capacity=3 accesses=20 hits=8 hit_ratio=0.4000\n\
         policy=belady capacity=3 accesses=20 hits=11 hit_ratio=0.5500\n"
    );
    let o = seam(&["cache-sim", "--trace", &trace, "--capacity", "2,3"]);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert_starts(lines[0], "policy=lru capacity=2 accesses=20 hits=", &out);
    assert_starts(
        lines[5],
        "policy=lookahead capacity=3 accesses=20 hits=",
        &out,
    );
    assert!(lines[5].contains(" prefetches="), "{out}");
    assert!(!lines[3].contains("prefetches"), "{out}");
}

#[test]
fn simulates_a_generated_trace_with_belady_never_below_lru() {
    let d = scratch("sim-gen");
    let trace = d.join("t.jsonl").display().to_string();
    let gen = [
        "trace-gen",
        "--out",
        &trace,
        "--layers",
        "2",
        "--sequences",
        "3",
    ];
    let o = seam(
        &[
            &gen[..],
            &["--tokens", "50", "--zipf", "1.2", "--seed", "3"],
        ]
        .concat(),
    );
    assert!(stdout(&o).contains("wrote 300 accesses"));
    let o = seam(&["trace-gen", "--out", &trace]);
    assert_error(&o, 1, "--force");
    let o = simulate(&trace, "2,4", "lru,belady");
    let out = stdout(&o);
    let hits: Vec<u64> = out
        .lines()
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("hits=")))
        .map(|h| h.parse().unwrap())
        .collect();
    assert_eq!(hits.len(), 4, "{out}");
    assert!(hits[2] >= hits[0] && hits[3] >= hits[1], "{out}");
}

#[test]
fn bad_traces_name_the_line() {
    let d = scratch("sim-bad");
    let good = "{\"step\": 0, \"seq\": 0, \"layer\": 0, \"expert\": 1}\n";
    let cases = [
        (
            "malformed",
            "{\"step\": 0, \"seq\": 0,\n",
            ":2: EOF while parsing",
        ),
        ("not-json", "step=0\n", ":2: expected value"),
        (
            "missing",
            "{\"step\": 0, \"seq\": 0, \"layer\": 0}\n",
            ":2: missing field `expert`",
        ),
        (
            "negative",
            "{\"step\": 0, \"seq\": 0, \"layer\": -1, \"expert\": 0}\n",
            ":2: invalid value: integer `-1`",
        ),
        (
            "huge",
            "{\"step\": 0, \"seq\": 0, \"layer\": 0, \"expert\": 99999999999}\n",
            ":2: invalid value: integer `99999999999`",
        ),
        (
            "float",
            "{\"step\": 0.5, \"seq\": 0, \"layer\": 0, \"expert\": 0}\n",
            ":2: invalid type: floating point",
        ),
        (
            "layer",
            "{\"step\": 0, \"seq\": 0, \"layer\": 5000, \"expert\": 0}\n",
            ":2: layer 5000 is not below 4096",
        ),
        (
            "expert",
            "{\"step\": 0, \"seq\": 0, \"layer\": 0, \"expert\": 70000}\n",
            ":2: expert 70000 is not below 65536",
        ),
        (
            "extra",
            "{\"step\": 0, \"seq\": 0, \"layer\": 0, \"expert\": 0, \"x\": 1}\n",
            ":2: unknown field `x`",
        ),
        (
            "long",
            &format!("{}\n", " ".repeat(2000) + "{}"),
            ":2: the line is longer than 1024 bytes",
        ),
    ];
    for (name, line, needle) in cases {
        let trace = write(&d, &format!("{name}.jsonl"), &format!("{good}{line}"));
        let o = seam(&["cache-sim", "--trace", &trace, "--capacity", "2"]);
        assert_error(&o, 1, &format!("{name}.jsonl{needle}"));
    }
    let o = seam(&[
        "cache-sim",
        "--trace",
        &write(&d, "empty.jsonl", "\n\n"),
        "--capacity",
        "2",
    ]);
    assert_error(&o, 1, "holds no access");
    let missing = d.join("absent.jsonl").display().to_string();
    let o = seam(&["cache-sim", "--trace", &missing, "--capacity", "2"]);
    assert_error(&o, 1, "cannot read trace");
    let binary = d.join("binary.jsonl");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, b'\n']).unwrap();
    let o = seam(&[
        "cache-sim",
        "--trace",
        binary.to_str().unwrap(),
        "--capacity",
        "2",
    ]);
    assert_error(&o, 1, "binary.jsonl:1:");
}

#[test]
fn bad_arguments_are_usage_errors() {
    let d = scratch("sim-args");
    let trace = write(&d, "t.jsonl", &layer0_trace(&[1, 2]));
    let o = seam(&["cache-sim", "--trace", &trace, "--capacity", "0"]);
    assert_error(&o, 2, "0 is not in 1..=1024");
    let o = simulate(&trace, "2", "fifo");
    assert_error(
        &o,
        2,
        "unknown cache policy `fifo` (expected one of: lru, belady, lookahead)",
    );
    let o = seam(&["cache-sim", "--trace", &trace]);
    assert_error(&o, 2, "--capacity");
    let o = seam(&[
        "cache-sim",
        "--trace",
        &trace,
        "--capacity",
        "2",
        "--prefetch-window",
        "5000",
    ]);
    assert_error(&o, 2, "5000 is not in 0..=4096");
    let out = d.join("g.jsonl").display().to_string();
    for (flag, value, needle) in [
        ("--locality", "1.5", "--locality must be a probability"),
        ("--zipf", "-1", "--zipf must be a finite number"),
        ("--zipf", "NaN", "--zipf must be a finite number"),
        ("--experts", "0", "--experts must be in"),
        ("--tokens", "0", "accesses; give between 1 and"),
    ] {
        let o = seam(&["trace-gen", "--out", &out, &format!("{flag}={value}")]);
        assert_error(&o, 2, needle);
    }
}

#[test]
fn records_a_trace_from_a_pregated_router() {
    let d = scratch("sim-record");
    let model = format!(
        "{}/../examples/pregated_topk.seam",
        env!("CARGO_MANIFEST_DIR")
    );
    let trace = d.join("r.jsonl").display().to_string();
    let record = [
        "trace-record",
        &model,
        "--random-weights",
        "1",
        "--out",
        &trace,
    ];
    let o = seam(&[&record[..], &["--sequences", "2", "--tokens", "3"]].concat());
    // 2 sequences × 3 tokens × 4 layers × top-2.
    assert!(stdout(&o).contains("wrote 48 accesses"));
    let text = std::fs::read_to_string(&trace).unwrap();
    let first: Vec<&str> = text.lines().take(3).collect();
    assert_starts(first[0], "{\"step\":0,\"seq\":0,\"layer\":0,", &text);
    assert_starts(first[1], "{\"step\":0,\"seq\":0,\"layer\":0,", &text);
    assert_starts(first[2], "{\"step\":0,\"seq\":0,\"layer\":1,", &text);
    let o = simulate(&trace, "2", "belady");
    assert!(stdout(&o).starts_with("policy=belady capacity=2 accesses=48 hits="));
    let dense = format!(
        "{}/../examples/ladder_residual.seam",
        env!("CARGO_MANIFEST_DIR")
    );
    let o = seam(&[
        "trace-record",
        &dense,
        "--random-weights",
        "1",
        "--out",
        &trace,
        "--force",
    ]);
    assert_error(&o, 2, "cannot record `forward`: it has no `route` op");
    let o = seam(&["trace-record", &model, "--out", &trace, "--force"]);
    assert_error(&o, 2, "--random-weights");
    let o = seam(&[&record[..], &["--tokens", "4096", "--force"]].concat());
    assert_error(&o, 1, "tokens");
    let o = seam(&[&record[..], &["--tokens", "0", "--force"]].concat());
    assert_error(&o, 2, "0 is not in 1..=65536");
    // 4096 prompts × 320 tokens × 4 layers × top-2 = 10.5M accesses: refused
    // after the first prompt, before the others are evaluated.
    let many = ["--sequences", "4096", "--tokens", "320", "--force"];
    let o = seam(&[&record[..], &many[..]].concat());
    assert_error(
        &o,
        2,
        "4096 prompts of 2560 expert choices each = 10485760 accesses",
    );
}
