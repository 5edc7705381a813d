//! Numpy-style broadcasting of two shapes, the result shape of the
//! element-wise ops.

use crate::shape::Shape;

/// Broadcasts two shapes numpy-style over trailing dims: equal dims, or a static 1.
pub fn broadcast(a: &Shape, b: &Shape) -> Option<Shape> {
    let (a, b) = (a.dims(), b.dims());
    let rank = a.len().max(b.len());
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let da = (i + a.len()).checked_sub(rank).map(|j| &a[j]);
        let db = (i + b.len()).checked_sub(rank).map(|j| &b[j]);
        out.push(match (da, db) {
            (Some(x), None) | (None, Some(x)) => x.clone(),
            (Some(x), Some(y)) if x == y => x.clone(),
            (Some(x), Some(y)) if x.is_one() => y.clone(),
            (Some(x), Some(y)) if y.is_one() => x.clone(),
            _ => return None,
        });
    }
    Some(Shape(out))
}
