//! Laying out one batched step: which tokens of which sequences it feeds
//! (decode tokens first, then prompt chunks up to the token budget) and
//! which rows it samples.

use super::sequence::Sequence;

/// The inputs of one `step` run and what they mean.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StepPlan {
    /// Token ids.
    pub ids: Vec<i32>,
    /// Each token's pool slot.
    pub slots: Vec<i32>,
    /// Each token's position in its sequence.
    pub positions: Vec<i32>,
    /// The tokens whose logits are sampled (each sampled sequence's last).
    pub rows: Vec<i32>,
    /// For each row, the index (into the running sequences) it samples for.
    pub sampled: Vec<usize>,
    /// Tokens fed per running sequence (by index), for those fed at all.
    pub fed: Vec<(usize, usize)>,
}

/// Plans a step over the sequences `chosen` (indices into `running`, in
/// admission order) feeding at most `budget` tokens: every decoding
/// sequence's last token (one each), then prompt chunks in admission order
/// while the budget lasts. A sequence is sampled when the step feeds its last
/// prompt token or a decode token. The caller keeps `chosen.len() <=
/// budget`, so every decoding sequence fits.
pub(crate) fn plan_step(running: &[Sequence], chosen: &[usize], budget: usize) -> StepPlan {
    let mut plan = StepPlan::default();
    let chosen = || chosen.iter().map(|&i| (i, &running[i]));
    for (i, s) in chosen() {
        if let (Some(token), 0) = (s.last, s.prompt_left()) {
            if plan.ids.len() < budget {
                plan.push(s, &[token], s.fed);
                plan.sample(i);
                plan.fed.push((i, 1));
            }
        }
    }
    for (i, s) in chosen() {
        let room = budget - plan.ids.len();
        let chunk = s.prompt_left().min(room);
        if chunk == 0 {
            continue;
        }
        plan.push(s, &s.prompt[s.fed..s.fed + chunk], s.fed);
        if chunk == s.prompt_left() {
            plan.sample(i);
        }
        plan.fed.push((i, chunk));
    }
    plan
}

impl StepPlan {
    /// Adds `tokens` of `s` at positions from `start`.
    fn push(&mut self, s: &Sequence, tokens: &[i32], start: usize) {
        for (k, &token) in tokens.iter().enumerate() {
            self.ids.push(token);
            self.slots.push(s.slot as i32);
            self.positions.push((start + k) as i32);
        }
    }

    /// Samples running sequence `i` at the last token pushed.
    fn sample(&mut self, i: usize) {
        self.rows.push(self.ids.len() as i32 - 1);
        self.sampled.push(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{Sampler, Sampling};
    use crate::serving::Request;

    fn sequence(id: u64, slot: u32, prompt: &[i32], fed: usize, last: Option<i32>) -> Sequence {
        let request = Request {
            prompt: prompt.to_vec(),
            max_new_tokens: 8,
            sampling: Sampling::Greedy,
            stop_ids: Vec::new(),
        };
        let mut s = Sequence::new(
            id,
            slot,
            request,
            Sampler::new(Sampling::Greedy).unwrap(),
            id,
        );
        s.fed = fed;
        s.last = last;
        s
    }

    #[test]
    fn decode_tokens_come_first_then_prompt_chunks_within_the_budget() {
        let running = [
            sequence(1, 2, &[10, 11, 12, 13, 14], 0, None),
            sequence(2, 0, &[20, 21], 2, Some(99)),
            sequence(3, 1, &[30, 31, 32], 0, None),
        ];
        let plan = plan_step(&running, &[0, 1, 2], 6);
        // Sequence 2 decodes 99 at position 2; sequence 1's prompt takes the
        // other 5 tokens and completes; sequence 3 waits for the next step.
        assert_eq!(plan.ids, [99, 10, 11, 12, 13, 14]);
        assert_eq!(plan.slots, [0, 2, 2, 2, 2, 2]);
        assert_eq!(plan.positions, [2, 0, 1, 2, 3, 4]);
        assert_eq!(plan.rows, [0, 5]);
        assert_eq!(plan.sampled, [1, 0]);
        assert_eq!(plan.fed, [(1, 1), (0, 5)]);
    }

    #[test]
    fn only_the_chosen_sequences_are_fed() {
        let running = [
            sequence(1, 2, &[10, 11], 2, Some(5)),
            sequence(2, 0, &[20, 21], 2, Some(99)),
            sequence(3, 1, &[30, 31, 32], 0, None),
        ];
        let plan = plan_step(&running, &[1, 2], 8);
        assert_eq!(plan.ids, [99, 30, 31, 32]);
        assert_eq!(plan.sampled, [1, 2]);
        assert_eq!(plan.fed, [(1, 1), (2, 3)]);
    }

    #[test]
    fn a_prompt_split_across_steps_is_sampled_only_at_its_end() {
        let running = [sequence(1, 0, &[1, 2, 3, 4, 5], 0, None)];
        let first = plan_step(&running, &[0], 3);
        assert_eq!(
            (first.ids.as_slice(), first.rows.len()),
            (&[1, 2, 3][..], 0)
        );
        let running = [sequence(1, 0, &[1, 2, 3, 4, 5], 3, None)];
        let second = plan_step(&running, &[0], 3);
        assert_eq!(second.ids, [4, 5]);
        assert_eq!(second.positions, [3, 4]);
        assert_eq!(second.rows, [1]);
    }
}
