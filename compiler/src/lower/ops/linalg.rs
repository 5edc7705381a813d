//! Matrix products. A weight (`@param` as the right operand) is packed once at
//! compile time in the layout the device's kernel reads fastest (transposed,
//! `[N, K]`, on CPU-like devices) and split across bindings when it exceeds the
//! device's binding limit.

use seam_bundle::Packing;
use seam_core::SizeExpr;
use seam_core::WeightFormat;
use seam_ir::{Instr, Op, Operand};
use seam_shaders::kernels::matmul::MatmulVariant;
use seam_shaders::{
    matmul, quant_matmul, BLayout, Epilogue, KernelProfile, MatmulConfig, QuantMatmulConfig,
    WeightSplit,
};

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

/// The epilogue of a product op: `matmul` stores the product, `gated_matmul`
/// its gated activation, `matmul_add` adds a bias (`[N]`) or a residual (the
/// product's shape).
fn epilogue(cx: &LowerCx<'_>, instr: &Instr) -> Epilogue {
    match &instr.op {
        Op::GatedMatMul { act } => Epilogue::Gated(*act),
        Op::MatMulAdd if cx.ty(instr.operands[2]).rank() == 1 => Epilogue::AddBias,
        Op::MatMulAdd => Epilogue::AddResidual,
        _ => Epilogue::None,
    }
}

/// Lowers `matmul`, `gated_matmul` and `matmul_add` as one product kernel with
/// the op's epilogue (the right operands of `gated_matmul`, gate then up, share
/// a layout and a split).
pub(crate) fn matmul_instr(cx: &mut LowerCx<'_>, instr: &Instr) -> Result<(), LowerError> {
    let epilogue = epilogue(cx, instr);
    let a = instr.operands[0];
    let weights: &[Operand] = if epilogue.gated().is_some() {
        &instr.operands[1..3]
    } else {
        &instr.operands[1..2]
    };
    let b = weights[0];
    cx.scalar(instr, cx.ty(a).dtype)?;
    if let Some(format) = stored_format(cx, weights) {
        return quant_matmul_instr(cx, instr, epilogue, weights, format);
    }
    let a_dims = dims_of(cx.ty(a));
    let b_dims = dims_of(cx.ty(b));
    let limits = &cx.target.limits;
    let k = b_dims[b_dims.len() - 2].clone();
    let n = b_dims[b_dims.len() - 1].clone();
    let batched = b_dims.len() > 2;
    let (batch, m) = if batched {
        (
            Some(SizeExpr::product(
                a_dims[..a_dims.len() - 2].iter().cloned(),
            )),
            a_dims[a_dims.len() - 2].clone(),
        )
    } else {
        (
            None,
            SizeExpr::product(a_dims[..a_dims.len() - 1].iter().cloned()),
        )
    };
    let weight = weights.iter().all(|w| matches!(w, Operand::Param(_))) && !batched;
    let layout = if weight && limits.profile() == KernelProfile::CpuLike {
        BLayout::Transposed
    } else {
        BLayout::RowMajor
    };
    let mut cfg = MatmulConfig::new(kdim(&m), kdim(&n), kdim(&k), limits)
        .with_layout(layout, limits)
        .with_epilogue(epilogue);
    cfg.batch = batch.as_ref().map(kdim);
    cfg.b_batched = batched;
    let packing = if layout == BLayout::Transposed {
        Packing::TransposedLast2
    } else {
        Packing::AsIs
    };
    let b_tensors: Vec<TensorId> = weights
        .iter()
        .map(|&w| match w {
            Operand::Param(p) if weight => cx.param_tensor(p, packing),
            other => cx.operand(other),
        })
        .collect();
    let mut b_args: Vec<Arg> = b_tensors.iter().map(|&t| whole(t)).collect();
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
            b_args = b_tensors
                .iter()
                .flat_map(|&t| split_args(t, split, rows as u32, row_elems * 4))
                .collect();
        }
    }
    let a_tensor = cx.operand(a);
    let out = cx.value_tensor(instr.results[0]);
    let mut args = vec![whole(a_tensor)];
    args.extend(b_args);
    if epilogue.adds() {
        args.push(whole(cx.operand(instr.operands[2])));
    }
    args.push(whole(out));
    let mut sizes = vec![("m", m), ("n", n), ("k", k)];
    if let Some(batch) = batch {
        sizes.push(("batch", batch));
    }
    cx.step(instr, matmul(&cfg), args, vec![out], sizes)
}

/// The format the product's weights are stored in, when they are params in a
/// format other than `f32` (gate and up of a gated product share it).
pub(crate) fn stored_format(cx: &LowerCx<'_>, weights: &[Operand]) -> Option<WeightFormat> {
    let formats: Vec<WeightFormat> = weights
        .iter()
        .map(|w| match w {
            Operand::Param(p) => cx.model.param(*p).format,
            Operand::Value(_) => WeightFormat::F32,
        })
        .collect();
    let first = *formats.first()?;
    (first != WeightFormat::F32 && formats.iter().all(|&f| f == first)).then_some(first)
}

/// Lowers a product whose weights are stored in `format` (row planes, see
/// [`seam_core::quant`]) as a kernel that decodes them in registers.
fn quant_matmul_instr(
    cx: &mut LowerCx<'_>,
    instr: &Instr,
    epilogue: Epilogue,
    weights: &[Operand],
    format: WeightFormat,
) -> Result<(), LowerError> {
    let a = instr.operands[0];
    let a_dims = dims_of(cx.ty(a));
    let product = QuantProduct {
        a: cx.operand(a),
        m: SizeExpr::product(a_dims[..a_dims.len() - 1].iter().cloned()),
        weights,
        format,
        epilogue,
        addend: epilogue.adds().then(|| cx.operand(instr.operands[2])),
        out: cx.value_tensor(instr.results[0]),
    };
    quant_product(cx, instr, &product)
}

/// A product `a[m, K] · W` whose weights (`W[K, N]`, gate and up when gated)
/// are params stored in `format`.
pub(crate) struct QuantProduct<'a> {
    /// The left operand.
    pub a: TensorId,
    /// Its rows.
    pub m: SizeExpr,
    /// The weight params.
    pub weights: &'a [Operand],
    /// Their format.
    pub format: WeightFormat,
    /// What is stored.
    pub epilogue: Epilogue,
    /// The bias or residual of an add epilogue.
    pub addend: Option<TensorId>,
    /// The result.
    pub out: TensorId,
}

/// Emits the `quant_matmul` step of `p` for `instr`.
pub(crate) fn quant_product(
    cx: &mut LowerCx<'_>,
    instr: &Instr,
    p: &QuantProduct<'_>,
) -> Result<(), LowerError> {
    let b_dims = dims_of(cx.ty(p.weights[0]));
    let (k, n) = (b_dims[0].clone(), b_dims[1].clone());
    let k_fixed = k
        .as_const()
        .and_then(|k| u32::try_from(k).ok())
        .unwrap_or(0);
    let max_rows = match kdim(&p.m) {
        seam_shaders::Dim::Fixed(rows) => rows,
        seam_shaders::Dim::Dynamic => 16,
    };
    let limits = &cx.target.limits;
    let cfg = QuantMatmulConfig::new(p.format, (kdim(&p.m), kdim(&n), k_fixed), max_rows, limits)
        .with_epilogue(p.epilogue);
    let mut args = vec![whole(p.a)];
    args.extend(row_plane_args(cx, instr, p.weights, p.format)?);
    args.extend(p.addend.map(whole));
    args.push(whole(p.out));
    let sizes = vec![("m", p.m.clone()), ("n", n), ("k", k)];
    cx.step(instr, quant_matmul(&cfg), args, vec![p.out], sizes)
}

/// The row planes of weight params stored in `format`, one argument each.
pub(crate) fn row_plane_args(
    cx: &mut LowerCx<'_>,
    instr: &Instr,
    weights: &[Operand],
    format: WeightFormat,
) -> Result<Vec<Arg>, LowerError> {
    weights
        .iter()
        .map(|w| match *w {
            Operand::Param(p) => Ok(whole(cx.param_tensor(p, Packing::Rows(format)))),
            Operand::Value(_) => Err(cx.unsupported(instr, "a stored format on a computed weight")),
        })
        .collect()
}
