//! Data movement: concat, slice, split (several slices at once) and gather
//! (embedding lookup).

use seam_core::{Kernel, SizeExpr};
use seam_ir::{Instr, Op};
use seam_shaders::kernels::movement;
use seam_shaders::{ScalarType, ShaderError};

use crate::lower::{dims_of, kdim, whole, Arg, LowerCx, LowerError, TensorId};

/// Lowers `concat` along `axis` (viewed as `[outer, a_j, inner]`).
pub(crate) fn concat(cx: &mut LowerCx<'_>, instr: &Instr, axis: usize) -> Result<(), LowerError> {
    let out_ty = &cx.func.value(instr.results[0]).ty;
    let scalar = cx.scalar(instr, out_ty.dtype)?;
    let out_dims = dims_of(out_ty);
    let mut sizes: Vec<(String, SizeExpr)> = vec![
        ("n".into(), SizeExpr::product(out_dims.clone())),
        (
            "outer".into(),
            SizeExpr::product(out_dims[..axis].iter().cloned()),
        ),
        (
            "inner".into(),
            SizeExpr::product(out_dims[axis + 1..].iter().cloned()),
        ),
    ];
    let mut args = Vec::new();
    for (j, &o) in instr.operands.iter().enumerate() {
        sizes.push((format!("a{j}"), dims_of(cx.ty(o))[axis].clone()));
        args.push(whole(cx.operand(o)));
    }
    let out = cx.value_tensor(instr.results[0]);
    args.push(whole(out));
    let kernel = movement::concat(instr.operands.len(), scalar, &cx.target.limits);
    let sizes = sizes.iter().map(|(n, e)| (n.as_str(), e.clone())).collect();
    cx.step(instr, kernel, args, vec![out], sizes)
}

/// Lowers `slice` of `start..end` along `axis`.
pub(crate) fn slice(
    cx: &mut LowerCx<'_>,
    instr: &Instr,
    axis: usize,
    start: u64,
    end: u64,
) -> Result<(), LowerError> {
    let x = instr.operands[0];
    let dims = dims_of(cx.ty(x));
    let scalar = cx.scalar(instr, cx.ty(x).dtype)?;
    let inner = SizeExpr::product(dims[axis + 1..].iter().cloned());
    let n = SizeExpr::product(dims.iter().enumerate().map(|(i, d)| {
        if i == axis {
            SizeExpr::Const(end - start)
        } else {
            d.clone()
        }
    }));
    let input = cx.operand(x);
    let out = cx.value_tensor(instr.results[0]);
    let sizes = vec![
        ("n", n),
        ("inner", inner),
        ("a", dims[axis].clone()),
        ("start", SizeExpr::Const(start)),
        ("len", SizeExpr::Const(end - start)),
    ];
    let kernel = movement::slice(scalar, &cx.target.limits);
    cx.step(
        instr,
        kernel,
        vec![whole(input), whole(out)],
        vec![out],
        sizes,
    )
}

/// Lowers slices of one operand along one axis (all `slice` instructions) as
/// `split` dispatches of at most as many outputs as the device binds.
pub(crate) fn split(cx: &mut LowerCx<'_>, slices: &[&Instr]) -> Result<(), LowerError> {
    let first = slices[0];
    let Op::Slice { axis, .. } = first.op else {
        return Err(cx.unsupported(first, "a split of a non-slice (a compiler bug)"));
    };
    let x = first.operands[0];
    let dims = dims_of(cx.ty(x));
    let scalar = cx.scalar(first, cx.ty(x).dtype)?;
    let input = cx.operand(x);
    let per = (cx.target.limits.max_storage_buffers_per_stage as usize).saturating_sub(1);
    for chunk in slices.chunks(per.max(1)) {
        let mut sizes: Vec<(String, SizeExpr)> = vec![
            ("n".into(), SizeExpr::product(dims.clone())),
            (
                "inner".into(),
                SizeExpr::product(dims[axis + 1..].iter().cloned()),
            ),
            ("a".into(), dims[axis].clone()),
        ];
        let mut args = vec![whole(input)];
        let mut writes = Vec::new();
        for (j, instr) in chunk.iter().enumerate() {
            let Op::Slice { start, end, .. } = instr.op else {
                return Err(cx.unsupported(instr, "a split of a non-slice (a compiler bug)"));
            };
            sizes.push((format!("s{j}"), SizeExpr::Const(start)));
            sizes.push((format!("l{j}"), SizeExpr::Const(end - start)));
            let out = cx.value_tensor(instr.results[0]);
            args.push(whole(out));
            writes.push(out);
        }
        let kernel = movement::split(chunk.len(), scalar, &cx.target.limits);
        let sizes = sizes.iter().map(|(n, e)| (n.as_str(), e.clone())).collect();
        cx.step(first, kernel, args, writes, sizes)?;
    }
    Ok(())
}

/// Lowers `gather(table[V, D], ids[...])`.
pub(crate) fn gather(cx: &mut LowerCx<'_>, instr: &Instr) -> Result<(), LowerError> {
    let (table, ids) = (instr.operands[0], instr.operands[1]);
    let t_dims = dims_of(cx.ty(table));
    let scalar = cx.scalar(instr, cx.ty(table).dtype)?;
    if cx.ty(ids).dtype != seam_ir::DType::I32 {
        return Err(cx.unsupported(instr, "ids must be i32"));
    }
    let tokens = SizeExpr::product(dims_of(cx.ty(ids)));
    let args = vec![whole(cx.operand(table)), whole(cx.operand(ids))];
    let out = cx.value_tensor(instr.results[0]);
    let mut args = args;
    args.push(whole(out));
    let kernel = movement::gather(scalar, kdim(&t_dims[1]), &cx.target.limits);
    let sizes = vec![
        ("tokens", tokens),
        ("v", t_dims[0].clone()),
        ("d", t_dims[1].clone()),
    ];
    cx.step(instr, kernel, args, vec![out], sizes)
}

/// Lowers `tail(x[S, ...]) : [T, ...]`: a slice of rows `S - T..S`.
pub(crate) fn tail(cx: &mut LowerCx<'_>, instr: &Instr) -> Result<(), LowerError> {
    let x = instr.operands[0];
    let dims = dims_of(cx.ty(x));
    let out_dims = dims_of(&cx.func.value(instr.results[0]).ty);
    let scalar = cx.scalar(instr, cx.ty(x).dtype)?;
    let input = cx.operand(x);
    let out = cx.value_tensor(instr.results[0]);
    let rows = RowRange {
        n: SizeExpr::product(out_dims.clone()),
        inner: SizeExpr::product(dims[1..].iter().cloned()),
        rows: dims[0].clone(),
        start: dims[0].clone().minus(out_dims[0].clone()),
        len: out_dims[0].clone(),
    };
    let kernel = movement::slice(scalar, &cx.target.limits);
    move_rows(cx, instr, kernel, input, out, rows)
}

/// Lowers `write_tail(buf[S, ...], new[T, ...])`: the new rows written into
/// the last rows of [`updated_buffer`].
pub(crate) fn write_tail(cx: &mut LowerCx<'_>, instr: &Instr) -> Result<(), LowerError> {
    let (buf, new) = (instr.operands[0], instr.operands[1]);
    let dims = dims_of(cx.ty(buf));
    let new_dims = dims_of(cx.ty(new));
    let scalar = cx.scalar(instr, cx.ty(buf).dtype)?;
    let out = updated_buffer(cx, instr, scalar)?;
    let new_t = cx.operand(new);
    let last = RowRange {
        n: SizeExpr::product(new_dims.clone()),
        inner: SizeExpr::product(dims[1..].iter().cloned()),
        rows: dims[0].clone(),
        start: dims[0].clone().minus(new_dims[0].clone()),
        len: new_dims[0].clone(),
    };
    let kernel = movement::slice_update(scalar, &cx.target.limits);
    move_rows(cx, instr, kernel, new_t, out, last)
}

/// Lowers `write_rows(buf[S, L, ...], slot[T], pos[T], new[T, ...])`: each
/// token's row written into its slot of [`updated_buffer`].
pub(crate) fn write_rows(cx: &mut LowerCx<'_>, instr: &Instr) -> Result<(), LowerError> {
    let [buf, slot, pos, new] = [0, 1, 2, 3].map(|i| instr.operands[i]);
    let dims = dims_of(cx.ty(buf));
    let scalar = cx.scalar(instr, cx.ty(buf).dtype)?;
    let out = updated_buffer(cx, instr, scalar)?;
    let mut args: Vec<Arg> = [slot, pos, new]
        .into_iter()
        .map(|o| whole(cx.operand(o)))
        .collect();
    args.push(whole(out));
    let sizes = vec![
        ("n", SizeExpr::product(dims_of(cx.ty(new)))),
        ("inner", SizeExpr::product(dims[2..].iter().cloned())),
        ("slots", dims[0].clone()),
        ("slot_len", dims[1].clone()),
    ];
    let kernel = movement::write_rows(scalar, &cx.target.limits);
    cx.step(instr, kernel, args, vec![out], sizes)
}

/// The tensor a buffer-updating op (`write_tail`, `write_rows`) writes into.
/// On a state input (used by this instruction alone, as the verifier ensures)
/// it is the state's own buffer, updated in place; otherwise the result's
/// tensor, into which the buffer (operand 0) is copied first.
fn updated_buffer(
    cx: &mut LowerCx<'_>,
    instr: &Instr,
    scalar: ScalarType,
) -> Result<TensorId, LowerError> {
    let buf = instr.operands[0];
    let buf_t = cx.operand(buf);
    if cx.is_state_input(buf) {
        cx.alias(instr.results[0], buf_t);
        return Ok(buf_t);
    }
    let dims = dims_of(cx.ty(buf));
    let out = cx.value_tensor(instr.results[0]);
    let all = RowRange {
        n: SizeExpr::product(dims.clone()),
        inner: SizeExpr::product(dims[1..].iter().cloned()),
        rows: dims[0].clone(),
        start: SizeExpr::Const(0),
        len: dims[0].clone(),
    };
    let kernel = movement::slice(scalar, &cx.target.limits);
    move_rows(cx, instr, kernel, buf_t, out, all)?;
    Ok(out)
}

/// Rows `start..start + len` of a tensor with `rows` rows of `inner` elements;
/// `n` elements are moved.
struct RowRange {
    n: SizeExpr,
    inner: SizeExpr,
    rows: SizeExpr,
    start: SizeExpr,
    len: SizeExpr,
}

/// One `slice` (rows of `from` into `to`) or `slice_update` (`from` into rows
/// of `to`) dispatch over `range`.
fn move_rows(
    cx: &mut LowerCx<'_>,
    instr: &Instr,
    kernel: Result<Kernel, ShaderError>,
    from: TensorId,
    to: TensorId,
    range: RowRange,
) -> Result<(), LowerError> {
    let sizes = vec![
        ("n", range.n),
        ("inner", range.inner),
        ("a", range.rows),
        ("start", range.start),
        ("len", range.len),
    ];
    cx.step(instr, kernel, vec![whole(from), whole(to)], vec![to], sizes)
}
