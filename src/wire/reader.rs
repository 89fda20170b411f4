//! One bounded reader for every variable-length body in `wire`, and the decode error it
//! produces.
//!
//! Every read checks what is left first and names the field it was reading, so a
//! truncated or malformed PDU reports *where* it broke instead of panicking
//! (`kms-protocol.md` is little-endian throughout, section 1).

use uuid::Uuid;

/// Why some bytes could not be decoded. Every variant names the field that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the field needs. On a stream this means "read more" only at the
    /// framing layer; inside a complete PDU it means the PDU is malformed.
    #[error("{field}: truncated, needs {needed} bytes but {available} remain")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// Bytes left over after a structure that must fill its buffer exactly.
    #[error("{field}: {extra} unexpected trailing bytes")]
    TrailingData {
        /// The structure that should have ended.
        field: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// A field holds a value the protocol does not allow.
    #[error("{field}: invalid value {value:#x} ({reason})")]
    InvalidValue {
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
        /// What was expected.
        reason: &'static str,
    },
}

/// A cursor over a byte slice whose reads never panic.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Offset of the next byte, from the start of the buffer given to [`Reader::new`].
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Takes the next `n` bytes.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] naming `field` when fewer than `n` bytes remain.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                field,
                needed: n,
                available: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes exactly `N` bytes as an array.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] when fewer than `N` bytes remain.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    /// Carves the next `n` bytes off as a reader of their own.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] when fewer than `n` bytes remain.
    pub fn sub(&mut self, n: usize, field: &'static str) -> Result<Self, DecodeError> {
        Ok(Reader::new(self.take(n, field)?))
    }

    /// Skips `n` bytes (padding).
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] when fewer than `n` bytes remain.
    pub fn skip(&mut self, n: usize, field: &'static str) -> Result<(), DecodeError> {
        self.take(n, field).map(|_| ())
    }

    /// Skips to the next multiple of `align` counted from the start of the buffer.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] when the padding runs past the end.
    pub fn align(&mut self, align: usize, field: &'static str) -> Result<(), DecodeError> {
        let pad = (align - self.pos % align) % align;
        self.skip(pad, field)
    }

    /// Reads a `u8`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// Reads a little-endian `u16`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    /// Reads a little-endian `u32`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    /// Reads a little-endian `u64`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// Reads a GUID in Microsoft mixed-endian order (spec 5.1).
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn guid(&mut self, field: &'static str) -> Result<Uuid, DecodeError> {
        Ok(Uuid::from_bytes_le(self.array(field)?))
    }

    /// Everything not yet read.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// Fails unless every byte was read.
    ///
    /// # Errors
    /// [`DecodeError::TrailingData`] naming `field`.
    pub fn finish(&self, field: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingData { field, extra }),
        }
    }
}

/// Little-endian writers for `Vec<u8>`, the mirror image of [`Reader`].
pub trait WriteLe {
    /// Appends a `u16`.
    fn put_u16(&mut self, v: u16);
    /// Appends a `u32`.
    fn put_u32(&mut self, v: u32);
    /// Appends a `u64`.
    fn put_u64(&mut self, v: u64);
    /// Appends a GUID in Microsoft mixed-endian order (spec 5.1).
    fn put_guid(&mut self, v: &Uuid);
    /// Appends zero bytes up to the next multiple of `align` from the start of the vector.
    fn pad_to(&mut self, align: usize);
}

impl WriteLe for Vec<u8> {
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_guid(&mut self, v: &Uuid) {
        self.extend_from_slice(&v.to_bytes_le());
    }
    fn pad_to(&mut self, align: usize) {
        let pad = (align - self.len() % align) % align;
        self.resize(self.len() + pad, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_guid_mixed_endian() {
        let bytes = hex::decode("3427c95582d6714d983ed6ec3f16059f0102").unwrap();
        let mut r = Reader::new(&bytes);
        let g = r.guid("app").unwrap();
        assert_eq!(g.to_string(), "55c92734-d682-4d71-983e-d6ec3f16059f");
        assert_eq!(r.u16("x").unwrap(), 0x0201);
        r.finish("all").unwrap();
    }

    #[test]
    fn truncation_names_the_field() {
        let mut r = Reader::new(&[1, 2, 3]);
        let err = r.u32("frag_length").unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "frag_length",
                needed: 4,
                available: 3
            }
        );
        assert!(err.to_string().contains("frag_length"));
    }

    #[test]
    fn trailing_bytes_are_reported() {
        let mut r = Reader::new(&[0; 5]);
        r.u32("a").unwrap();
        assert_eq!(
            r.finish("body"),
            Err(DecodeError::TrailingData {
                field: "body",
                extra: 1
            })
        );
    }

    #[test]
    fn align_counts_from_buffer_start() {
        let mut r = Reader::new(&[0; 8]);
        r.u8("a").unwrap();
        r.align(4, "pad").unwrap();
        assert_eq!(r.position(), 4);
        let mut v = vec![1u8];
        v.pad_to(4);
        assert_eq!(v, [1, 0, 0, 0]);
    }
}
