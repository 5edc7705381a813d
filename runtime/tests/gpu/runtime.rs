//! The device layer itself: adapters, errors as values, batches, replay with new sizes.

use seam_runtime::device::list_adapters;
use seam_runtime::Error;
use seam_shaders::{matmul, Access, BindingDesc, Dim, Grid, GridDim, Kernel, MatmulConfig};

use crate::common::*;

#[test]
fn adapters_and_limits() {
    let all = list_adapters(seam_runtime::device::wgpu::Backends::all());
    assert!(
        all.iter()
            .any(|a| a.backend == seam_runtime::device::wgpu::Backend::Vulkan),
        "{all:?}"
    );
    let lim = limits();
    assert!(lim.max_storage_buffer_binding_size >= 128 << 20);
    assert!(lim.max_invocations_per_workgroup >= 256);
    assert_eq!(
        gpu().adapter().backend,
        seam_runtime::device::wgpu::Backend::Vulkan
    );
}

#[test]
fn errors_are_values() {
    let g = gpu();
    // Too large a buffer.
    let huge = g.limits().max_buffer_size + 1;
    assert!(matches!(
        g.create_buffer("huge", huge),
        Err(Error::Buffer { .. })
    ));
    // Reading past the end.
    let b = up(&[1.0f32, 2.0]);
    assert!(matches!(
        g.read_range::<f32>(&b, 0, 100),
        Err(Error::Readback { .. })
    ));
    // Invalid WGSL reaches wgpu's validation and comes back as an error.
    let bad = Kernel {
        name: "bad".into(),
        wgsl: "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }".into(),
        entry_point: "main".into(),
        workgroup_size: [1, 1, 1],
        bindings: vec![],
        sizes: vec![],
        grid: Grid::xyz(GridDim::one(), GridDim::one(), GridDim::one()),
        indexing_proven: true,
    };
    assert!(
        matches!(g.pipeline(&bad), Err(Error::Validation { .. })),
        "{:?}",
        g.pipeline(&bad).err()
    );
    // A binding the shader does not declare.
    let mut lying = bad.clone();
    lying.wgsl = "@compute @workgroup_size(1) fn main() {}".into();
    lying.bindings = vec![BindingDesc {
        binding: 0,
        name: "x".into(),
        access: Access::ReadOnly,
    }];
    let p = g.pipeline(&lying);
    assert!(p.is_ok(), "an unused binding in the layout is allowed");
    // Wrong buffer count, missing size, misaligned sub-range.
    let k = matmul(&MatmulConfig::new(
        Dim::Dynamic,
        Dim::Dynamic,
        Dim::Dynamic,
        &limits(),
    ))
    .unwrap();
    let p = pipeline(&k);
    let o = out(4);
    let mut batch = g.batch();
    assert!(matches!(
        batch.dispatch(&p, &[b.view(), o.view()], &[("m", 1), ("n", 1), ("k", 1)]),
        Err(Error::Binding { .. })
    ));
    assert!(matches!(
        batch.dispatch(&p, &[b.view(), b.view(), o.view()], &[("m", 1), ("n", 1)]),
        Err(Error::Launch(seam_core::LaunchError::MissingSize { .. }))
    ));
    let big = out(256);
    assert!(matches!(
        batch.dispatch(
            &p,
            &[big.slice(4, 8), b.view(), o.view()],
            &[("m", 1), ("n", 1), ("k", 1)]
        ),
        Err(Error::Binding { .. })
    ));
    assert!(batch.is_empty());
    // The device is still usable afterwards.
    g.check().unwrap();
}

/// A binding-less kernel with `wgsl` as its source and a constant grid.
fn bare_kernel(wgsl: &str, grid: [u32; 3]) -> Kernel {
    let axis = |n| GridDim {
        terms: vec![seam_shaders::GridTerm::Const(n)],
        divisor: 1,
    };
    Kernel {
        name: "bare".into(),
        wgsl: wgsl.into(),
        entry_point: "main".into(),
        workgroup_size: [1, 1, 1],
        bindings: vec![],
        sizes: vec![],
        grid: Grid::xyz(axis(grid[0]), axis(grid[1]), axis(grid[2])),
        indexing_proven: true,
    }
}

#[test]
fn workgroup_memory_over_the_device_limit_is_refused_before_pipeline_creation() {
    let g = gpu();
    let k = bare_kernel(
        "var<workgroup> big: array<f32, 16777216>;\n\
         @compute @workgroup_size(1) fn main() { big[0] = 1.0; }",
        [1, 1, 1],
    );
    assert!(
        matches!(
            g.pipeline(&k),
            Err(Error::WorkgroupMemory {
                bytes: 67_108_864,
                ..
            })
        ),
        "{:?}",
        g.pipeline(&k).err()
    );
    let within = bare_kernel(
        "var<workgroup> small: array<f32, 64>;\n\
         @compute @workgroup_size(1) fn main() { small[0] = 1.0; }",
        [1, 1, 1],
    );
    assert!(g.pipeline(&within).is_ok());
}

#[test]
fn grid_over_the_workgroup_budget_is_refused_before_dispatch() {
    let g = gpu();
    let p = g
        .pipeline(&bare_kernel(
            "@compute @workgroup_size(1) fn main() {}",
            [65_535, 65_535, 1],
        ))
        .unwrap();
    let mut batch = g.batch();
    assert!(
        matches!(
            batch.dispatch(&p, &[], &[]),
            Err(Error::GridBudget {
                workgroups: 4_294_836_225,
                limit: seam_runtime::device::MAX_WORKGROUPS_PER_DISPATCH,
                ..
            })
        ),
        "a 65,535 x 65,535 grid is refused"
    );
}

#[test]
fn record_once_replay_with_new_sizes() {
    // One batch of two dependent dispatches (c = a·b; d = c·b), replayed for
    // several row counts by updating the sizes in place.
    let lim = limits();
    let (n, k) = (12usize, 12usize);
    let cfg = MatmulConfig::new(
        Dim::Dynamic,
        Dim::Fixed(n as u32),
        Dim::Fixed(k as u32),
        &lim,
    );
    let p = pipeline(&matmul(&cfg).unwrap());
    let max_m = 9usize;
    let a = rand_f32(1, max_m * k);
    let b = rand_f32(2, k * n);
    let (ab, bb, cb, db) = (up(&a), up(&b), out(max_m * n), out(max_m * n));
    let g = gpu();
    let mut batch = g.batch();
    batch
        .dispatch(&p, &[ab.view(), bb.view(), cb.view()], &[("m", 1)])
        .unwrap();
    batch
        .dispatch(&p, &[cb.view(), bb.view(), db.view()], &[("m", 1)])
        .unwrap();
    assert_eq!(batch.len(), 2);
    let mut rec = batch.finish().unwrap();
    assert_eq!(rec.dispatches(), 2);
    for m in [1usize, 9, 4] {
        rec.update(g, 0, &[("m", m as u32)]).unwrap();
        rec.update(g, 1, &[("m", m as u32)]).unwrap();
        g.run(&rec).unwrap();
        let (c, cs) = ref_matmul(&a[..m * k], &b, m, n, k);
        let c32: Vec<f32> = c.iter().map(|&v| v as f32).collect();
        let (d, ds) = ref_matmul(&c32, &b, m, n, k);
        let scale: Vec<f64> = ds.iter().zip(&cs).map(|(x, y)| x + y).collect();
        assert_close_scaled(&format!("replay m={m}"), &read_f32(&db, m * n), &d, &scale);
    }
    assert!(rec.update(g, 5, &[("m", 1)]).is_err());
    // Timed run: GPU timestamps where the device has them.
    let t = g.run_timed(&rec).unwrap();
    assert_eq!(t.is_some(), g.has_timestamps());
}
