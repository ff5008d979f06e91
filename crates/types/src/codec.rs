//! The binary codec every Communitas wire format is written with.
//!
//! Big-endian fixed-width integers, fixed-size arrays, and byte strings with a
//! `u32` length prefix. A [`Reader`] checks each declared length against both a
//! per-field maximum and the bytes actually left *before* it touches them, so no
//! input can make a decoder allocate more than it was given or panic.
//! The layouts built from these pieces are specified in `docs/protocol.md`.

/// Why bytes could not be decoded. Every decoder returns this (or wraps it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before a field did.
    #[error("input truncated: {field} needs {needed} bytes, {remaining} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix or the whole input is over its limit.
    #[error("{field} is {len} bytes, the limit is {max}")]
    TooLong {
        /// The field (or `"input"`).
        field: &'static str,
        /// The declared or actual length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Bytes were left after the last field.
    #[error("{count} unexpected bytes after the end")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The version byte is one this build does not read.
    #[error("unsupported {what} version {got} (this build reads {min}..={max})")]
    UnsupportedVersion {
        /// Which format.
        what: &'static str,
        /// The version found.
        got: u8,
        /// Oldest version read.
        min: u8,
        /// Newest version read.
        max: u8,
    },
    /// A field holds a value that is not allowed.
    #[error("invalid {field}")]
    InvalidValue {
        /// The field.
        field: &'static str,
    },
}

/// Appends fields to a buffer. Infallible: limits are the encoder's caller's job,
/// and every decoder checks them again.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A writer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { buf: Vec::with_capacity(capacity) }
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Raw bytes, no length (for fixed-size fields).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// A `u32` length prefix, then the bytes. Callers keep `bytes` under the field's
    /// limit, which is always far below 4 GiB; a longer slice saturates the prefix
    /// and is then refused by every decoder.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        self.raw(bytes)
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// The finished buffer.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads fields from a borrowed buffer, never past its end.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `input`, refusing it whole if it is longer than `max`.
    pub fn new(input: &'a [u8], max: usize) -> Result<Self, DecodeError> {
        if input.len() > max {
            return Err(DecodeError::TooLong { field: "input", len: input.len(), max });
        }
        Ok(Self { rest: input })
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated { field, needed: n, remaining: self.rest.len() });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.array::<1>(field).map(|[b]| b)
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_be_bytes)
    }

    /// A byte string with a `u32` length prefix, at most `max` bytes. The length is
    /// checked against `max` and against the input before anything else happens.
    pub fn bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let declared = self.u32(field)?;
        let len = usize::try_from(declared).unwrap_or(usize::MAX);
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        self.take(field, len)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// Ends decoding: fails if bytes are left.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.rest.len() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut w = Writer::default();
        w.u8(7).u32(0xdead_beef).u64(u64::MAX - 1).raw(&[1, 2, 3]).bytes(b"hello");
        let buf = w.into_vec();
        let mut r = Reader::new(&buf, 1024).unwrap();
        assert_eq!(r.u8("a").unwrap(), 7);
        assert_eq!(r.u32("b").unwrap(), 0xdead_beef);
        assert_eq!(r.u64("c").unwrap(), u64::MAX - 1);
        assert_eq!(r.array::<3>("d").unwrap(), [1, 2, 3]);
        assert_eq!(r.bytes("e", 5).unwrap(), b"hello");
        r.finish().unwrap();
    }

    #[test]
    fn declared_length_is_checked_before_reading() {
        // Declares 4 GiB - 1 but carries 2 bytes: refused by the limit, no allocation.
        let buf = [0xff, 0xff, 0xff, 0xff, 1, 2];
        let mut r = Reader::new(&buf, 64).unwrap();
        assert_eq!(
            r.bytes("body", 16),
            Err(DecodeError::TooLong { field: "body", len: 0xffff_ffff, max: 16 })
        );
        let buf = [0, 0, 0, 9, 1, 2];
        let mut r = Reader::new(&buf, 64).unwrap();
        assert_eq!(
            r.bytes("body", 16),
            Err(DecodeError::Truncated { field: "body", needed: 9, remaining: 2 })
        );
    }

    #[test]
    fn oversize_input_and_trailing_bytes_are_refused() {
        assert!(matches!(
            Reader::new(&[0; 10], 9),
            Err(DecodeError::TooLong { len: 10, max: 9, .. })
        ));
        let mut r = Reader::new(&[1, 2], 9).unwrap();
        r.u8("x").unwrap();
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes { count: 1 }));
    }

    proptest! {
        #[test]
        fn reading_arbitrary_bytes_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&buf, 64).unwrap();
            let _ = r.u8("a").and_then(|_| r.bytes("b", 32)).and_then(|_| r.u64("c"));
        }
    }
}
