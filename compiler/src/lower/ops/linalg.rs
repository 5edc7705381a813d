//! Matrix products. A weight (`@param` as the right operand) is packed once at
//! compile time in the layout the device's kernel reads fastest (transposed,
//! `[N, K]`, on CPU-like devices) and split across bindings when it exceeds the
//! device's binding limit.

use seam_ir::{Instr, Operand};
use seam_runtime::bundle::{Expr, Packing};
use seam_shaders::kernels::matmul::MatmulVariant;
use seam_shaders::{matmul, BLayout, KernelProfile, MatmulConfig, WeightSplit};

use crate::lower::{dims_of, kdim, whole, Arg, LowerCx, LowerError, TensorId};

/// Binds a weight stored as `rows × row_bytes`, one argument per part of `split`.
pub(crate) fn split_args(t: TensorId, split: WeightSplit, rows: u32, row_bytes: u64) -> Vec<Arg> {
    if split.parts <= 1 {
        return vec![whole(t)];
    }
    (0..split.parts)
        .map(|p| {
            let (first, count) = split.part_rows(rows, p);
            Arg {
                tensor: t,
                offset: u64::from(first) * row_bytes,
                size: Some(u64::from(count) * row_bytes),
            }
        })
        .collect()
}

/// Lowers `matmul`.
pub(crate) fn matmul_instr(cx: &mut LowerCx<'_>, instr: &Instr) -> Result<(), LowerError> {
    let (a, b) = (instr.operands[0], instr.operands[1]);
    cx.scalar(instr, cx.ty(a).dtype)?;
    let a_dims = dims_of(cx.ty(a));
    let b_dims = dims_of(cx.ty(b));
    let limits = &cx.target.limits;
    let k = b_dims[b_dims.len() - 2].clone();
    let n = b_dims[b_dims.len() - 1].clone();
    let batched = b_dims.len() > 2;
    let (batch, m) = if batched {
        (
            Some(Expr::product(a_dims[..a_dims.len() - 2].iter().cloned())),
            a_dims[a_dims.len() - 2].clone(),
        )
    } else {
        (
            None,
            Expr::product(a_dims[..a_dims.len() - 1].iter().cloned()),
        )
    };
    let weight = matches!(b, Operand::Param(_)) && !batched;
    let layout = if weight && limits.profile() == KernelProfile::CpuLike {
        BLayout::Transposed
    } else {
        BLayout::RowMajor
    };
    let mut cfg =
        MatmulConfig::new(kdim(&m), kdim(&n), kdim(&k), limits).with_layout(layout, limits);
    cfg.batch = batch.as_ref().map(kdim);
    cfg.b_batched = batched;
    let b_tensor = match b {
        Operand::Param(p) if weight => cx.param_tensor(
            p,
            if layout == BLayout::Transposed {
                Packing::TransposedLast2
            } else {
                Packing::AsIs
            },
        ),
        other => cx.operand(other),
    };
    let mut b_args = vec![whole(b_tensor)];
    if let (true, Some(nv), Some(kv)) = (weight, n.as_const(), k.as_const()) {
        let (rows, row_elems) = match layout {
            BLayout::Transposed => (nv, kv),
            BLayout::RowMajor => (kv, nv),
        };
        if rows * row_elems * 4 > limits.max_storage_buffer_binding_size {
            let col_block = match cfg.variant {
                MatmulVariant::RowBlocked(t) => t.workgroup * t.cols,
                MatmulVariant::SubgroupBlocked(t) => t.workgroup * t.cols,
                MatmulVariant::Tiled(t) => t.block,
            };
            let row_align = if layout == BLayout::Transposed {
                col_block
            } else {
                4
            };
            let split = WeightSplit::plan(
                rows as u32,
                row_elems * 4,
                limits.max_storage_buffer_binding_size,
                row_align,
                cx.target.offset_align,
            )
            .map_err(|error| LowerError::Shader {
                value: cx.result_name(instr),
                error,
            })?;
            cfg.b_split = split;
            b_args = split_args(b_tensor, split, rows as u32, row_elems * 4);
        }
    }
    let a_tensor = cx.operand(a);
    let out = cx.value_tensor(instr.results[0]);
    let mut args = vec![whole(a_tensor)];
    args.extend(b_args);
    args.push(whole(out));
    let mut sizes = vec![("m", m), ("n", n), ("k", k)];
    if let Some(batch) = batch {
        sizes.push(("batch", batch));
    }
    cx.step(instr, matmul(&cfg), args, vec![out], sizes)
}
