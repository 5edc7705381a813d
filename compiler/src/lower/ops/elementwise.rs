//! Element-wise ops (and transposes) as element-wise kernels with index maps.

use seam_core::SizeExpr;
use seam_ir::{FusedExpr, Instr, Op, Operand};
use seam_shaders::kernels::elementwise::{elementwise, ElementwiseConfig, Expr as Ew, IndexMap};
use seam_shaders::ScalarType;

use crate::lower::{dims_of, kdim, whole, LowerCx, LowerError};

/// How an input of shape `input` is read for an output of shape `out`, with the
/// sizes the map needs (named for input `j`).
fn index_map(
    j: usize,
    input: &[SizeExpr],
    out: &[SizeExpr],
) -> (IndexMap, Vec<(String, SizeExpr)>) {
    if input == out {
        return (IndexMap::Same, Vec::new());
    }
    if input.iter().all(|d| *d == SizeExpr::Const(1)) {
        return (IndexMap::Scalar, Vec::new());
    }
    let trimmed: Vec<&SizeExpr> = input
        .iter()
        .skip_while(|d| **d == SizeExpr::Const(1))
        .collect();
    if trimmed.len() <= out.len()
        && out[out.len() - trimmed.len()..]
            .iter()
            .eq(trimmed.iter().copied())
    {
        let len = SizeExpr::product(trimmed.into_iter().cloned());
        return (IndexMap::Repeat(kdim(&len)), vec![(format!("len{j}"), len)]);
    }
    // A prefix of the output's dims followed by ones ([T, 1] against [T, D]).
    let ones_after = input
        .iter()
        .rev()
        .take_while(|d| **d == SizeExpr::Const(1))
        .count();
    let keep = input.len() - ones_after;
    if input.len() == out.len() && keep > 0 && input[..keep] == out[..keep] {
        let div = SizeExpr::product(out[keep..].iter().cloned());
        return (IndexMap::Outer(kdim(&div)), vec![(format!("div{j}"), div)]);
    }
    // General broadcast: stride 0 on broadcast dims, the input's own strides elsewhere.
    let offset = out.len() - input.len();
    let mut strides = Vec::with_capacity(out.len());
    let mut sizes = Vec::new();
    for d in 0..out.len() {
        let stride = if d < offset
            || (input[d - offset] == SizeExpr::Const(1) && out[d] != SizeExpr::Const(1))
        {
            SizeExpr::Const(0)
        } else {
            SizeExpr::product(input[d - offset + 1..].iter().cloned())
        };
        strides.push(kdim(&stride));
        sizes.push((format!("s{j}_{d}"), stride));
    }
    (IndexMap::Strided(strides), sizes)
}

/// The kernel expression of a `fused` op's expression (constants in `scalar`).
fn fused_expr(e: &FusedExpr, scalar: ScalarType) -> Ew {
    match e {
        FusedExpr::Operand(i) => Ew::Input(*i),
        FusedExpr::Const(c) => Ew::Const(f64::from(*c), scalar),
        FusedExpr::Unary(op, x) => Ew::unary(*op, fused_expr(x, scalar)),
        FusedExpr::Binary(op, a, b) => {
            Ew::binary(*op, fused_expr(a, scalar), fused_expr(b, scalar))
        }
    }
}

/// Lowers `const`, `iota`, `cast`, `fused`, the unary and binary element-wise
/// ops, and the copy of a `cache`.
pub(crate) fn lower(cx: &mut LowerCx<'_>, instr: &Instr) -> Result<(), LowerError> {
    let result = instr.results[0];
    let out_ty = &cx.func.value(result).ty;
    let out_dims = dims_of(out_ty);
    let out_scalar = cx.scalar(instr, out_ty.dtype)?;
    let expr = match &instr.op {
        Op::Const { value } => Ew::Const(*value, out_scalar),
        Op::Iota { axis } => Ew::Iota(*axis, out_scalar),
        Op::Cast => Ew::Cast(out_scalar, Box::new(Ew::Input(0))),
        // The copy into the cache's kept tensor, or into a reduction's own
        // tensor when its operand is read elsewhere.
        Op::Cache { .. } | Op::AllReduce { .. } | Op::AllReduceStart { .. } => Ew::Input(0),
        Op::Fused { expr } => fused_expr(expr, out_scalar),
        Op::Unary(f) => Ew::unary(*f, Ew::Input(0)),
        Op::Binary(f) => Ew::binary(*f, Ew::Input(0), Ew::Input(1)),
        _ => return Err(cx.unsupported(instr, "not an element-wise op")),
    };
    let n = SizeExpr::product(out_dims.clone());
    let mut cfg = ElementwiseConfig::new(instr.op.name(), expr, out_scalar, &cx.target.limits);
    cfg.n = kdim(&n);
    let mut sizes: Vec<(String, SizeExpr)> = vec![("n".into(), n)];
    if matches!(instr.op, Op::Iota { .. }) {
        cfg.dims = Some(out_dims.iter().map(kdim).collect());
    }
    let mut args = Vec::new();
    for (j, &o) in instr.operands.iter().enumerate() {
        let ty = cx.ty(o);
        let (map, map_sizes) = index_map(j, &dims_of(ty), &out_dims);
        if matches!(map, IndexMap::Strided(_)) && cfg.dims.is_none() {
            cfg.dims = Some(out_dims.iter().map(kdim).collect());
        }
        cfg = cfg.input(cx.scalar(instr, ty.dtype)?, map);
        sizes.extend(map_sizes);
        args.push(whole(cx.operand(o)));
    }
    if cfg.dims.is_some() {
        sizes.extend(
            out_dims
                .iter()
                .enumerate()
                .map(|(d, e)| (format!("d{d}"), e.clone())),
        );
    }
    let out = cx.value_tensor(result);
    args.push(whole(out));
    let kernel = elementwise(&cfg);
    let sizes = sizes.iter().map(|(n, e)| (n.as_str(), e.clone())).collect();
    cx.step(instr, kernel, args, vec![out], sizes)
}

/// Lowers `transpose` as a strided element-wise copy.
pub(crate) fn transpose(
    cx: &mut LowerCx<'_>,
    instr: &Instr,
    perm: &[usize],
) -> Result<(), LowerError> {
    let x: Operand = instr.operands[0];
    let in_ty = cx.ty(x);
    let in_dims = dims_of(in_ty);
    let scalar = cx.scalar(instr, in_ty.dtype)?;
    let out_dims: Vec<SizeExpr> = perm.iter().map(|&p| in_dims[p].clone()).collect();
    let n = SizeExpr::product(out_dims.clone());
    let mut sizes: Vec<(String, SizeExpr)> = vec![("n".into(), n.clone())];
    let mut strides = Vec::new();
    for (d, &p) in perm.iter().enumerate() {
        let stride = SizeExpr::product(in_dims[p + 1..].iter().cloned());
        strides.push(kdim(&stride));
        sizes.push((format!("s0_{d}"), stride));
    }
    sizes.extend(
        out_dims
            .iter()
            .enumerate()
            .map(|(d, e)| (format!("d{d}"), e.clone())),
    );
    let mut cfg = ElementwiseConfig::new("transpose", Ew::Input(0), scalar, &cx.target.limits)
        .input(scalar, IndexMap::Strided(strides));
    cfg.n = kdim(&n);
    cfg.dims = Some(out_dims.iter().map(kdim).collect());
    let input = cx.operand(x);
    let out = cx.value_tensor(instr.results[0]);
    let sizes = sizes.iter().map(|(n, e)| (n.as_str(), e.clone())).collect();
    cx.step(
        instr,
        elementwise(&cfg),
        vec![whole(input), whole(out)],
        vec![out],
        sizes,
    )
}
