//! All-reduce scheduling after extraction: a pure reordering of a function's
//! body that gives split all-reduces ([`crate::optimize::rules::comm`]) room to
//! overlap compute.
//!
//! [`schedule_comm`] is a list scheduler over the body's dataflow: among the
//! instructions whose operands are all computed it emits
//! 1. an `all_reduce_start` first — so each start comes right after the
//!    instruction producing its operand;
//! 2. otherwise the ready compute instruction that came first in the input order;
//! 3. an `all_reduce_wait` (the first in input order) only when no other
//!    instruction is ready — so each wait comes right before the first
//!    instruction that cannot run without it.
//!
//! Hence every instruction between a start and its wait does not depend on the
//! wait's result: the reduction overlaps exactly the compute the model's
//! dataflow allows. The dataflow itself is never changed. In a standard
//! residual every later module reads the reduced sum, so nothing is ready and
//! each wait directly follows its start; in a ladder residual the next module
//! reads a residual without the pending sum, so it runs between start and wait.
//! A body without waits comes back unchanged.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use seam_ir::{Function, Op, Operand, ValueId};

/// How an instruction is prioritised.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Kind {
    Start,
    Compute,
    Wait,
}

fn kind(op: &Op) -> Kind {
    match op {
        Op::AllReduceStart { .. } => Kind::Start,
        Op::AllReduceWait => Kind::Wait,
        _ => Kind::Compute,
    }
}

/// How many instructions that compute at run time (read some value, not only
/// params) lie between an `all_reduce_start` and its wait, over all pairs.
pub fn overlap(func: &Function) -> usize {
    let mut total = 0;
    for (i, instr) in func.body.iter().enumerate() {
        if kind(&instr.op) != Kind::Start {
            continue;
        }
        let started = instr.results[0];
        let wait = func.body[i + 1..]
            .iter()
            .position(|w| kind(&w.op) == Kind::Wait && w.operands == [Operand::Value(started)]);
        if let Some(w) = wait {
            total += func.body[i + 1..i + 1 + w]
                .iter()
                .filter(|x| x.operands.iter().any(|o| matches!(o, Operand::Value(_))))
                .count();
        }
    }
    total
}

/// `func` with its body reordered as the module docs describe.
pub fn schedule_comm(func: &Function) -> Function {
    if !func.body.iter().any(|i| kind(&i.op) == Kind::Wait) {
        return func.clone();
    }
    let n = func.body.len();
    let mut producer: HashMap<ValueId, usize> = HashMap::new();
    for (i, instr) in func.body.iter().enumerate() {
        for &r in &instr.results {
            producer.insert(r, i);
        }
    }
    let mut pending = vec![0usize; n];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, instr) in func.body.iter().enumerate() {
        let mut deps: Vec<usize> = instr
            .operands
            .iter()
            .filter_map(|o| match o {
                Operand::Value(v) => producer.get(v).copied(),
                Operand::Param(_) => None,
            })
            .collect();
        deps.sort_unstable();
        deps.dedup();
        pending[i] = deps.len();
        for d in deps {
            users[d].push(i);
        }
    }
    let mut ready: [BinaryHeap<Reverse<usize>>; 3] = Default::default();
    let slot = |k: Kind| match k {
        Kind::Start => 0,
        Kind::Compute => 1,
        Kind::Wait => 2,
    };
    for (i, instr) in func.body.iter().enumerate() {
        if pending[i] == 0 {
            ready[slot(kind(&instr.op))].push(Reverse(i));
        }
    }
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.iter_mut().find_map(BinaryHeap::pop) {
        order.push(i);
        for &u in &users[i] {
            pending[u] -= 1;
            if pending[u] == 0 {
                ready[slot(kind(&func.body[u].op))].push(Reverse(u));
            }
        }
    }
    debug_assert_eq!(order.len(), n, "the body is in dataflow order");
    let mut out = func.clone();
    out.body = order.into_iter().map(|i| func.body[i].clone()).collect();
    out
}
