//! Expert parallelism for `moe`: each rank holds `E/N` experts of every stack
//! and sees every token (tokens are replicated); a token's route to an expert
//! another rank holds gets weight zero here, and its id is mapped into the
//! rank's local stack. The ranks' outputs are partial sums, added by the
//! `all_reduce` that follows. The mapping is data — two tables per expert
//! stack, `[E, 1]`, gathered by the routed ids — so every rank runs the same
//! function and only its weights differ.

use seam_ir::{DType, ParamDecl, ParamId, Tensor, TensorError, TensorType};

use super::layout::Split;

/// What a table added for expert parallelism holds, per global expert id.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Table {
    /// The expert's id in the rank's stack (0 where another rank holds it).
    LocalId,
    /// 1 where the rank holds the expert, 0 elsewhere.
    Held,
}

/// The tables the rank model adds, after the model's own parameters.
pub(crate) struct ExpertTables {
    /// The model's own parameter count: the first added table's index.
    base: usize,
    /// The added parameters, each with what it holds and over how many experts.
    added: Vec<(ParamDecl, Table, u64)>,
}

impl ExpertTables {
    /// No tables yet, for a model of `params` parameters.
    pub(crate) fn new(params: usize) -> Self {
        ExpertTables {
            base: params,
            added: Vec::new(),
        }
    }

    /// The tables of the expert stack named `stack` of `experts` experts: the
    /// local ids and the held mask, as `f32[E, 1]` parameters (weights a
    /// bundle stores; the ids are exact in `f32` and cast where read).
    pub(crate) fn for_stack(&mut self, stack: &str, experts: u64) -> (ParamId, ParamId) {
        (
            self.table(format!("{stack}.rank_local_ids"), Table::LocalId, experts),
            self.table(format!("{stack}.rank_held"), Table::Held, experts),
        )
    }

    fn table(&mut self, name: String, table: Table, experts: u64) -> ParamId {
        let index = match self.added.iter().position(|(p, ..)| p.name == name) {
            Some(i) => i,
            None => {
                let ty = TensorType::new(DType::F32, [experts, 1]);
                self.added.push((ParamDecl::new(name, ty), table, experts));
                self.added.len() - 1
            }
        };
        ParamId((self.base + index) as u32)
    }

    /// The added parameters' declarations, in order.
    pub(crate) fn decls(&self) -> impl Iterator<Item = &ParamDecl> {
        self.added.iter().map(|(p, ..)| p)
    }

    /// Rank `rank`'s tensors of the added parameters, in order.
    pub(crate) fn tensors(&self, rank: u64, ranks: u64) -> Result<Vec<Tensor>, TensorError> {
        self.added
            .iter()
            .map(|(p, table, experts)| {
                let split = Split {
                    axis: 0,
                    blocks: ranks,
                };
                let (lo, hi) = split.range(*experts, rank, ranks);
                let values = (0..*experts)
                    .map(|e| match (table, (lo..hi).contains(&e)) {
                        (Table::LocalId, true) => (e - lo) as f32,
                        (Table::Held, true) => 1.0,
                        (_, false) => 0.0,
                    })
                    .collect();
                Tensor::from_f32_vec(p.ty.dtype, vec![*experts as usize, 1], values)
            })
            .collect()
    }
}
