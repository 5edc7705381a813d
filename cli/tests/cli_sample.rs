//! `seam sample` end to end on the DDT example: a shared-encoder sample equal
//! to the reference evaluator's, and bad schedules refused as usage errors.

#[path = "support/cli.rs"]
mod cli;
use cli::{scratch, seam, text};

/// Compiles `examples/ddt.seam` into `dir/ddt.seamb` and returns its path.
fn compiled(dir: &std::path::Path) -> String {
    let model = format!("{}/../examples/ddt.seam", env!("CARGO_MANIFEST_DIR"));
    let out = dir.join("ddt.seamb").display().to_string();
    let args = [
        "compile",
        &model,
        "-o",
        &out,
        "--random-weights",
        "7",
        "--target",
        "lavapipe",
        "--force",
    ];
    let o = seam(&args);
    assert!(o.status.success(), "{}", text(&o));
    out
}

#[test]
fn sample_with_sharing_matches_the_reference_and_bad_schedules_are_refused() {
    let d = scratch("sample");
    let bundle = compiled(&d);
    let o = seam(&["inspect", &bundle]);
    assert!(
        text(&o).contains("cache `enc` (recomputed every 2 calls by default)"),
        "{}",
        text(&o)
    );
    let npy = d.join("x.npy").display().to_string();
    let o = seam(&[
        "sample",
        &bundle,
        "--steps",
        "4",
        "--share-schedule",
        "list:0,3",
        "--check-reference",
        "--out",
        &npy,
        "--force",
    ]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("2 computing the caches, 2 reusing them"),
        "{out}"
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("check-reference"))
        .unwrap();
    let num = |after: &str| -> f32 {
        let rest = &line[line.find(after).unwrap() + after.len()..];
        rest.split([' ', ')']).next().unwrap().parse().unwrap()
    };
    let (err, scale) = (num("max abs error "), num("max |reference| "));
    assert!(err <= 1e-4 * scale.max(1.0), "{line}");
    assert!(std::path::Path::new(&npy).exists());

    for (schedule, message) in [
        ("list:1,2", "must recompute at step 0"),
        ("list:0,4", "out of range for 4 steps"),
        ("list:0,2,2", "strictly increasing"),
        ("uniform:0", "bad share schedule"),
        ("every:2", "bad share schedule"),
    ] {
        let o = seam(&[
            "sample",
            &bundle,
            "--steps",
            "4",
            "--share-schedule",
            schedule,
        ]);
        assert_eq!(o.status.code(), Some(2), "{schedule}: {}", text(&o));
        assert!(text(&o).contains(message), "{schedule}: {}", text(&o));
    }
    let o = seam(&["sample", &bundle, "--steps", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // ddt_tiny has 10 classes: labels are checked as `seam run` checks ids.
    for label in ["10", "-1"] {
        let flag = format!("--label={label}");
        let o = seam(&["sample", &bundle, "--steps", "2", &flag]);
        assert_eq!(o.status.code(), Some(1), "--label {label}: {}", text(&o));
        assert!(
            text(&o).contains(&format!("--label {label} is outside 0..10")),
            "--label {label}: {}",
            text(&o)
        );
    }
}
