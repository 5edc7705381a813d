//! A little-endian reader over a byte slice that checks every read against
//! the bytes left, naming what it was reading when they run out.

use super::error::FormatError;

/// A position in a byte slice.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    /// Bytes read so far.
    pub(crate) fn pos(&self) -> u64 {
        self.pos as u64
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    /// The next `n` bytes; `what` names the item for the error when fewer are left.
    pub(crate) fn take(
        &mut self,
        n: u64,
        what: impl FnOnce() -> String,
    ) -> Result<&'a [u8], FormatError> {
        if n > self.remaining() {
            return Err(FormatError::Truncated {
                what: what(),
                offset: self.pos(),
                needed: n,
                available: self.remaining(),
            });
        }
        let start = self.pos;
        // `n <= remaining`, so it fits in usize.
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    /// The next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(
        &mut self,
        what: impl FnOnce() -> String,
    ) -> Result<[u8; N], FormatError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    /// A little-endian `u32`.
    pub(crate) fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, FormatError> {
        self.array(what).map(u32::from_le_bytes)
    }

    /// A little-endian `u64`.
    pub(crate) fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, FormatError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A GGUF string (`u64` length, then UTF-8 bytes) of at most `limit` bytes.
    pub(crate) fn string(
        &mut self,
        limit: u64,
        what: impl Fn() -> String,
    ) -> Result<String, FormatError> {
        let len = self.u64(|| format!("{} (its length)", what()))?;
        if len > limit {
            return Err(FormatError::TooLarge {
                what: format!("{} length", what()),
                value: len,
                limit,
            });
        }
        let bytes = self.take(len, &what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| FormatError::Utf8 { what: what() })
    }

    /// Errors unless `count` items of at least `min_bytes` each fit in the
    /// bytes left (checked before allocating for them).
    pub(crate) fn check_fits(
        &self,
        count: u64,
        min_bytes: u64,
        what: impl FnOnce() -> String,
    ) -> Result<(), FormatError> {
        let needed = count.saturating_mul(min_bytes);
        if needed > self.remaining() {
            return Err(FormatError::Truncated {
                what: what(),
                offset: self.pos(),
                needed,
                available: self.remaining(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded_by_the_bytes_left() {
        let bytes = [1, 0, 0, 0, 2, 0, 0];
        let mut c = Cursor::new(&bytes);
        assert_eq!(c.u32(|| "a".into()), Ok(1));
        assert!(matches!(
            c.u32(|| "b".into()),
            Err(FormatError::Truncated {
                needed: 4,
                available: 3,
                offset: 4,
                ..
            })
        ));
    }

    #[test]
    fn string_lengths_are_checked_against_the_limit_then_the_bytes_left() {
        let mut bytes = (1u64 << 63).to_le_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        let err = Cursor::new(&bytes).string(1 << 20, || "s".into());
        assert!(
            matches!(err, Err(FormatError::TooLarge { value, limit: 1048576, .. }) if value == 1 << 63)
        );
        let mut bytes = 4u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        let err = Cursor::new(&bytes).string(1 << 20, || "s".into());
        assert!(matches!(
            err,
            Err(FormatError::Truncated {
                needed: 4,
                available: 3,
                ..
            })
        ));
        let err = Cursor::new(&bytes[..0]).check_fits(u64::MAX, 8, || "x".into());
        assert!(matches!(
            err,
            Err(FormatError::Truncated {
                needed: u64::MAX,
                ..
            })
        ));
    }
}
