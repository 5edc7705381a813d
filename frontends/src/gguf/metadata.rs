//! GGUF metadata: typed values (scalars, strings, arrays) by key, read with
//! every array count and string length checked against the bytes left and a
//! budget of array elements before anything is allocated.

use std::collections::BTreeMap;

use super::cursor::Cursor;
use super::error::FormatError;

/// The most array elements all metadata values may hold together: far beyond
/// any vocabulary (a 256k-token vocabulary with scores, types and merges is
/// about 1M), so a file cannot make the reader allocate more than a few
/// hundred MiB for its metadata.
pub const MAX_ARRAY_ELEMENTS: u64 = 1 << 23;

/// The deepest nesting of arrays accepted (an array of arrays of scalars is 2).
pub const MAX_ARRAY_DEPTH: u32 = 2;

/// The longest string value accepted (a chat template is a few KiB).
pub const MAX_STRING_BYTES: u64 = 1 << 28;

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `uint8`.
    U8(u8),
    /// `int8`.
    I8(i8),
    /// `uint16`.
    U16(u16),
    /// `int16`.
    I16(i16),
    /// `uint32`.
    U32(u32),
    /// `int32`.
    I32(i32),
    /// `uint64`.
    U64(u64),
    /// `int64`.
    I64(i64),
    /// `float32`.
    F32(f32),
    /// `float64`.
    F64(f64),
    /// `bool`.
    Bool(bool),
    /// `string` (UTF-8).
    String(String),
    /// `array` of values of one type.
    Array(Vec<Value>),
}

impl Value {
    /// The value as a non-negative integer, from any integer type.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a signed integer, from any integer type that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// The value as a number, from a float or integer type.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    /// The string, if the value is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if the value is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if the value is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The GGUF type's name, for errors.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "uint8",
            Value::I8(_) => "int8",
            Value::U16(_) => "uint16",
            Value::I16(_) => "int16",
            Value::U32(_) => "uint32",
            Value::I32(_) => "int32",
            Value::U64(_) => "uint64",
            Value::I64(_) => "int64",
            Value::F32(_) => "float32",
            Value::F64(_) => "float64",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::Array(_) => "array",
        }
    }
}

/// A file's metadata: every key with its value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    entries: BTreeMap<String, Value>,
}

impl Metadata {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key)
    }

    /// Every key and value, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `key`; a key seen before is an error.
    pub(crate) fn insert(&mut self, key: String, value: Value) -> Result<(), FormatError> {
        if self.entries.contains_key(&key) {
            return Err(FormatError::DuplicateKey { key });
        }
        self.entries.insert(key, value);
        Ok(())
    }
}

/// The smallest encoding of a value of type `id` (for bounding array counts),
/// or `None` for an unknown type.
fn min_bytes(id: u32) -> Option<u64> {
    Some(match id {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        8 => 8,  // a string's length
        9 => 12, // an array's element type and count
        _ => return None,
    })
}

/// Reads one value of type `id` at nesting `depth`, spending array elements
/// from `budget`; `what` names the value in errors.
pub(crate) fn read_value(
    c: &mut Cursor<'_>,
    id: u32,
    depth: u32,
    budget: &mut u64,
    what: &dyn Fn() -> String,
) -> Result<Value, FormatError> {
    Ok(match id {
        0 => Value::U8(u8::from_le_bytes(c.array(what)?)),
        1 => Value::I8(i8::from_le_bytes(c.array(what)?)),
        2 => Value::U16(u16::from_le_bytes(c.array(what)?)),
        3 => Value::I16(i16::from_le_bytes(c.array(what)?)),
        4 => Value::U32(u32::from_le_bytes(c.array(what)?)),
        5 => Value::I32(i32::from_le_bytes(c.array(what)?)),
        6 => Value::F32(f32::from_le_bytes(c.array(what)?)),
        7 => Value::Bool(u8::from_le_bytes(c.array(what)?) != 0),
        8 => Value::String(c.string(MAX_STRING_BYTES, what)?),
        9 => read_array(c, depth, budget, what)?,
        10 => Value::U64(u64::from_le_bytes(c.array(what)?)),
        11 => Value::I64(i64::from_le_bytes(c.array(what)?)),
        12 => Value::F64(f64::from_le_bytes(c.array(what)?)),
        other => {
            return Err(FormatError::ValueType {
                what: what(),
                id: other,
            })
        }
    })
}

/// Reads an array (element type, count, elements), checking the count against
/// the bytes left and the element budget before allocating.
fn read_array(
    c: &mut Cursor<'_>,
    depth: u32,
    budget: &mut u64,
    what: &dyn Fn() -> String,
) -> Result<Value, FormatError> {
    if depth >= MAX_ARRAY_DEPTH {
        return Err(FormatError::Nesting {
            what: what(),
            limit: MAX_ARRAY_DEPTH,
        });
    }
    let elem = c.u32(|| format!("{} (its element type)", what()))?;
    let min = min_bytes(elem).ok_or_else(|| FormatError::ValueType {
        what: format!("{}'s elements", what()),
        id: elem,
    })?;
    let count = c.u64(|| format!("{} (its element count)", what()))?;
    if count > *budget {
        return Err(FormatError::TooLarge {
            what: format!(
                "{} element count (metadata array elements left of {MAX_ARRAY_ELEMENTS})",
                what()
            ),
            value: count,
            limit: *budget,
        });
    }
    c.check_fits(count, min, || format!("{}'s {count} elements", what()))?;
    *budget -= count;
    // `count` elements of at least `min` bytes each fit in the bytes left.
    let mut items = Vec::with_capacity(count as usize);
    for i in 0..count {
        let item = || format!("{}[{i}]", what());
        items.push(read_value(c, elem, depth + 1, budget, &item)?);
    }
    Ok(Value::Array(items))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array_header(elem: u32, count: u64) -> Vec<u8> {
        let mut b = elem.to_le_bytes().to_vec();
        b.extend_from_slice(&count.to_le_bytes());
        b
    }

    #[test]
    fn arrays_are_read_with_their_element_type() {
        let mut b = array_header(5, 2);
        b.extend_from_slice(&(-3i32).to_le_bytes());
        b.extend_from_slice(&7i32.to_le_bytes());
        let mut budget = 10;
        let v = read_value(&mut Cursor::new(&b), 9, 0, &mut budget, &|| "a".into());
        assert_eq!(v, Ok(Value::Array(vec![Value::I32(-3), Value::I32(7)])));
        assert_eq!(budget, 8);
    }

    #[test]
    fn an_array_count_beyond_the_bytes_left_is_refused_before_allocating() {
        let b = array_header(8, 1 << 63);
        let mut budget = MAX_ARRAY_ELEMENTS;
        let err = read_value(&mut Cursor::new(&b), 9, 0, &mut budget, &|| "a".into());
        assert!(matches!(err, Err(FormatError::TooLarge { value, .. }) if value == 1 << 63));
        let b = array_header(8, 1000);
        let err = read_value(&mut Cursor::new(&b), 9, 0, &mut budget, &|| "a".into());
        assert!(matches!(
            err,
            Err(FormatError::Truncated {
                needed: 8000,
                available: 0,
                ..
            })
        ));
    }

    #[test]
    fn the_element_budget_is_shared_and_nesting_is_bounded() {
        let mut b = array_header(0, 4);
        b.extend_from_slice(&[1, 2, 3, 4]);
        let mut budget = 3;
        let err = read_value(&mut Cursor::new(&b), 9, 0, &mut budget, &|| "a".into());
        assert!(matches!(err, Err(FormatError::TooLarge { limit: 3, .. })));
        let nested = [array_header(9, 1), array_header(9, 1), array_header(0, 0)].concat();
        let mut budget = 10;
        let err = read_value(&mut Cursor::new(&nested), 9, 0, &mut budget, &|| "n".into());
        assert!(matches!(err, Err(FormatError::Nesting { limit: 2, .. })));
    }
}
