// Picks one token from each of `count` rows of `logits` ([rows, vocab] f32):
// workgroup j follows draws[j] (its row and settings) and writes its id to
// out[j] — the same function, in the same f32 operations and order, as
// `Draw::pick` in choose.rs (see its module docs). Thread k of a workgroup owns
// the k-th chunk of ceil(vocab / THREADS) ids of its row. The constants
// THREADS, STEPS, FLOOR, LOG2E_BITS, NONE, NAN_LOGITS and INFINITE_MAX are
// prepended by device_sample.rs. Floats arrive as their bits.

struct Params {
    vocab: u32,
    count: u32,
}

// One row's draw: the row, 0 greedy / 1 top-p, and the top-p settings.
struct RowDraw {
    row: u32,
    mode: u32,
    inv_temperature: u32,
    top_p: u32,
    u: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> draws: array<RowDraw>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;

// This workgroup's draw.
var<private> draw: RowDraw;

const NEG_INF_BITS: u32 = 0xff800000u;

var<workgroup> sh_v: array<f32, THREADS>;
var<workgroup> sh_i: array<u32, THREADS>;
var<workgroup> sh_nan: array<u32, THREADS>;
var<workgroup> chosen: u32;
var<workgroup> pick_chunk: u32;
var<workgroup> pick_start: f32;
var<workgroup> pick_target: f32;

fn chunk(k: u32) -> vec2<u32> {
    let size = (params.vocab + THREADS - 1u) / THREADS;
    let lo = min(k * size, params.vocab);
    return vec2<u32>(lo, min(lo + size, params.vocab));
}

// Whether (v, i) beats (bv, bi): larger, or equal with a lower id.
fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
    return i != NONE && (bi == NONE || v > bv || (v == bv && i < bi));
}

// The scaled logit of x; the caller excludes -inf.
fn scaled(x: f32, m: f32) -> f32 {
    return max((x - m) * bitcast<f32>(draw.inv_temperature), FLOOR);
}

fn weight(c: f32) -> f32 {
    return exp2(c * bitcast<f32>(LOG2E_BITS));
}

// This thread's chunk's weight of the tokens with scaled logit >= tau.
fn chunk_mass(k: u32, base: u32, m: f32, tau: f32) -> f32 {
    let r = chunk(k);
    var s = 0.0;
    for (var i = r.x; i < r.y; i++) {
        let x = logits[base + i];
        if (bitcast<u32>(x) != NEG_INF_BITS) {
            let c = scaled(x, m);
            if (c >= tau) {
                s = s + weight(c);
            }
        }
    }
    return s;
}

// The sum of every thread's x as a tree (stride THREADS/2, ..., 1).
fn tree_sum(lid: u32, x: f32) -> f32 {
    sh_v[lid] = x;
    workgroupBarrier();
    for (var s = THREADS / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            sh_v[lid] = sh_v[lid] + sh_v[lid + s];
        }
        workgroupBarrier();
    }
    let total = sh_v[0];
    workgroupBarrier();
    return total;
}

// The nucleus threshold: the lower end of the bisection.
fn threshold(lid: u32, base: u32, m: f32) -> f32 {
    var lo = FLOOR;
    let top_p = bitcast<f32>(draw.top_p);
    if (top_p < 1.0) {
        let want = top_p * tree_sum(lid, chunk_mass(lid, base, m, FLOOR));
        var hi = 1.0;
        for (var step = 0u; step < STEPS; step++) {
            let mid = 0.5 * (lo + hi);
            let mass = tree_sum(lid, chunk_mass(lid, base, m, mid));
            if (mass >= want) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
    }
    return lo;
}

// Sets `chosen` to the first id where the nucleus' running weight exceeds
// u x its total (left as the argmax if rounding leaves none).
fn select_in_nucleus(lid: u32, base: u32, m: f32, tau: f32) {
    sh_v[lid] = chunk_mass(lid, base, m, tau);
    workgroupBarrier();
    if (lid == 0u) {
        var total = 0.0;
        for (var k = 0u; k < THREADS; k++) {
            total = total + sh_v[k];
        }
        let goal = bitcast<f32>(draw.u) * total;
        pick_chunk = NONE;
        var acc = 0.0;
        for (var k = 0u; k < THREADS; k++) {
            let start = acc;
            acc = acc + sh_v[k];
            if (acc > goal) {
                pick_chunk = k;
                pick_start = start;
                pick_target = goal;
                break;
            }
        }
    }
    workgroupBarrier();
    if (lid == pick_chunk) {
        let r = chunk(lid);
        var local = 0.0;
        for (var i = r.x; i < r.y; i++) {
            let x = logits[base + i];
            if (bitcast<u32>(x) != NEG_INF_BITS) {
                let c = scaled(x, m);
                if (c >= tau) {
                    local = local + weight(c);
                    if (pick_start + local > pick_target) {
                        chosen = i;
                        break;
                    }
                }
            }
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(THREADS)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let j = wid.x;
    if (j >= params.count) {
        return;
    }
    draw = draws[j];
    let base = draw.row * params.vocab;
    let r = chunk(lid);
    var bv = 0.0;
    var bi = NONE;
    var nan = 0u;
    for (var i = r.x; i < r.y; i++) {
        let v = logits[base + i];
        if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) {
            nan = 1u;
        }
        if (better(v, i, bv, bi)) {
            bv = v;
            bi = i;
        }
    }
    sh_v[lid] = bv;
    sh_i[lid] = bi;
    sh_nan[lid] = nan;
    workgroupBarrier();
    for (var s = THREADS / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            let o = lid + s;
            if (better(sh_v[o], sh_i[o], sh_v[lid], sh_i[lid])) {
                sh_v[lid] = sh_v[o];
                sh_i[lid] = sh_i[o];
            }
            sh_nan[lid] = max(sh_nan[lid], sh_nan[o]);
        }
        workgroupBarrier();
    }
    let m = sh_v[0];
    let best = sh_i[0];
    let any_nan = sh_nan[0];
    if (lid == 0u) {
        chosen = best;
    }
    workgroupBarrier();
    let infinite_max = (bitcast<u32>(m) & 0x7fffffffu) == 0x7f800000u;
    if (draw.mode == 1u) {
        let tau = threshold(lid, base, m);
        select_in_nucleus(lid, base, m, tau);
    }
    if (lid == 0u) {
        if (any_nan != 0u) {
            out[j] = NAN_LOGITS;
        } else if (draw.mode == 1u && infinite_max) {
            out[j] = INFINITE_MAX;
        } else {
            out[j] = chosen;
        }
    }
}
