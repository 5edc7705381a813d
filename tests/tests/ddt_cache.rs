//! The `cache` op end to end without a device: which dispatches a reuse
//! skips after optimization, and the bundle checks on caches.

use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::lower::Target;
use seam_compiler::optimize::OptLevel;
use seam_frontends::examples::ddt_tiny;
use seam_ir::{random_weights, text, Model};
use seam_runtime::bundle::{BundleReader, Manifest};

/// `z = cache(silu(x)·w)`, and the decoder reads `silu(x)` too: at -O2 the
/// e-graph computes `silu(x)` once, so that dispatch must run on every call;
/// only the matmul feeding the cache (and the copy) may be skipped.
const SHARED: &str = r#"
model shared
param w: f32[8, 8]
func forward(%x: f32[4, 8]) -> (f32[4, 8]) {
  %a = silu(%x) : f32[4, 8]
  %e = matmul(%a, @w) : f32[4, 8]
  %z = cache(%e, key="enc", refresh=2) : f32[4, 8]
  %b = silu(%x) : f32[4, 8]
  %y = add(%z, %b) : f32[4, 8]
  return %y
}
"#;

fn manifest(model: &Model, opt: OptLevel) -> Manifest {
    let weights = random_weights(model, 3);
    let bundle = compile(
        model,
        &weights,
        &CompileOptions::new(Target::lavapipe(), opt),
    )
    .unwrap()
    .bundle;
    BundleReader::from_bytes(bundle.to_bytes().unwrap())
        .unwrap()
        .manifest()
        .clone()
}

fn kernel_names(m: &Manifest, cached: bool) -> Vec<String> {
    m.entry_points[0]
        .dispatches
        .iter()
        .filter(|d| d.cache.is_some() == cached)
        .map(|d| m.kernels[d.kernel as usize].kernel.name.clone())
        .collect()
}

#[test]
fn shared_work_is_never_skipped() {
    let (model, _) = text::parse_and_verify("shared", SHARED).unwrap();
    for opt in [OptLevel::O0, OptLevel::O2] {
        let m = manifest(&model, opt);
        assert_eq!(m.caches.len(), 1);
        let skipped = kernel_names(&m, true);
        let always = kernel_names(&m, false);
        println!("-O{opt}: skipped {skipped:?}, always {always:?}");
        // -O0 keeps two `silu`s, one the cache's alone; -O2 computes it once,
        // shared with the decoder, so that dispatch must run on every call.
        let silus = |names: &[String]| names.iter().filter(|k| k.contains("silu")).count();
        let (skipped_silu, always_silu) = match opt {
            OptLevel::O0 => (1, 1),
            _ => (0, 1),
        };
        assert_eq!(silus(&skipped), skipped_silu, "{skipped:?}");
        assert_eq!(silus(&always), always_silu, "{always:?}");
        assert!(skipped.iter().any(|k| k.contains("matmul")), "{skipped:?}");
        assert!(skipped.iter().any(|k| k == "cache"), "{skipped:?}");
        assert!(!always.iter().any(|k| k.contains("matmul")), "{always:?}");
    }
}

#[test]
fn ddt_reuse_skips_the_encoder() {
    let model = ddt_tiny().build().unwrap();
    for opt in [OptLevel::O0, OptLevel::O2] {
        let m = manifest(&model, opt);
        let (skipped, always) = (kernel_names(&m, true).len(), kernel_names(&m, false).len());
        println!(
            "ddt -O{opt}: {} dispatches computing z, {always} reusing it",
            skipped + always
        );
        assert!(skipped > always, "the encoder is the larger stack");
    }
}

#[test]
fn duplicate_and_empty_cache_keys_are_refused() {
    let twice = SHARED.replace(
        "%y = add(%z, %b)",
        "%z2 = cache(%b, key=\"enc\") : f32[4, 8]\n  %y = add(%z, %z2)",
    );
    let empty = SHARED.replace("key=\"enc\"", "key=\"\"");
    for src in [twice, empty] {
        let (model, _) = text::parse_and_verify("keys", &src).unwrap();
        let weights = random_weights(&model, 3);
        let options = CompileOptions::new(Target::lavapipe(), OptLevel::O0);
        let err = compile(&model, &weights, &options)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("empty or used twice"), "{err}");
    }
}
