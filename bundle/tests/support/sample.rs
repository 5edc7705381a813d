//! A small valid bundle — one dim, one weight, one kernel with two
//! bindings, two buffers, an entry point with one dispatch and a tokenizer —
//! shared by the bundle format tests and the fuzz crate's structure-aware
//! target (`fuzz/src/bundle.rs` includes this file by path).

use seam_bundle::{
    BufferEntry, BufferRange, BufferRole, BundleWriter, DimBound, Dispatch, EntryPoint, IoEntry,
    Manifest,
};
use seam_core::{Access, BindingDesc, DType, Dim, Grid, Kernel, SizeDesc, SizeExpr};

/// The sample kernel's WGSL.
const SOURCE: &str = "@compute @workgroup_size(64) fn main() {}";

/// The sample kernel: a copy over `n` elements.
pub fn sample_kernel() -> Kernel {
    Kernel {
        name: "copy".into(),
        wgsl: SOURCE.into(),
        entry_point: "main".into(),
        workgroup_size: [64, 1, 1],
        bindings: vec![
            BindingDesc {
                binding: 0,
                name: "x".into(),
                access: Access::ReadWrite,
            },
            BindingDesc {
                binding: 1,
                name: "params".into(),
                access: Access::Uniform,
            },
        ],
        sizes: vec![SizeDesc {
            name: "n".into(),
            dim: Dim::Dynamic,
        }],
        grid: Grid::linear(&["n"], 64),
        indexing_proven: false,
    }
}

/// A writer holding the sample bundle.
pub fn sample_writer() -> BundleWriter {
    let manifest = Manifest {
        dims: vec![DimBound {
            name: "tokens".into(),
            max: 64,
        }],
        ..Manifest::new("sample", "sample")
    };
    let mut w = BundleWriter::new(manifest);
    let weight: Vec<u8> = (0..4 * 12).map(|i| i as u8).collect();
    let wi = w.add_weight("w", DType::F32, vec![3, 4], &weight);
    let ki = w.add_kernel(&sample_kernel());
    let act = SizeExpr::Mul(vec![SizeExpr::Dim("tokens".into()), SizeExpr::Const(16)]);
    w.manifest.buffers = vec![
        BufferEntry {
            name: "w".into(),
            bytes: SizeExpr::Const(48),
            role: BufferRole::Weight(wi),
        },
        BufferEntry {
            name: "x".into(),
            bytes: act.clone(),
            role: BufferRole::Activation,
        },
    ];
    w.manifest.entry_points = vec![EntryPoint {
        name: "forward".into(),
        inputs: vec![IoEntry {
            name: "x".into(),
            dtype: DType::F32,
            shape: vec![SizeExpr::Dim("tokens".into()), SizeExpr::Const(4)],
            buffer: 1,
        }],
        outputs: vec![],
        dispatches: vec![Dispatch {
            kernel: ki,
            buffers: vec![BufferRange {
                buffer: 1,
                offset: 0,
                size: None,
            }],
            sizes: vec![("n".into(), act)],
            cache: None,
        }],
        states: Vec::new(),
        state_length: None,
        expert_layers: Vec::new(),
        collectives: Vec::new(),
    }];
    w
}
