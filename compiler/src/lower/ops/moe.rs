//! The grouped, dropless MoE: routing plan, gate/up with the activation
//! epilogue, down projection, optional shared expert, weighted combine — a
//! constant number of dispatches whatever the number of experts.

use seam_bundle::Packing;
use seam_core::SizeExpr;
use seam_ir::{DType, GatedAct, Instr, Op, Operand, RouteMode};
use seam_shaders::kernels::moe::{
    moe_combine, moe_down, moe_down_to_tokens, moe_gate_up, moe_plan, MoeConfig,
};
use seam_shaders::{matmul, BLayout, Epilogue, MatmulConfig};

use super::linalg::split_args;
use crate::lower::{dims_of, kdim, whole, Arg, LowerCx, LowerError, TensorId};

fn static_u32(
    cx: &LowerCx<'_>,
    instr: &Instr,
    e: &SizeExpr,
    what: &str,
) -> Result<u32, LowerError> {
    e.as_const()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| cx.unsupported(instr, &format!("the {what} must be static")))
}

/// The tensor of an expert weight operand in `layout` (weights must be parameters
/// when they are repacked).
fn weight(
    cx: &mut LowerCx<'_>,
    instr: &Instr,
    o: Operand,
    layout: BLayout,
) -> Result<TensorId, LowerError> {
    match (o, layout) {
        (Operand::Param(p), BLayout::Transposed) => {
            Ok(cx.param_tensor(p, Packing::TransposedLast2))
        }
        (o, BLayout::RowMajor) => Ok(cx.operand(o)),
        _ => Err(cx.unsupported(instr, "expert weights computed at run time")),
    }
}

/// Lowers `moe(x, ids, weights, w_gate, w_up, w_down [, shared gate, up, down])`.
pub(crate) fn lower(cx: &mut LowerCx<'_>, instr: &Instr, act: GatedAct) -> Result<(), LowerError> {
    let ops = &instr.operands;
    cx.scalar(instr, cx.ty(ops[0]).dtype)?;
    if cx.ty(ops[1]).dtype != DType::I32 {
        return Err(cx.unsupported(instr, "expert ids must be i32"));
    }
    let x_dims = dims_of(cx.ty(ops[0]));
    let ids_dims = dims_of(cx.ty(ops[1]));
    let g_dims = dims_of(cx.ty(ops[3]));
    let tokens = x_dims[0].clone();
    let topk = ids_dims[1].clone();
    let experts = static_u32(cx, instr, &g_dims[0], "number of experts")?;
    let hidden = static_u32(cx, instr, &g_dims[1], "hidden size")?;
    let ffn = static_u32(cx, instr, &g_dims[2], "expert size")?;
    let limits = cx.target.limits.clone();
    let cfg = MoeConfig::new(experts, hidden, ffn, act, &limits, cx.target.offset_align).map_err(
        |error| LowerError::Shader {
            value: cx.result_name(instr),
            error,
        },
    )?;
    let rows = u64::from(cfg.block_rows());
    // Upper bound on blocks: ceil(T·k / rows) + E (each expert pads at most one block).
    let pairs = SizeExpr::product([tokens.clone(), topk.clone()]);
    let blocks = SizeExpr::sum([
        pairs.clone().ceil_div(rows),
        SizeExpr::Const(u64::from(experts)),
    ]);
    let name = cx.result_name(instr);
    let block_expert = cx.temp(format!("{name}.block_expert"), DType::U32, blocks.clone());
    let pair_list = cx.temp(
        format!("{name}.pairs"),
        DType::U32,
        SizeExpr::product([blocks.clone(), SizeExpr::Const(rows)]),
    );
    let pair_pos = cx.temp(format!("{name}.pair_pos"), DType::U32, pairs);
    let h = cx.temp(
        format!("{name}.h"),
        DType::F32,
        SizeExpr::product([blocks.clone(), SizeExpr::Const(rows * u64::from(ffn))]),
    );
    let x = cx.operand(ops[0]);
    let ids = cx.operand(ops[1]);
    let route_w = cx.operand(ops[2]);
    let sizes = |extra: Vec<(&'static str, SizeExpr)>| {
        let mut s = vec![
            ("tokens", tokens.clone()),
            ("topk", topk.clone()),
            ("blocks", blocks.clone()),
        ];
        s.extend(extra);
        s
    };

    // 1. Plan: sort (token, slot) pairs by expert into padded blocks.
    let args = vec![
        whole(ids),
        whole(block_expert),
        whole(pair_list),
        whole(pair_pos),
    ];
    let writes = vec![block_expert, pair_list, pair_pos];
    cx.step(instr, moe_plan(&cfg, &limits), args, writes, sizes(vec![]))?;

    // 2. Gate and up with the activation epilogue, per block, the block's expert only.
    let (gu_rows, gu_row_bytes) = match cfg.layout {
        BLayout::Transposed => (experts * ffn, u64::from(hidden) * 4),
        BLayout::RowMajor => (experts * hidden, u64::from(ffn) * 4),
    };
    let wg = weight(cx, instr, ops[3], cfg.layout)?;
    let wu = weight(cx, instr, ops[4], cfg.layout)?;
    let mut args = vec![whole(x), whole(block_expert), whole(pair_list)];
    args.extend(split_args(wg, cfg.gate_up_split, gu_rows, gu_row_bytes));
    args.extend(split_args(wu, cfg.gate_up_split, gu_rows, gu_row_bytes));
    args.push(whole(h));
    let gu_sizes = sizes(vec![
        ("n", SizeExpr::Const(u64::from(ffn))),
        ("k", SizeExpr::Const(u64::from(hidden))),
    ]);
    cx.step(instr, moe_gate_up(&cfg), args, vec![h], gu_sizes)?;

    // 3. Down projection of every padded row; for top-1 routing with weight 1
    //    straight into token order, the shared expert added in its epilogue.
    let (d_rows, d_row_bytes) = match cfg.layout {
        BLayout::Transposed => (experts * hidden, u64::from(ffn) * 4),
        BLayout::RowMajor => (experts * ffn, u64::from(hidden) * 4),
    };
    let wd = weight(cx, instr, ops[5], cfg.layout)?;
    let d_sizes = sizes(vec![
        ("n", SizeExpr::Const(u64::from(hidden))),
        ("k", SizeExpr::Const(u64::from(ffn))),
    ]);
    let shared_ffn = |cx: &mut LowerCx<'_>| -> Result<Option<TensorId>, LowerError> {
        if ops.len() == 9 {
            let s = shared_expert(cx, instr, &cfg, x, &tokens, [ops[6], ops[7], ops[8]])?;
            Ok(Some(s))
        } else {
            Ok(None)
        }
    };
    if unit_top1(cx, instr, experts) {
        let shared = shared_ffn(cx)?;
        let out = cx.value_tensor(instr.results[0]);
        let mut args = vec![whole(h), whole(block_expert), whole(pair_list)];
        args.extend(split_args(wd, cfg.down_split, d_rows, d_row_bytes));
        args.extend(shared.map(whole));
        args.push(whole(out));
        let kernel = moe_down_to_tokens(&cfg, shared.is_some());
        return cx.step(instr, kernel, args, vec![out], d_sizes);
    }
    let y = cx.temp(
        format!("{name}.y"),
        DType::F32,
        SizeExpr::product([blocks.clone(), SizeExpr::Const(rows * u64::from(hidden))]),
    );
    let mut args = vec![whole(h), whole(block_expert)];
    args.extend(split_args(wd, cfg.down_split, d_rows, d_row_bytes));
    args.push(whole(y));
    cx.step(instr, moe_down(&cfg), args, vec![y], d_sizes)?;

    // 4. The always-on shared expert, as a dense gated FFN.
    let shared = shared_ffn(cx)?;

    // 5. Weighted combine per token, in slot order (deterministic, no atomics).
    let out = cx.value_tensor(instr.results[0]);
    let mut args = vec![whole(y), whole(route_w), whole(pair_pos)];
    args.extend(shared.map(whole));
    args.push(whole(out));
    let kernel = moe_combine(&cfg, shared.is_some(), &limits);
    cx.step(instr, kernel, args, vec![out], sizes(vec![]))
}

/// Whether the `moe`'s ids and weights are results 0 and 1 of one
/// `route {k=1, mode=topk_softmax}` over at most `experts` logits: then every
/// token has exactly one expert, in range, with weight softmax of one logit,
/// exactly 1 (`exp(l − l) / exp(l − l)`), so the weighted combine is the identity
/// on the expert's output and can be dropped.
fn unit_top1(cx: &LowerCx<'_>, instr: &Instr, experts: u32) -> bool {
    let (Operand::Value(ids), Operand::Value(w)) = (instr.operands[1], instr.operands[2]) else {
        return false;
    };
    cx.func.body.iter().any(|r| {
        let in_range = r.operands.first().is_some_and(|&l| {
            cx.ty(l)
                .shape
                .last()
                .and_then(|d| d.as_static())
                .is_some_and(|e| e <= u64::from(experts))
        });
        matches!(
            r.op,
            Op::Route {
                k: 1,
                mode: RouteMode::TopkSoftmax,
                ..
            }
        ) && r.results == [ids, w]
            && in_range
    })
}

/// Emits the shared expert `down(act(x·gate) * (x·up))`; returns its output tensor.
fn shared_expert(
    cx: &mut LowerCx<'_>,
    instr: &Instr,
    cfg: &MoeConfig,
    x: TensorId,
    tokens: &SizeExpr,
    [sg, su, sd]: [Operand; 3],
) -> Result<TensorId, LowerError> {
    let limits = cx.target.limits.clone();
    let fs = dims_of(cx.ty(sg))[1].clone();
    let hidden = SizeExpr::Const(u64::from(cfg.hidden));
    let name = cx.result_name(instr);
    let hs = cx.temp(
        format!("{name}.shared_h"),
        DType::F32,
        SizeExpr::product([tokens.clone(), fs.clone()]),
    );
    let out = cx.temp(
        format!("{name}.shared"),
        DType::F32,
        SizeExpr::product([tokens.clone(), hidden.clone()]),
    );
    let wg = weight(cx, instr, sg, cfg.layout)?;
    let wu = weight(cx, instr, su, cfg.layout)?;
    let gated = MatmulConfig::new(
        seam_shaders::Dim::Dynamic,
        kdim(&fs),
        kdim(&hidden),
        &limits,
    )
    .with_layout(cfg.layout, &limits)
    .with_epilogue(Epilogue::Gated(cfg.act));
    let kernel = matmul(&gated);
    let args = vec![whole(x), whole(wg), whole(wu), whole(hs)];
    let sizes = vec![
        ("m", tokens.clone()),
        ("n", fs.clone()),
        ("k", hidden.clone()),
    ];
    cx.step(instr, kernel, args, vec![hs], sizes)?;
    let down = MatmulConfig::new(
        seam_shaders::Dim::Dynamic,
        kdim(&hidden),
        kdim(&fs),
        &limits,
    )
    .with_layout(cfg.layout, &limits);
    let wd = weight(cx, instr, sd, cfg.layout)?;
    let args: Vec<Arg> = vec![whole(hs), whole(wd), whole(out)];
    let sizes = vec![("m", tokens.clone()), ("n", hidden), ("k", fs)];
    cx.step(instr, matmul(&down), args, vec![out], sizes)?;
    Ok(out)
}
