//! Greedy, lifetime-based buffer assignment.
//!
//! Each tensor lives from the step that writes it first to the step that reads it
//! last (inputs from before the first step, outputs to after the last). Tensors are
//! placed in definition order; a tensor takes the smallest free buffer that is
//! large enough (growing the largest free one if none is), and its buffer is
//! freed after its last use. Sizes are bytes at the symbolic dims' bounds, since
//! buffers are allocated once per session at the bounds.

/// How one tensor is used by the steps of a function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorUse {
    /// Bytes at the dims' bounds.
    pub bytes: u64,
    /// First step that writes it; `None` for function inputs (live from the start).
    pub first_write: Option<usize>,
    /// Last step that reads it; `None` when only an output reads it (live to the end).
    pub last_read: Option<usize>,
    /// Returned by the function (kept to the end, never shared with a later tensor).
    pub is_output: bool,
}

impl TensorUse {
    /// The time span `[start, end]` in which the tensor occupies its buffer, with
    /// step `s` at time `s + 1`, inputs from time 0 and outputs to past the last step.
    pub fn lifetime(&self, steps: usize) -> (usize, usize) {
        let start = self.first_write.map_or(0, |s| s + 1);
        let end = if self.is_output {
            steps + 2
        } else {
            self.last_read.map_or(start, |s| s + 1)
        };
        (start, end)
    }
}

/// The result of planning: a buffer per tensor and each buffer's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufferPlan {
    /// Buffer index of each tensor, in the order given.
    pub buffer_of: Vec<usize>,
    /// Size in bytes of each buffer.
    pub buffer_bytes: Vec<u64>,
}

impl BufferPlan {
    /// Total bytes of all buffers: the peak activation memory.
    pub fn total_bytes(&self) -> u64 {
        self.buffer_bytes.iter().sum()
    }
}

/// Assigns buffers to tensors, reusing buffers across non-overlapping lifetimes.
/// `steps` is the number of steps (dispatches) of the function.
pub fn plan_buffers(tensors: &[TensorUse], steps: usize) -> BufferPlan {
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by_key(|&i| (tensors[i].lifetime(steps).0, i));

    let mut buffer_of = vec![usize::MAX; tensors.len()];
    let mut buffer_bytes: Vec<u64> = Vec::new();
    // Buffers in use, with the time after which they become free.
    let mut busy: Vec<(usize, usize)> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    for &i in &order {
        let t = &tensors[i];
        let (now, until) = t.lifetime(steps);
        busy.retain(|&(b, until)| {
            if until < now {
                free.push(b);
                false
            } else {
                true
            }
        });
        let fitting = free
            .iter()
            .enumerate()
            .filter(|(_, &b)| buffer_bytes[b] >= t.bytes)
            .min_by_key(|(_, &b)| (buffer_bytes[b], b))
            .map(|(pos, _)| pos);
        let growable = || {
            free.iter()
                .enumerate()
                .max_by_key(|(_, &b)| (buffer_bytes[b], usize::MAX - b))
                .map(|(pos, _)| pos)
        };
        let b = match fitting.or_else(growable) {
            Some(pos) => {
                let b = free.swap_remove(pos);
                buffer_bytes[b] = buffer_bytes[b].max(t.bytes);
                b
            }
            None => {
                buffer_bytes.push(t.bytes);
                buffer_bytes.len() - 1
            }
        };
        buffer_of[i] = b;
        busy.push((b, until));
    }
    BufferPlan {
        buffer_of,
        buffer_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(bytes: u64, w: Option<usize>, r: Option<usize>) -> TensorUse {
        TensorUse {
            bytes,
            first_write: w,
            last_read: r,
            is_output: false,
        }
    }

    /// Two tensors overlap in time when their [start, end] ranges intersect.
    fn overlap(a: &TensorUse, b: &TensorUse, steps: usize) -> bool {
        let s = |t: &TensorUse| t.first_write.map_or(0, |s| s + 1);
        let e = |t: &TensorUse| {
            if t.is_output {
                steps + 2
            } else {
                t.last_read.map_or(s(t), |x| x + 1)
            }
        };
        s(a) <= e(b) && s(b) <= e(a)
    }

    #[test]
    fn a_chain_needs_two_buffers() {
        // x -> s0 -> a -> s1 -> b -> s2 -> c -> s3 -> d (output)
        let ts = vec![
            t(100, None, Some(0)),
            t(100, Some(0), Some(1)),
            t(100, Some(1), Some(2)),
            t(100, Some(2), Some(3)),
            TensorUse {
                is_output: true,
                ..t(100, Some(3), None)
            },
        ];
        let p = plan_buffers(&ts, 4);
        assert_eq!(p.buffer_bytes.len(), 2, "{p:?}");
        assert_eq!(p.total_bytes(), 200);
    }

    #[test]
    fn overlapping_tensors_never_share_a_buffer() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..200 {
            let steps = rng.random_range(1..20);
            let ts: Vec<TensorUse> = (0..rng.random_range(1..30))
                .map(|_| {
                    let w = rng.random_range(0..steps);
                    let r = rng.random_range(w..steps);
                    TensorUse {
                        bytes: rng.random_range(1..1000),
                        first_write: rng.random_bool(0.9).then_some(w),
                        last_read: rng.random_bool(0.9).then_some(r),
                        is_output: rng.random_bool(0.1),
                    }
                })
                .collect();
            let p = plan_buffers(&ts, steps);
            for i in 0..ts.len() {
                assert!(p.buffer_bytes[p.buffer_of[i]] >= ts[i].bytes);
                for j in 0..i {
                    if p.buffer_of[i] == p.buffer_of[j] {
                        assert!(
                            !overlap(&ts[i], &ts[j], steps),
                            "{:?} and {:?} share",
                            ts[i],
                            ts[j]
                        );
                    }
                }
            }
        }
    }
}
