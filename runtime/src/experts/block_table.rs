//! The MoE plan's block table computed on the host from the routing ids, as
//! the device's plan kernel writes it (see `seam_bundle::ExpertLayer`): the
//! runtime rewrites it from experts to slots without reading it back.

/// The table entry of a block without an expert (the plan's `NONE`).
pub(crate) const NO_EXPERT: u32 = u32::MAX;

/// One layer's blocks and the experts its tokens use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BlockTable {
    /// The expert of each block, [`NO_EXPERT`] past the last used block.
    pub blocks: Vec<u32>,
    /// The experts the ids name, each once, in order of first use.
    pub used: Vec<u32>,
}

impl BlockTable {
    /// The table of `blocks` blocks of `rows` pairs for `ids` over `experts`
    /// experts: each expert's pairs padded to whole blocks, in expert order;
    /// ids outside `0..experts` are dropped.
    pub(crate) fn new(ids: &[i32], experts: u32, rows: u32, blocks: usize) -> BlockTable {
        let mut count = vec![0u64; experts as usize];
        let mut used = Vec::new();
        for &id in ids {
            let Some(c) = u32::try_from(id)
                .ok()
                .and_then(|e| count.get_mut(e as usize))
            else {
                continue;
            };
            if *c == 0 {
                used.push(id as u32);
            }
            *c += 1;
        }
        let mut table = vec![NO_EXPERT; blocks];
        let mut b = 0usize;
        for (e, &c) in count.iter().enumerate() {
            let n = c.div_ceil(u64::from(rows)) as usize;
            for slot in table.iter_mut().skip(b).take(n) {
                *slot = e as u32;
            }
            b += n;
        }
        BlockTable {
            blocks: table,
            used,
        }
    }

    /// The table with each block's expert replaced by `slot_of(expert)`, or
    /// [`NO_EXPERT`] where that is `None` (the block is skipped).
    pub(crate) fn in_slots(&self, slot_of: impl Fn(u32) -> Option<u32>) -> Vec<u32> {
        self.blocks
            .iter()
            .map(|&e| {
                if e == NO_EXPERT {
                    NO_EXPERT
                } else {
                    slot_of(e).unwrap_or(NO_EXPERT)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_each_expert_to_whole_blocks_in_expert_order() {
        // 3 experts, blocks of 2: expert 2 has 3 pairs (2 blocks), expert 0
        // one (1 block), expert 1 none; -1 and 7 are dropped.
        let t = BlockTable::new(&[2, 0, 2, -1, 2, 7], 3, 2, 6);
        assert_eq!(t.blocks, vec![0, 2, 2, NO_EXPERT, NO_EXPERT, NO_EXPERT]);
        assert_eq!(t.used, vec![2, 0]);
        let slots = t.in_slots(|e| (e == 2).then_some(1));
        assert_eq!(
            slots,
            vec![NO_EXPERT, 1, 1, NO_EXPERT, NO_EXPERT, NO_EXPERT]
        );
    }

    #[test]
    fn never_writes_past_the_table() {
        let t = BlockTable::new(&[0, 0, 0, 1], 2, 1, 2);
        assert_eq!(t.blocks, vec![0, 0]);
    }
}
