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
