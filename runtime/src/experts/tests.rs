//! The policies on hand-made traces whose hits were counted by hand, and
//! property tests: Belady never below LRU, and optimal on tiny traces.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

/// Keys of layer 0 from expert numbers.
fn layer0(experts: &[u32]) -> Vec<ExpertKey> {
    experts.iter().map(|&e| ExpertKey::new(0, e)).collect()
}

/// The counters of replaying `keys` under `policy` with `capacity`.
fn replay(keys: Vec<ExpertKey>, capacity: usize, policy: PolicyKind) -> Counters {
    let replay = Replay::new(keys);
    let mut cache = ExpertCache::new(replay.layers(), capacity, policy.build(16)).unwrap();
    replay.run(&mut cache).unwrap()
}

/// Hits of `experts` (layer 0) under `policy` with `capacity`.
fn hits(experts: &[u32], capacity: usize, policy: PolicyKind) -> u64 {
    replay(layer0(experts), capacity, policy).hits
}

/// The textbook reference string (Silberschatz), 3 frames: OPT faults 9 times
/// (11 hits of 20), LRU 12 times (8 hits).
const CLASSIC: [u32; 20] = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];

#[test]
fn classic_belady_example() {
    assert_eq!(hits(&CLASSIC, 3, PolicyKind::Belady), 11);
    assert_eq!(hits(&CLASSIC, 3, PolicyKind::Lru), 8);
    let c = replay(layer0(&CLASSIC), 3, PolicyKind::Belady);
    assert_eq!(
        (c.accesses, c.misses, c.evictions, c.prefetches),
        (20, 9, 6, 0)
    );
}

#[test]
fn belady_ties_go_to_the_least_recently_used() {
    // Capacity 2, at `c` both residents are never used again: the least
    // recently used goes, whatever its slot.
    for (trace, kept, gone) in [([1, 2, 1, 3], 1, 2), ([2, 1, 2, 3], 2, 1)] {
        let mut cache = ExpertCache::new(1, 2, PolicyKind::Belady.build(0)).unwrap();
        for key in layer0(&trace) {
            cache.access(key, &Future::default()).unwrap();
        }
        assert_eq!(cache.slot_of(ExpertKey::new(0, kept)), Some(0), "{trace:?}");
        assert_eq!(cache.slot_of(ExpertKey::new(0, gone)), None, "{trace:?}");
        assert_eq!(cache.slot_of(ExpertKey::new(0, 3)), Some(1), "{trace:?}");
    }
}

#[test]
fn never_used_again_is_farthest() {
    // Capacity 3; at 4 the residents are 1 (used at +2), 2 (+1) and 3 (never,
    // yet the most recent): Belady evicts 3 and hits 2 and 1; LRU evicts 1,
    // hits 2, then misses 1.
    let trace = [1, 2, 3, 4, 2, 1];
    assert_eq!(hits(&trace, 3, PolicyKind::Belady), 2);
    assert_eq!(hits(&trace, 3, PolicyKind::Lru), 1);
}

#[test]
fn capacity_is_per_layer() {
    // One slot per layer: two layers alternating each keep their expert.
    let keys = vec![
        ExpertKey::new(0, 1),
        ExpertKey::new(1, 1),
        ExpertKey::new(0, 1),
        ExpertKey::new(1, 2),
        ExpertKey::new(0, 1),
    ];
    let replay = Replay::new(keys);
    let mut cache = ExpertCache::new(2, 1, PolicyKind::Lru.build(0)).unwrap();
    let total = replay.run(&mut cache).unwrap();
    assert_eq!((total.accesses, total.hits, total.evictions), (5, 2, 1));
    let l0 = cache.layer_counters(0).unwrap();
    let l1 = cache.layer_counters(1).unwrap();
    assert_eq!((l0.accesses, l0.hits, l0.misses), (3, 2, 1));
    assert_eq!(
        (l1.accesses, l1.hits, l1.misses, l1.evictions),
        (2, 0, 2, 1)
    );
    assert!(cache.layer_counters(2).is_none());
}

#[test]
fn a_miss_reports_the_slot_and_the_evicted_expert() {
    let mut cache = ExpertCache::new(1, 2, PolicyKind::Lru.build(0)).unwrap();
    let [a, b, c] = [1, 2, 3].map(|e| ExpertKey::new(0, e));
    let none = Future::default();
    let first = cache.access(a, &none).unwrap();
    let load = Load {
        key: a,
        slot: 0,
        evicted: None,
    };
    assert_eq!(first.outcome, Outcome::Miss(load));
    assert!(first.prefetches.is_empty());
    cache.access(b, &none).unwrap();
    assert_eq!(
        cache.access(a, &none).unwrap().outcome,
        Outcome::Hit { slot: 0 }
    );
    let load = Load {
        key: c,
        slot: 1,
        evicted: Some(b),
    };
    assert_eq!(cache.access(c, &none).unwrap().outcome, Outcome::Miss(load));
}

#[test]
fn lookahead_prefetches_into_free_slots_and_over_farther_residents() {
    // Capacity 2 on 1 2 3 1, window 16. At 1: miss, 2 prefetched into the
    // free slot (3 may not displace 2, used sooner). At 2: hit, 3 replaces 1
    // (used later). At 3: hit, 1 replaces 2 (never used again). At 1: hit.
    let keys = layer0(&[1, 2, 3, 1]);
    let mut cache = ExpertCache::new(1, 2, PolicyKind::Lookahead.build(16)).unwrap();
    let first = cache.access(keys[0], &Future::new(&keys[1..])).unwrap();
    let load = Load {
        key: keys[1],
        slot: 1,
        evicted: None,
    };
    assert_eq!(first.prefetches, vec![load]);
    let second = cache.access(keys[1], &Future::new(&keys[2..])).unwrap();
    assert_eq!(second.outcome, Outcome::Hit { slot: 1 });
    let load = Load {
        key: keys[2],
        slot: 0,
        evicted: Some(keys[0]),
    };
    assert_eq!(second.prefetches, vec![load]);
    for now in 2..4 {
        let access = cache
            .access(keys[now], &Future::new(&keys[now + 1..]))
            .unwrap();
        assert!(matches!(access.outcome, Outcome::Hit { .. }), "{now}");
    }
    let c = cache.counters();
    assert_eq!(
        (c.accesses, c.hits, c.misses, c.prefetches, c.evictions),
        (4, 3, 1, 3, 2)
    );
}

#[test]
fn lookahead_never_displaces_the_expert_just_used_and_respects_its_window() {
    // Capacity 1: nothing can be prefetched without displacing the expert in use.
    assert_eq!(
        replay(layer0(&[1, 2, 1, 2]), 1, PolicyKind::Lookahead).prefetches,
        0
    );
    // Window 1 on two layers: only the next access is prefetched.
    let keys = [
        ExpertKey::new(0, 1),
        ExpertKey::new(1, 1),
        ExpertKey::new(1, 2),
    ];
    let mut cache = ExpertCache::new(2, 2, PolicyKind::Lookahead.build(1)).unwrap();
    let access = cache.access(keys[0], &Future::new(&keys[1..])).unwrap();
    assert_eq!(access.prefetches.len(), 1);
    assert_eq!(access.prefetches[0].key, keys[1]);
}

#[test]
fn zero_capacity_and_unknown_layers_are_refused() {
    assert_eq!(
        ExpertCache::new(2, 0, PolicyKind::Lru.build(0)).unwrap_err(),
        CacheError::ZeroCapacity
    );
    let mut cache = ExpertCache::new(2, 1, PolicyKind::Lru.build(0)).unwrap();
    let err = cache
        .access(ExpertKey::new(2, 0), &Future::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "layer 2 expert 0 is outside the cache's 2 layers"
    );
}

/// The most hits any demand-paging schedule gets on `trace` (one layer) with
/// `capacity`, by trying every eviction.
fn optimal_hits(trace: &[u32], capacity: usize, resident: &mut Vec<u32>) -> u64 {
    let Some((&first, rest)) = trace.split_first() else {
        return 0;
    };
    if resident.contains(&first) {
        return 1 + optimal_hits(rest, capacity, resident);
    }
    if resident.len() < capacity {
        resident.push(first);
        let best = optimal_hits(rest, capacity, resident);
        resident.pop();
        return best;
    }
    let mut best = 0;
    for i in 0..resident.len() {
        let gone = std::mem::replace(&mut resident[i], first);
        best = best.max(optimal_hits(rest, capacity, resident));
        resident[i] = gone;
    }
    best
}

#[test]
fn belady_is_optimal_on_tiny_traces() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..2000 {
        let len = rng.random_range(1..=10);
        let trace: Vec<u32> = (0..len).map(|_| rng.random_range(0..3)).collect();
        let capacity = rng.random_range(1..=2);
        let optimal = optimal_hits(&trace, capacity, &mut Vec::new());
        assert_eq!(
            hits(&trace, capacity, PolicyKind::Belady),
            optimal,
            "{trace:?} c={capacity}"
        );
    }
}

#[test]
fn belady_never_below_lru() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for _ in 0..500 {
        let layers = rng.random_range(1..=3);
        let len = rng.random_range(1..=200);
        let experts = rng.random_range(2..=8);
        let keys: Vec<ExpertKey> = (0..len)
            .map(|_| ExpertKey::new(rng.random_range(0..layers), rng.random_range(0..experts)))
            .collect();
        let capacity = rng.random_range(1..=5);
        let lru = replay(keys.clone(), capacity, PolicyKind::Lru);
        let belady = replay(keys.clone(), capacity, PolicyKind::Belady);
        assert!(
            belady.hits >= lru.hits,
            "{keys:?} c={capacity}: {belady:?} < {lru:?}"
        );
        assert_eq!(belady.accesses, lru.accesses);
        assert_eq!(belady.hits + belady.misses, belady.accesses);
    }
}

#[test]
fn pinned_experts_are_never_evicted_nor_displaced() {
    for policy in PolicyKind::ALL {
        let mut cache = ExpertCache::new(1, 2, policy.build(16)).unwrap();
        let [a, b, c] = [
            ExpertKey::new(0, 1),
            ExpertKey::new(0, 2),
            ExpertKey::new(0, 3),
        ];
        // a is used again soon, b never: unpinned, belady and lru evict b for c.
        let future = [c, a];
        cache.access(a, &Future::default()).unwrap();
        cache.access(b, &Future::default()).unwrap();
        // Pinned as a group with c, b stays and a goes, whatever the policy says.
        let access = cache
            .access_pinned(c, &Future::new(&future[1..]), &[b, c])
            .unwrap();
        assert!(
            matches!(access.outcome, Outcome::Miss(load) if load.evicted == Some(a)),
            "{policy}: {access:?}"
        );
        assert!(
            access.prefetches.iter().all(|l| l.evicted != Some(b)),
            "{policy}"
        );
        // With every resident pinned, a miss is refused, not forced.
        let d = ExpertKey::new(0, 4);
        let refused = cache.access_pinned(d, &Future::default(), &[b, c, d]);
        assert_eq!(
            refused.unwrap_err(),
            CacheError::AllPinned { key: d },
            "{policy}"
        );
    }
}
