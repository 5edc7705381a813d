//! Pool states compile to in-place updates at every optimisation level: the
//! optimizer keeps `write_rows` and `pooled_attention`, each `write_rows`
//! dispatch writes straight into its state's buffer (no copy of the pool), the
//! attention reads those buffers, and the entry binds no length dim.

use seam_compiler::compile::{compile, CompileOptions};
use seam_compiler::lower::Target;
use seam_compiler::optimize::OptLevel;
use seam_ir::{random_weights, text};

const SERVE: &str = "model m
dim tokens <= 8
param wq: f32[16, 16]
func serve(%x: f32[tokens, 16], %kv: f32[tokens, 2, 8], %slot: i32[tokens], %pos: i32[tokens], state %kp: f32[3, 8, 2, 8], state %vp: f32[3, 8, 2, 8]) -> (f32[tokens, 2, 8], state f32[3, 8, 2, 8], state f32[3, 8, 2, 8]) {
  %k2 = write_rows(%kp, %slot, %pos, %kv) : f32[3, 8, 2, 8]
  %v2 = write_rows(%vp, %slot, %pos, %kv) : f32[3, 8, 2, 8]
  %qf = matmul(%x, @wq) : f32[tokens, 16]
  %q = reshape(%qf) : f32[tokens, 2, 8]
  %a = pooled_attention(%q, %k2, %v2, %slot, %pos) : f32[tokens, 2, 8]
  return %a, %k2, %v2
}
";

#[test]
fn pool_states_are_written_in_place_at_every_level() {
    let (model, _) = text::parse_and_verify("m.seam", SERVE).unwrap();
    let weights = random_weights(&model, 1);
    for level in [OptLevel::O0, OptLevel::O2] {
        let options = CompileOptions::new(Target::lavapipe(), level);
        let compiled = compile(&model, &weights, &options).unwrap();
        assert_eq!(compiled.optimized.is_some(), level == OptLevel::O2);
        if let Some(opt) = &compiled.optimized {
            let count = |op: &str| {
                opt.functions[0]
                    .body
                    .iter()
                    .filter(|i| i.op.name() == op)
                    .count()
            };
            assert_eq!(count("write_rows"), 2, "-O{level}");
            assert_eq!(count("pooled_attention"), 1, "-O{level}");
        }
        let m = &compiled.bundle.manifest;
        let entry = &m.entry_points[0];
        assert_eq!(entry.state_length, None, "-O{level}: pools bind no length");
        assert_eq!(entry.states.len(), 2);
        let state_buffers: Vec<u32> = entry
            .states
            .iter()
            .map(|&s| m.states[s as usize].buffer)
            .collect();
        let kernel = |d: &seam_bundle::Dispatch| m.kernels[d.kernel as usize].kernel.name.clone();
        let names: Vec<String> = entry.dispatches.iter().map(kernel).collect();
        let writes: Vec<u32> = entry
            .dispatches
            .iter()
            .filter(|d| kernel(d).starts_with("write_rows"))
            .map(|d| d.buffers[3].buffer)
            .collect();
        assert_eq!(writes, state_buffers, "-O{level}: {names:?}");
        assert!(
            !names.iter().any(|n| n.starts_with("slice")),
            "-O{level}: a pool was copied: {names:?}"
        );
        let attention = entry
            .dispatches
            .iter()
            .find(|d| kernel(d).starts_with("pooled_attention"))
            .unwrap_or_else(|| panic!("-O{level}: no pooled_attention in {names:?}"));
        let read: Vec<u32> = attention.buffers[1..3].iter().map(|b| b.buffer).collect();
        assert_eq!(read, state_buffers, "-O{level}");
    }
}
