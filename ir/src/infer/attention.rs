//! Typing rules of the attention ops: `rope` and grouped-query `attention`,
//! over `[tokens, heads, head dim]` tensors.

use super::{single, Checker, Inferred, TypeError};

/// `rope`: a float `x[T, H, Dh]` with a static, even head dim and integer
/// positions `pos[T]`; the result is `x`'s type.
pub(super) fn rope(c: &Checker<'_>) -> Inferred {
    let dt = c.float(0)?;
    c.rank(0, 3)?;
    c.int(1)?;
    c.rank(1, 1)?;
    let d = c.dims(0);
    c.dim_eq(
        1,
        "positions must match the token dim",
        &c.dims(1)[0],
        &d[0],
    )?;
    if !matches!(d[2].as_static(), Some(h) if h % 2 == 0) {
        return Err(c.shape_err(
            Some(0),
            format!("head dim must be static and even, found {}", d[2]),
        ));
    }
    single(dt, c.ty(0).shape.clone())
}

/// `attention`: float `q[T, Hq, Dh]`, `k[S, Hkv, Dh]` and `v[S, Hkv, Dh]` of one
/// dtype, `Hq` a static multiple of `Hkv`; the result is `q`'s type.
pub(super) fn attention(c: &Checker<'_>) -> Inferred {
    let dt = c.float(0)?;
    for i in 0..3 {
        c.same_dtype(i, 0)?;
        c.rank(i, 3)?;
    }
    grouped_kv(c, 1)?;
    single(dt, c.ty(0).shape.clone())
}

/// `pooled_attention`: float `q[T, Hq, Dh]`, `k_pool[S, L, Hkv, Dh]` and
/// `v_pool[S, L, Hkv, Dh]` of one dtype, `Hq` a static multiple of `Hkv`, and
/// i32 `slot[T]`, `pos[T]`; the result is `q`'s type.
pub(super) fn pooled_attention(c: &Checker<'_>) -> Inferred {
    let dt = c.float(0)?;
    c.rank(0, 3)?;
    for i in 1..3 {
        c.same_dtype(i, 0)?;
        c.rank(i, 4)?;
    }
    let tokens = &c.dims(0)[0];
    c.token_indices(3, "slots", tokens)?;
    c.token_indices(4, "positions", tokens)?;
    c.dim_eq(
        2,
        "the value pool must have as many slots as the key pool",
        &c.dims(2)[0],
        &c.dims(1)[0],
    )?;
    grouped_kv(c, 1)?;
    single(dt, c.ty(0).shape.clone())
}

/// Keys (operand `k`) and values (operand `k + 1`) of one shape, whose last
/// two dims `[Hkv, Dh]` fit the query `q[T, Hq, Dh]` (operand 0): the query's
/// head dim, and `Hq` a static multiple of `Hkv`.
fn grouped_kv(c: &Checker<'_>, k: usize) -> Result<(), TypeError> {
    let (q, kd, vd) = (c.dims(0), c.dims(k), c.dims(k + 1));
    let (kh, kdh) = (&kd[kd.len() - 2], &kd[kd.len() - 1]);
    c.dim_eq(k, "key head dim must match the query's", kdh, &q[2])?;
    c.dim_eq(
        k + 1,
        "value head dim must match the query's",
        &vd[vd.len() - 1],
        &q[2],
    )?;
    for (j, (x, y)) in vd.iter().zip(kd).enumerate().take(kd.len() - 2) {
        let what = if j + 3 == kd.len() {
            "values must have as many positions as keys".to_string()
        } else {
            format!("value dim {j} must match the keys'")
        };
        c.dim_eq(k + 1, &what, x, y)?;
    }
    c.dim_eq(
        k + 1,
        "values must have as many heads as keys",
        &vd[vd.len() - 2],
        kh,
    )?;
    let grouped = matches!(
        (q[1].as_static(), kh.as_static()),
        (Some(hq), Some(hkv)) if hkv > 0 && hq % hkv == 0
    );
    if !grouped {
        return Err(c.shape_err(
            Some(k),
            format!(
                "query heads ({}) must be a static multiple of kv heads ({kh})",
                q[1]
            ),
        ));
    }
    Ok(())
}
