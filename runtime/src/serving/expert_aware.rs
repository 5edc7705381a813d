//! Expert-aware batching: each step feeds the running sequences whose next
//! tokens share experts, so the step touches as few `(head, expert)` pairs as
//! it can, bounded so that no sequence starves.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use super::policy::{FirstComeFirstServed, Ready, SchedulePolicy, Waiting};

/// The fairness bound [`ExpertAware::default`] uses: a sequence passed over
/// this many steps in a row is fed next.
pub const DEFAULT_MAX_SKIPS: u32 = 4;

/// Forms each step's batch to minimise the unique `(head, expert)` pairs its
/// tokens use (a pre-gating router's choices, known before the step runs
/// from the bundle's [`super::ROUTE`]). Admission stays first come first
/// served (a slot goes to the longest-waiting request); among the running
/// sequences, a step feeds:
///
/// 1. **Fairness first:** every sequence skipped `max_skips` steps in a row
///    (most skipped first, then by arrival) — so a running sequence waits at
///    most `max_skips` steps between feeds, plus the steps needed to serve
///    those also due when more than a batch are due at once;
/// 2. then, greedily until the batch is full, the sequence adding the fewest
///    pairs not yet in the step (ties: the one whose new pairs the most
///    candidates also use, then the most skipped, then the earliest
///    arrival) — filled once from the due sequences alone and once from
///    each other candidate taken first, keeping the smallest union.
///
/// The batch is always filled while sequences are ready: fewer tokens would
/// touch fewer experts but lose throughput. Without routing (a model whose
/// routers sit inside its layers has no `route`) it feeds the first `batch`
/// in admission order, as [`super::FirstComeFirstServed`] does.
#[derive(Copy, Clone, Debug)]
pub struct ExpertAware {
    /// Steps a sequence may be passed over in a row before it is fed first.
    pub max_skips: u32,
}

impl Default for ExpertAware {
    fn default() -> Self {
        ExpertAware {
            max_skips: DEFAULT_MAX_SKIPS,
        }
    }
}

impl SchedulePolicy for ExpertAware {
    fn next(&mut self, waiting: &[Waiting<'_>]) -> Option<usize> {
        FirstComeFirstServed.next(waiting)
    }

    fn pick(&mut self, ready: &[Ready<'_>], batch: usize) -> Vec<usize> {
        let Some(routes) = ready.iter().map(|r| r.routes).collect::<Option<Vec<_>>>() else {
            return FirstComeFirstServed.pick(ready, batch);
        };
        let pairs: Vec<BTreeSet<(u32, u32)>> = routes
            .iter()
            .map(|tokens| tokens.iter().flat_map(|t| t.iter().copied()).collect())
            .collect();
        let mut due: Vec<usize> = (0..ready.len())
            .filter(|&i| ready[i].skipped >= self.max_skips)
            .collect();
        due.sort_by_key(|&i| (Reverse(ready[i].skipped), ready[i].arrival));
        due.truncate(batch);
        let greedy = Greedy::new(ready, &pairs);
        // The greedy fill from the due sequences alone, and from each other
        // candidate added first: the smallest union wins (the plain fill on
        // ties), which escapes a poor first choice among equals.
        let mut best = greedy.fill(due.clone(), batch);
        if due.len() < batch {
            for seed in (0..ready.len()).filter(|i| !due.contains(i)) {
                let mut start = due.clone();
                start.push(seed);
                let other = greedy.fill(start, batch);
                if other.1 < best.1 {
                    best = other;
                }
            }
        }
        best.0
    }

    fn uses_routing(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "expert-aware"
    }
}

/// The greedy fill of a batch over candidates' pair sets.
struct Greedy<'a, 'r> {
    ready: &'a [Ready<'r>],
    pairs: &'a [BTreeSet<(u32, u32)>],
    /// How many candidates use each pair.
    users: BTreeMap<(u32, u32), usize>,
}

impl<'a, 'r> Greedy<'a, 'r> {
    /// The fill over candidates `ready` using `pairs`.
    fn new(ready: &'a [Ready<'r>], pairs: &'a [BTreeSet<(u32, u32)>]) -> Self {
        let mut users: BTreeMap<(u32, u32), usize> = BTreeMap::new();
        for p in pairs.iter().flatten() {
            *users.entry(*p).or_default() += 1;
        }
        Greedy {
            ready,
            pairs,
            users,
        }
    }

    /// `chosen` filled up to `batch`, each time with the candidate adding
    /// the fewest pairs to the union (ties: the one whose new pairs the most
    /// candidates also use, then the most skipped, then the earliest
    /// arrival); and the union's size.
    fn fill(&self, mut chosen: Vec<usize>, batch: usize) -> (Vec<usize>, usize) {
        let mut union: BTreeSet<(u32, u32)> = BTreeSet::new();
        for &i in &chosen {
            union.extend(&self.pairs[i]);
        }
        while chosen.len() < batch {
            let best = (0..self.ready.len())
                .filter(|i| !chosen.contains(i))
                .min_by_key(|&i| {
                    let new: Vec<&(u32, u32)> = self.pairs[i].difference(&union).collect();
                    let shared: usize = new.iter().map(|p| self.users[*p]).sum();
                    let r = &self.ready[i];
                    (new.len(), Reverse(shared), Reverse(r.skipped), r.arrival)
                });
            let Some(i) = best else { break };
            union.extend(&self.pairs[i]);
            chosen.push(i);
        }
        (chosen, union.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serving::routing::TokenRoute;

    /// One token using experts `experts` of heads 0 and 1 (top-1 per head).
    fn token(experts: [u32; 2]) -> TokenRoute {
        vec![(0, experts[0]), (1, experts[1])].into_boxed_slice()
    }

    fn ready<'a>(routes: &'a [Vec<TokenRoute>], skipped: &[u32]) -> Vec<Ready<'a>> {
        routes
            .iter()
            .zip(skipped)
            .enumerate()
            .map(|(k, (r, &skipped))| Ready {
                id: k as u64,
                arrival: k as u64,
                skipped,
                routes: Some(r),
            })
            .collect()
    }

    fn sorted(mut v: Vec<usize>) -> Vec<usize> {
        v.sort_unstable();
        v
    }

    #[test]
    fn picks_the_batch_touching_the_fewest_experts() {
        // 0 and 2 share experts (0, 1); 1 and 3 use others; 4 is a prompt
        // chunk of two tokens over experts 0..4.
        let routes = vec![
            vec![token([0, 1])],
            vec![token([2, 3])],
            vec![token([0, 1])],
            vec![token([5, 6])],
            vec![token([0, 1]), token([3, 4])],
        ];
        let r = ready(&routes, &[0; 5]);
        let mut policy = ExpertAware::default();
        // Two: 0 and 2 (2 pairs) rather than the first two (4 pairs).
        assert_eq!(sorted(policy.pick(&r, 2)), [0, 2]);
        // Three: 0, 2, then 1, 3 or 4 (2 more pairs each): 1 arrived first.
        assert_eq!(sorted(policy.pick(&r, 3)), [0, 1, 2]);
        // More than ready: all of them.
        assert_eq!(sorted(policy.pick(&r, 8)), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_cheap_first_choice_does_not_trap_the_batch() {
        // Filling from the cheapest (0: 2 pairs) gives 6 pairs; starting
        // from 1, whose 4 pairs 2 shares, gives 4.
        let wide = || vec![token([1, 1]), token([2, 2])];
        let routes = vec![vec![token([0, 0])], wide(), wide()];
        let r = ready(&routes, &[0; 3]);
        assert_eq!(sorted(ExpertAware::default().pick(&r, 2)), [1, 2]);
    }

    #[test]
    fn a_sequence_skipped_max_skips_steps_is_fed_first() {
        let routes = vec![
            vec![token([0, 1])],
            vec![token([2, 3])],
            vec![token([0, 1])],
            vec![token([4, 5])],
        ];
        let mut policy = ExpertAware { max_skips: 3 };
        // 3 has waited 3 steps: it goes first, then 0 (all the others add
        // 2 pairs; 0's are also 2's).
        let r = ready(&routes, &[0, 2, 0, 3]);
        assert_eq!(policy.pick(&r, 2), [3, 0]);
        // Below the bound it would not have been chosen.
        let r = ready(&routes, &[0, 2, 0, 2]);
        assert_eq!(sorted(policy.pick(&r, 2)), [0, 2]);
        // More due than the batch: most skipped, then earliest arrival.
        let r = ready(&routes, &[4, 3, 5, 4]);
        assert_eq!(policy.pick(&r, 2), [2, 0]);
    }

    #[test]
    fn simulated_steps_never_skip_a_sequence_more_than_the_bound() {
        // Sixteen sequences, eight fed per step, most sharing experts with
        // 0..8 and so favoured: none waits more than max_skips steps.
        let routes: Vec<Vec<TokenRoute>> = (0..16u32)
            .map(|k| vec![token(if k < 8 { [0, 0] } else { [k, k] })])
            .collect();
        let mut policy = ExpertAware { max_skips: 2 };
        let mut skipped = [0u32; 16];
        for _ in 0..20 {
            let r = ready(&routes, &skipped);
            let chosen = policy.pick(&r, 8);
            assert_eq!(chosen.len(), 8);
            for (k, s) in skipped.iter_mut().enumerate() {
                *s = if chosen.contains(&k) { 0 } else { *s + 1 };
                assert!(*s <= 2, "sequence {k} skipped {s} steps");
            }
        }
    }

    #[test]
    fn without_routing_it_feeds_in_admission_order() {
        let r: Vec<Ready<'_>> = (0..5)
            .map(|k| Ready {
                id: k,
                arrival: k,
                skipped: 0,
                routes: None,
            })
            .collect();
        assert_eq!(ExpertAware::default().pick(&r, 3), [0, 1, 2]);
    }
}
