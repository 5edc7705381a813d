//! Structured edits of a JSON value, driven by fuzz input: the valid document
//! stays mostly intact, so an edit reaches the checks of the one field it hits.

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use serde_json::{json, Value};

/// Numbers at the edges of what the fields hold.
const BOUNDARIES: [i128; 12] = [
    0,
    1,
    -1,
    63,
    64,
    65,
    u32::MAX as i128,
    u32::MAX as i128 + 1,
    i64::MAX as i128,
    u64::MAX as i128,
    i64::MIN as i128,
    1 << 53,
];

/// Strings that mean something to a manifest (names, paths).
const STRINGS: [&str; 8] = [
    "",
    "tokens",
    "forward",
    "main",
    "x",
    "..",
    "/etc/passwd",
    "weight",
];

/// Applies up to 8 edits to `value`, each at a node the input picks.
pub fn edit(value: &mut Value, u: &mut Unstructured) {
    for _ in 0..u.int_in_range(1..=8u8).unwrap_or(1) {
        if u.is_empty() {
            return;
        }
        let node = pick(value, u);
        // Running out of input ends the edit; the value stays valid JSON.
        let _ = mutate(node, u);
    }
}

/// A node of `value`: descends into arrays and objects until the input says stop.
fn pick<'a>(value: &'a mut Value, u: &mut Unstructured) -> &'a mut Value {
    let len = match &*value {
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        _ => 0,
    };
    if len == 0 || u.ratio(1u8, 4u8).unwrap_or(true) {
        return value;
    }
    let i = u.choose_index(len).unwrap_or(0);
    let child = match value {
        Value::Array(a) => &mut a[i],
        Value::Object(o) => o.values_mut().nth(i).expect("index in range"),
        _ => unreachable!("only arrays and objects have children"),
    };
    pick(child, u)
}

/// Replaces `node`, or removes or repeats one of its elements.
fn mutate(node: &mut Value, u: &mut Unstructured) -> Result<()> {
    match u.int_in_range(0..=7u8)? {
        0 => {
            let n = *u.choose(&BOUNDARIES)?;
            *node = i64::try_from(n).map_or_else(|_| json!(n as u64), |n| json!(n));
        }
        1 => *node = json!(u.arbitrary::<u64>()?),
        2 => *node = json!(*u.choose(&STRINGS)?),
        3 => *node = json!(u.arbitrary::<String>()?),
        4 => *node = Value::Null,
        5 => *node = json!(u.arbitrary::<bool>()?),
        6 => match node {
            Value::Array(a) if !a.is_empty() => {
                a.remove(u.choose_index(a.len())?);
            }
            Value::Object(o) if !o.is_empty() => {
                let key = o.keys().nth(u.choose_index(o.len())?).cloned();
                o.remove(&key.expect("index in range"));
            }
            _ => *node = json!([]),
        },
        _ => match node {
            Value::Array(a) if !a.is_empty() => {
                let copy = a[u.choose_index(a.len())?].clone();
                let times = u.int_in_range(1..=64u8)?;
                a.extend(std::iter::repeat_n(copy, times.into()));
            }
            _ => *node = json!({}),
        },
    }
    Ok(())
}
