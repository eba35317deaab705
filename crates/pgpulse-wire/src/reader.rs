//! A bounds-checked cursor over a message body, used by every lazy parser in
//! the crate. Every read returns `Malformed` instead of panicking.

use crate::error::WireError;

/// Reads big-endian integers and NUL-terminated strings from a body.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Malformed("message body too short"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn i16(&mut self) -> Result<i16, WireError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, WireError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A count field (Int16) that must not be negative.
    pub(crate) fn count16(&mut self) -> Result<usize, WireError> {
        usize::try_from(self.i16()?).map_err(|_| WireError::Malformed("negative count"))
    }

    /// A NUL-terminated UTF-8 string, without its terminator.
    pub(crate) fn cstr(&mut self) -> Result<&'a str, WireError> {
        let raw = self.cbytes()?;
        std::str::from_utf8(raw).map_err(|_| WireError::Malformed("string is not valid UTF-8"))
    }

    /// NUL-terminated bytes, without the terminator.
    pub(crate) fn cbytes(&mut self) -> Result<&'a [u8], WireError> {
        // memchr: statement texts are the longest strings here, and a
        // byte-by-byte search cost more than the rest of the parse.
        let end = memchr::memchr(0, self.buf)
            .ok_or(WireError::Malformed("string without NUL terminator"))?;
        let s = &self.buf[..end];
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }

    /// A length-prefixed (Int32) value where -1 means NULL.
    pub(crate) fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, WireError> {
        match self.i32()? {
            -1 => Ok(None),
            n => {
                let n = usize::try_from(n).map_err(|_| WireError::Malformed("negative length"))?;
                self.bytes(n).map(Some)
            }
        }
    }

    /// Fails unless the whole body was consumed.
    pub(crate) fn finish(&self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::Malformed("trailing bytes after message fields"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_rejects_short_input() {
        let mut r = Reader::new(b"ab\0\x00\x01\xff\xff\xff\xff\x00\x00\x00\x02xy");
        assert_eq!(r.cstr().unwrap(), "ab");
        assert_eq!(r.i16().unwrap(), 1);
        assert_eq!(r.nullable_bytes().unwrap(), None);
        assert_eq!(r.nullable_bytes().unwrap(), Some(&b"xy"[..]));
        r.finish().unwrap();
        assert!(r.i32().is_err());
        assert!(Reader::new(b"no terminator").cstr().is_err());
        assert!(Reader::new(b"\xff\xff").count16().is_err());
        assert!(Reader::new(b"\xff\xff\xff\xfe").nullable_bytes().is_err());
        assert!(Reader::new(b"x").finish().is_err());
    }
}
