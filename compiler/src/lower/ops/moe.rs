//! The grouped, dropless MoE: routing plan, gate/up with the activation
//! epilogue, down projection, optional shared expert, weighted combine — a
//! constant number of dispatches whatever the number of experts. Expert
//! stacks stored in a format other than `f32` (gate and up sharing one) are
//! read as row planes by the `*_quant` kernels, which take the plan's blocks
//! as the `f32` kernels do; a shared expert in a format runs `quant_matmul`.

use seam_bundle::Packing;
use seam_core::{DeviceLimits, SizeExpr, WeightFormat};
use seam_ir::{DType, GatedAct, Instr, Op, Operand, RouteMode};
use seam_shaders::kernels::moe::{
    grouped_matmul, moe_combine, moe_down, moe_down_to_tokens, moe_gate_up, moe_plan, MoeConfig,
};
use seam_shaders::{
    matmul, moe_down_quant, moe_down_to_tokens_quant, moe_gate_up_quant, BLayout, Epilogue,
    MatmulConfig, QuantMoeConfig,
};

use super::expert_record::ExpertSteps;
use super::linalg::{quant_product, row_plane_args, split_args, stored_format, QuantProduct};
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
    // 1. Plan: sort (token, slot) pairs by expert into padded blocks.
    let plan = Plan::emit(cx, instr, &cfg, ops[1], &tokens, &topk)?;
    let record = ExpertSteps {
        instr,
        experts,
        block_rows: cfg.block_rows(),
        plan: cx.steps.len() - 1,
        block_expert: plan.block_expert,
        blocks: plan.blocks.clone(),
        pairs: SizeExpr::product([tokens.clone(), topk.clone()]),
    };
    let (block_expert, pair_list, pair_pos) = (plan.block_expert, plan.pair_list, plan.pair_pos);
    let blocks = &plan.blocks;
    let rows = u64::from(cfg.block_rows());
    let name = cx.result_name(instr);
    let h = cx.temp(
        format!("{name}.h"),
        DType::F32,
        SizeExpr::product([blocks.clone(), SizeExpr::Const(rows * u64::from(ffn))]),
    );
    let x = cx.operand(ops[0]);
    let route_w = cx.operand(ops[2]);
    let sizes = |extra: Vec<(&'static str, SizeExpr)>| plan.sizes(&tokens, &topk, extra);

    // 2. Gate and up with the activation epilogue, per block, the block's expert only.
    let (gu_rows, gu_row_bytes) = match cfg.layout {
        BLayout::Transposed => (experts * ffn, u64::from(hidden) * 4),
        BLayout::RowMajor => (experts * hidden, u64::from(ffn) * 4),
    };
    let mut args = vec![whole(x), whole(block_expert), whole(pair_list)];
    let kernel = match stored_format(cx, &ops[3..5]) {
        Some(format) => {
            args.extend(row_plane_args(cx, instr, &ops[3..5], format)?);
            moe_gate_up_quant(&quant(&cfg, format, &limits))
        }
        None => {
            for &stack in &ops[3..5] {
                let t = weight(cx, instr, stack, cfg.layout)?;
                args.extend(split_args(t, cfg.gate_up_split, gu_rows, gu_row_bytes));
            }
            moe_gate_up(&cfg)
        }
    };
    args.push(whole(h));
    let gu_sizes = sizes(vec![
        ("n", SizeExpr::Const(u64::from(ffn))),
        ("k", SizeExpr::Const(u64::from(hidden))),
    ]);
    cx.step(instr, kernel, args, vec![h], gu_sizes)?;

    // 3. Down projection of every padded row; for top-1 routing with weight 1
    //    straight into token order, the shared expert added in its epilogue.
    let (d_rows, d_row_bytes) = match cfg.layout {
        BLayout::Transposed => (experts * hidden, u64::from(ffn) * 4),
        BLayout::RowMajor => (experts * ffn, u64::from(hidden) * 4),
    };
    let down_format = stored_format(cx, &ops[5..6]);
    let down_args = |cx: &mut LowerCx<'_>| -> Result<Vec<Arg>, LowerError> {
        match down_format {
            Some(format) => row_plane_args(cx, instr, &ops[5..6], format),
            None => {
                let wd = weight(cx, instr, ops[5], cfg.layout)?;
                Ok(split_args(wd, cfg.down_split, d_rows, d_row_bytes))
            }
        }
    };
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
        args.extend(down_args(cx)?);
        args.extend(shared.map(whole));
        args.push(whole(out));
        let kernel = match down_format {
            Some(format) => {
                moe_down_to_tokens_quant(&quant(&cfg, format, &limits), shared.is_some())
            }
            None => moe_down_to_tokens(&cfg, shared.is_some()),
        };
        cx.step(instr, kernel, args, vec![out], d_sizes)?;
        cx.record_experts(record);
        return Ok(());
    }
    let y = cx.temp(
        format!("{name}.y"),
        DType::F32,
        SizeExpr::product([blocks.clone(), SizeExpr::Const(rows * u64::from(hidden))]),
    );
    let mut args = vec![whole(h), whole(block_expert)];
    args.extend(down_args(cx)?);
    args.push(whole(y));
    let kernel = match down_format {
        Some(format) => moe_down_quant(&quant(&cfg, format, &limits)),
        None => moe_down(&cfg),
    };
    cx.step(instr, kernel, args, vec![y], d_sizes)?;
    cx.record_experts(record);

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

/// The routing plan's buffers: the blocks' experts, the expert-sorted padded
/// pair list and each pair's position in it, for `blocks` blocks.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    block_expert: TensorId,
    pair_list: TensorId,
    pair_pos: TensorId,
    blocks: SizeExpr,
}

impl Plan {
    /// Emits the plan dispatch over `ids` (`[tokens, topk]`, or `[tokens]`
    /// with `topk` 1) for `cfg`'s experts and blocks.
    fn emit(
        cx: &mut LowerCx<'_>,
        instr: &Instr,
        cfg: &MoeConfig,
        ids: Operand,
        tokens: &SizeExpr,
        topk: &SizeExpr,
    ) -> Result<Self, LowerError> {
        let rows = u64::from(cfg.block_rows());
        // Upper bound on blocks: ceil(T·k / rows) + E (each expert pads at most one block).
        let pairs = SizeExpr::product([tokens.clone(), topk.clone()]);
        let blocks = SizeExpr::sum([
            pairs.clone().ceil_div(rows),
            SizeExpr::Const(u64::from(cfg.experts)),
        ]);
        let name = cx.result_name(instr);
        let block_expert = cx.temp(format!("{name}.block_expert"), DType::U32, blocks.clone());
        let pair_list = cx.temp(
            format!("{name}.pairs"),
            DType::U32,
            SizeExpr::product([blocks.clone(), SizeExpr::Const(rows)]),
        );
        let pair_pos = cx.temp(format!("{name}.pair_pos"), DType::U32, pairs);
        let plan = Plan {
            block_expert,
            pair_list,
            pair_pos,
            blocks,
        };
        let ids = cx.operand(ids);
        let args = vec![
            whole(ids),
            whole(block_expert),
            whole(pair_list),
            whole(pair_pos),
        ];
        let writes = vec![block_expert, pair_list, pair_pos];
        let limits = cx.target.limits.clone();
        let sizes = plan.sizes(tokens, topk, vec![]);
        cx.step(instr, moe_plan(cfg, &limits), args, writes, sizes)?;
        Ok(plan)
    }

    /// The sizes of the plan's kernels: `tokens`, `topk`, `blocks` and `extra`.
    fn sizes(
        &self,
        tokens: &SizeExpr,
        topk: &SizeExpr,
        extra: Vec<(&'static str, SizeExpr)>,
    ) -> Vec<(&'static str, SizeExpr)> {
        let mut s = vec![
            ("tokens", tokens.clone()),
            ("topk", topk.clone()),
            ("blocks", self.blocks.clone()),
        ];
        s.extend(extra);
        s
    }
}

/// Lowers `grouped_matmul(x[T, K], ids[T], w[E, K, N])`: the plan of the
/// top-1 ids (emitted by the first product over these ids with this `E` and
/// block size, reused by the others), then one grouped product storing in
/// token order — one dispatch per product whatever `E`, plus one plan. `w`
/// must be an `f32` parameter.
pub(crate) fn lower_grouped_matmul(cx: &mut LowerCx<'_>, instr: &Instr) -> Result<(), LowerError> {
    let ops = &instr.operands;
    cx.scalar(instr, cx.ty(ops[0]).dtype)?;
    if cx.ty(ops[1]).dtype != DType::I32 {
        return Err(cx.unsupported(instr, "the ids must be i32"));
    }
    if stored_format(cx, &ops[2..3]).is_some() {
        return Err(cx.unsupported(instr, "the matrices must be stored as f32"));
    }
    let w_dims = dims_of(cx.ty(ops[2]));
    let tokens = dims_of(cx.ty(ops[0]))[0].clone();
    let experts = static_u32(cx, instr, &w_dims[0], "number of matrices")?;
    let k = static_u32(cx, instr, &w_dims[1], "contracted dim")?;
    let n = static_u32(cx, instr, &w_dims[2], "output dim")?;
    let limits = cx.target.limits.clone();
    // The product is the plan's "down" stack: `ffn` = K in, `hidden` = N out.
    let cfg = MoeConfig::new(
        experts,
        n,
        k,
        GatedAct::SwiGlu,
        &limits,
        cx.target.offset_align,
    )
    .map_err(|error| LowerError::Shader {
        value: cx.result_name(instr),
        error,
    })?;
    let topk = SizeExpr::Const(1);
    let key = match ops[1] {
        Operand::Value(v) => Some((v, experts, cfg.block_rows())),
        Operand::Param(_) => None,
    };
    let plan = match key.and_then(|k| cx.grouped_plans.get(&k)) {
        Some(plan) => plan.clone(),
        None => {
            let plan = Plan::emit(cx, instr, &cfg, ops[1], &tokens, &topk)?;
            if let Some(k) = key {
                cx.grouped_plans.insert(k, plan.clone());
            }
            plan
        }
    };
    let (stored_rows, row_bytes) = match cfg.layout {
        BLayout::Transposed => (experts * n, u64::from(k) * 4),
        BLayout::RowMajor => (experts * k, u64::from(n) * 4),
    };
    let x = cx.operand(ops[0]);
    let w = weight(cx, instr, ops[2], cfg.layout)?;
    let out = cx.value_tensor(instr.results[0]);
    let mut args = vec![whole(x), whole(plan.block_expert), whole(plan.pair_list)];
    args.extend(split_args(w, cfg.down_split, stored_rows, row_bytes));
    args.push(whole(out));
    let kernel = grouped_matmul(&cfg);
    let extra = vec![
        ("n", SizeExpr::Const(u64::from(n))),
        ("k", SizeExpr::Const(u64::from(k))),
    ];
    let sizes = plan.sizes(&tokens, &topk, extra);
    cx.step(instr, kernel, args, vec![out], sizes)
}

/// The quantized expert products over `cfg`'s plan, stacks in `format`.
fn quant(cfg: &MoeConfig, format: WeightFormat, limits: &DeviceLimits) -> QuantMoeConfig {
    QuantMoeConfig::new(*cfg, format, limits)
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
    let gate_up = Product {
        weights: &[sg, su],
        epilogue: Epilogue::Gated(cfg.act),
        a: x,
        out: hs,
    };
    dense_product(cx, instr, cfg, (tokens, &fs, &hidden), gate_up)?;
    let down = Product {
        weights: &[sd],
        epilogue: Epilogue::None,
        a: hs,
        out,
    };
    dense_product(cx, instr, cfg, (tokens, &hidden, &fs), down)?;
    Ok(out)
}

/// A product of the shared expert.
struct Product<'a> {
    /// Its weight params (gate and up when gated).
    weights: &'a [Operand],
    /// What it stores.
    epilogue: Epilogue,
    /// The left operand.
    a: TensorId,
    /// The result.
    out: TensorId,
}

/// Emits `p` over `m` rows, `n` columns and `k`: `quant_matmul` when its
/// weights are stored in a format, else `matmul` in `cfg`'s layout.
fn dense_product(
    cx: &mut LowerCx<'_>,
    instr: &Instr,
    cfg: &MoeConfig,
    (m, n, k): (&SizeExpr, &SizeExpr, &SizeExpr),
    p: Product<'_>,
) -> Result<(), LowerError> {
    if let Some(format) = stored_format(cx, p.weights) {
        let product = QuantProduct {
            a: p.a,
            m: m.clone(),
            weights: p.weights,
            format,
            epilogue: p.epilogue,
            addend: None,
            out: p.out,
        };
        return quant_product(cx, instr, &product);
    }
    let limits = cx.target.limits.clone();
    let mcfg = MatmulConfig::new(seam_shaders::Dim::Dynamic, kdim(n), kdim(k), &limits)
        .with_layout(cfg.layout, &limits)
        .with_epilogue(p.epilogue);
    let mut args: Vec<Arg> = vec![whole(p.a)];
    for &w in p.weights {
        args.push(whole(weight(cx, instr, w, cfg.layout)?));
    }
    args.push(whole(p.out));
    let sizes = vec![("m", m.clone()), ("n", n.clone()), ("k", k.clone())];
    cx.step(instr, matmul(&mcfg), args, vec![p.out], sizes)
}
