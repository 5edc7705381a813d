//! Typing rules of the attention ops: `rope` and grouped-query `attention`,
//! over `[tokens, heads, head dim]` tensors.

use super::{single, Checker, Inferred};

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
    let (q, k, v) = (c.dims(0), c.dims(1), c.dims(2));
    c.dim_eq(1, "key head dim must match the query's", &k[2], &q[2])?;
    c.dim_eq(2, "value head dim must match the query's", &v[2], &q[2])?;
    c.dim_eq(
        2,
        "values must have as many positions as keys",
        &v[0],
        &k[0],
    )?;
    c.dim_eq(2, "values must have as many heads as keys", &v[1], &k[1])?;
    let grouped = matches!(
        (q[1].as_static(), k[1].as_static()),
        (Some(hq), Some(hkv)) if hkv > 0 && hq % hkv == 0
    );
    if !grouped {
        return Err(c.shape_err(
            Some(1),
            format!(
                "query heads ({}) must be a static multiple of kv heads ({})",
                q[1], k[1]
            ),
        ));
    }
    single(dt, c.ty(0).shape.clone())
}
