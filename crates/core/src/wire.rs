//! The bounded reader of untrusted bytes, and the writers of the fields it reads.
//!
//! Manifests and bodies (here) and the p2p tier's messages are length-prefixed binary
//! encodings, read from disks, peers and sockets that may send anything. [`Reader`] is the one
//! place that reads them: every length is checked against what is left and against the field's
//! cap *before* anything is allocated for it, so a short, oversized or lying field is a
//! [`DecodeError`], never a panic or a large allocation.
//!
//! ```text
//! u8 | u32 LE | u64 LE | [u8; N]          fixed-size fields
//! u32 LE length | bytes                   bytes(max), string(max)      (put_bytes)
//! u64 LE length | bytes                   long_bytes(max): bodies
//! 0 | 1, then u32 LE length | bytes       opt_bytes(max), opt_string(max)  (put_opt_bytes)
//! ```

use crate::error::DecodeError;

/// Bounds-checked reader over one encoded value: a short or oversized field is an error, never a
/// panic or a big allocation.
///
/// # Errors
/// Every method that reads fails with a [`DecodeError`] naming the value being read (`what`,
/// given to [`Reader::new`]) and what was wrong: `truncated`, `field too large`, `not UTF-8`,
/// `bad option tag`, `trailing bytes`, or a caller's own reason ([`Reader::err`]).
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader of `bytes`, an encoded `what` (`"manifest"`, `"fetch request"`): errors name it.
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { rest: bytes, what }
    }

    /// An error about the value being read, for checks of the caller's own.
    pub fn err(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            what: self.what,
            reason,
        }
    }

    /// How many bytes are left unread.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next `n` bytes.
    ///
    /// # Errors
    /// `truncated` when fewer are left.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(self.err("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// The next `N` bytes, as an array (keys, digests, scope ids, little-endian integers).
    ///
    /// # Errors
    /// `truncated` when fewer are left.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// One byte.
    ///
    /// # Errors
    /// `truncated` at the end.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian `u16`.
    ///
    /// # Errors
    /// `truncated` when fewer than 2 bytes are left.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian `u32`.
    ///
    /// # Errors
    /// `truncated` when fewer than 4 bytes are left.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian `u64`.
    ///
    /// # Errors
    /// `truncated` when fewer than 8 bytes are left.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A `u32`-length-prefixed byte string of at most `max` bytes (manifest fields, messages),
    /// as written by [`put_bytes`].
    ///
    /// # Errors
    /// `field too large` when the prefix says more than `max`, `truncated` when fewer bytes
    /// are left than it says.
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.u32()?).map_err(|_| self.err("length overflows"))?;
        if len > max {
            return Err(self.err("field too large"));
        }
        self.take(len)
    }

    /// A `u64`-length-prefixed byte string of at most `max` bytes (a body's stdout and stderr).
    ///
    /// # Errors
    /// `field too large` when the prefix says more than `max` (or more than this machine can
    /// address), `truncated` when fewer bytes are left than it says.
    pub fn long_bytes(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.u64()?).map_err(|_| self.err("length overflows"))?;
        if len > max {
            return Err(self.err("field too large"));
        }
        self.take(len)
    }

    /// A [`Reader::bytes`] field that must be UTF-8.
    ///
    /// # Errors
    /// Those of [`Reader::bytes`], and `not UTF-8`.
    pub fn string(&mut self, max: usize) -> Result<String, DecodeError> {
        let bytes = self.bytes(max)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.err("not UTF-8"))
    }

    /// An optional [`Reader::bytes`] field, as written by [`put_opt_bytes`].
    ///
    /// # Errors
    /// Those of [`Reader::bytes`], and `bad option tag` for a tag other than 0 or 1.
    pub fn opt_bytes(&mut self, max: usize) -> Result<Option<Vec<u8>>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.bytes(max)?.to_vec())),
            _ => Err(self.err("bad option tag")),
        }
    }

    /// An optional [`Reader::string`] field.
    ///
    /// # Errors
    /// Those of [`Reader::opt_bytes`], and `not UTF-8`.
    pub fn opt_string(&mut self, max: usize) -> Result<Option<String>, DecodeError> {
        match self.opt_bytes(max)? {
            None => Ok(None),
            Some(b) => String::from_utf8(b)
                .map(Some)
                .map_err(|_| self.err("not UTF-8")),
        }
    }

    /// Ends the value: every byte must have been read.
    ///
    /// # Errors
    /// `trailing bytes` when some are left.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }
}

/// Appends `bytes` with a `u32` length prefix, as [`Reader::bytes`] reads it.
///
/// Callers keep `bytes` under their field's cap, which is far below `u32::MAX`.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends an optional field, as [`Reader::opt_bytes`] reads it.
pub fn put_opt_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => out.push(0),
        Some(b) => {
            out.push(1);
            put_bytes(out, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reason<T>(result: Result<T, DecodeError>) -> Option<&'static str> {
        result.err().map(|e| e.reason)
    }

    #[test]
    fn fields_written_are_read_back_and_the_end_is_checked() {
        let mut out = vec![7];
        out.extend_from_slice(&0x0102u16.to_le_bytes());
        out.extend_from_slice(&0x0304_0506u32.to_le_bytes());
        out.extend_from_slice(&u64::MAX.to_le_bytes());
        put_bytes(&mut out, b"manifest field");
        put_opt_bytes(&mut out, None);
        put_opt_bytes(&mut out, Some("é".as_bytes()));
        out.extend_from_slice(&3u64.to_le_bytes());
        out.extend_from_slice(b"out");
        let mut r = Reader::new(&out, "sample");
        assert_eq!(r.u8(), Ok(7));
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(r.u32(), Ok(0x0304_0506));
        assert_eq!(r.u64(), Ok(u64::MAX));
        assert_eq!(r.bytes(64), Ok(&b"manifest field"[..]));
        assert_eq!(r.opt_string(8), Ok(None));
        assert_eq!(r.remaining(), 1 + 4 + 2 + 8 + 3);
        assert_eq!(r.opt_string(8), Ok(Some("é".to_owned())));
        assert_eq!(r.finish().map_err(|e| e.reason), Err("trailing bytes"));
        assert_eq!(r.long_bytes(3), Ok(&b"out"[..]));
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(reason(r.u8()), Some("truncated"));
    }

    #[test]
    fn a_length_over_the_cap_is_refused_before_the_field_is_read() {
        let mut out = Vec::new();
        put_bytes(&mut out, &[0; 100]);
        let mut r = Reader::new(&out, "sample");
        assert_eq!(reason(r.bytes(99)), Some("field too large"));
        // Only the prefix was consumed.
        assert_eq!(r.remaining(), 100);

        let mut long = (u64::MAX).to_le_bytes().to_vec();
        long.extend_from_slice(b"short");
        let mut r = Reader::new(&long, "sample");
        assert!(r.long_bytes(usize::MAX).is_err());
        let mut r = Reader::new(&long, "sample");
        assert_eq!(reason(r.long_bytes(4)), Some("field too large"));
    }

    #[test]
    fn a_length_past_the_end_is_truncated_and_errors_name_the_value() {
        let mut out = 10u32.to_le_bytes().to_vec();
        out.extend_from_slice(b"four");
        let err = Reader::new(&out, "fetch request").bytes(1024).err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(text, "cannot decode fetch request: truncated");
        assert_eq!(
            reason(Reader::new(&[2], "x").opt_bytes(8)),
            Some("bad option tag")
        );
        let mut not_utf8 = Vec::new();
        put_bytes(&mut not_utf8, &[0xff, 0xfe]);
        assert_eq!(
            reason(Reader::new(&not_utf8, "x").string(8)),
            Some("not UTF-8")
        );
        assert_eq!(
            reason(Reader::new(&[1, 2], "x").array::<3>()),
            Some("truncated")
        );
        assert_eq!(Reader::new(&[], "x").take(0), Ok(&[][..]));
    }

    proptest! {
        #[test]
        fn nothing_read_is_longer_than_its_cap_or_the_input(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
            max in 0usize..512,
        ) {
            let mut r = Reader::new(&bytes, "random");
            if let Ok(field) = r.bytes(max) {
                prop_assert!(field.len() <= max && field.len() + 4 <= bytes.len());
            }
            let mut r = Reader::new(&bytes, "random");
            if let Ok(field) = r.long_bytes(max) {
                prop_assert!(field.len() <= max && field.len() + 8 <= bytes.len());
            }
            let mut r = Reader::new(&bytes, "random");
            if let Ok(Some(field)) = r.opt_bytes(max) {
                prop_assert!(field.len() <= max && field.len() + 5 <= bytes.len());
            }
        }
    }
}
