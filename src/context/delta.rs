//! Git's delta format, applied as the result is read. A packed object may be
//! stored as a delta: instructions that copy ranges of another object (its
//! base) or insert new bytes. The instructions only go forward, but their
//! copies jump anywhere in the base, so the base must allow reads at any
//! offset: [`Base`] holds it in memory when it is small and in an unnamed
//! temporary file otherwise, so a file of any size costs fixed buffers.
//! A base that is itself a delta is first written out the same way.

use std::fs::File;
use std::io::{BufWriter, ErrorKind, Read, Seek, SeekFrom};

/// Bases smaller than this are kept in memory, larger ones in a temporary file.
const IN_MEMORY_BELOW: u64 = 1 << 20;

/// An object that deltas copy from, readable at any offset.
pub struct Base {
    len: u64,
    bytes: Bytes,
}

enum Bytes {
    Memory(Vec<u8>),
    File(File),
}

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(ErrorKind::InvalidData, what)
}

impl Base {
    /// Reads exactly `len` bytes from `reader`, then reads it to its end
    /// (where a zlib stream checks its checksum): fewer or more is an error.
    pub fn read(len: u64, mut reader: impl Read) -> std::io::Result<Base> {
        let mut limited = (&mut reader).take(len);
        let (bytes, got) = if len < IN_MEMORY_BELOW {
            let mut bytes = Vec::with_capacity(len as usize);
            let got = limited.read_to_end(&mut bytes)? as u64;
            (Bytes::Memory(bytes), got)
        } else {
            let mut file = BufWriter::with_capacity(64 << 10, tempfile::tempfile()?);
            let got = std::io::copy(&mut limited, &mut file)?;
            (Bytes::File(file.into_inner().map_err(|e| e.into_error())?), got)
        };
        if got < len {
            return Err(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                format!("a base ended after {got} of {len} bytes"),
            ));
        }
        if reader.read(&mut [0u8; 1])? != 0 {
            return Err(invalid(format!("a base holds more than {len} bytes")));
        }
        Ok(Base { len, bytes })
    }

    /// Fills `buf` from `offset`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        match &mut self.bytes {
            Bytes::Memory(bytes) => {
                let from = offset as usize;
                buf.copy_from_slice(&bytes[from..from + buf.len()]);
                Ok(())
            }
            Bytes::File(file) => {
                file.seek(SeekFrom::Start(offset))?;
                file.read_exact(buf)
            }
        }
    }
}

/// The instruction being carried out.
enum Op {
    /// Copy `len` bytes of the base from `offset`.
    Copy { offset: u64, len: u64 },
    /// Insert the next `len` bytes of the delta.
    Insert { len: u64 },
    /// Read the next instruction.
    Next,
}

/// A delta applied to its base: reads as the object it describes.
pub struct Apply<R> {
    base: Base,
    delta: R,
    op: Op,
}

/// A delta's size varint: 7 bits a byte, least significant first.
fn size(r: &mut impl Read) -> std::io::Result<u64> {
    let (mut value, mut shift, mut byte) = (0u64, 0, [0x80u8]);
    while byte[0] & 0x80 != 0 {
        if shift > 63 {
            return Err(invalid("a delta size longer than 64 bits".into()));
        }
        r.read_exact(&mut byte)?;
        value |= u64::from(byte[0] & 0x7f) << shift;
        shift += 7;
    }
    Ok(value)
}

impl<R: Read> Apply<R> {
    /// Starts applying `delta` (its inflated bytes) to `base`; returns the
    /// size of the result too. A delta made for a base of another size is
    /// an error.
    pub fn new(base: Base, mut delta: R) -> std::io::Result<(u64, Self)> {
        let base_len = size(&mut delta)?;
        if base_len != base.len {
            return Err(invalid(format!("a delta for a base of {base_len} bytes, applied to one of {}", base.len)));
        }
        let result = size(&mut delta)?;
        Ok((result, Apply { base, delta, op: Op::Next }))
    }

    /// Reads the next instruction; `false` at the end of the delta.
    fn next_op(&mut self) -> std::io::Result<bool> {
        let mut cmd = [0u8];
        if self.delta.read(&mut cmd)? == 0 {
            return Ok(false);
        }
        let cmd = cmd[0];
        self.op = if cmd & 0x80 != 0 {
            // Bits 0-3 say which bytes of the offset follow, bits 4-6 which of the length.
            let mut field = |bits: std::ops::Range<u32>| -> std::io::Result<u64> {
                let mut value = 0u64;
                for (i, bit) in bits.enumerate() {
                    if cmd & (1 << bit) != 0 {
                        let mut byte = [0u8];
                        self.delta.read_exact(&mut byte)?;
                        value |= u64::from(byte[0]) << (8 * i);
                    }
                }
                Ok(value)
            };
            let offset = field(0..4)?;
            let len = match field(4..7)? {
                0 => 0x10000,
                len => len,
            };
            if offset + len > self.base.len {
                return Err(invalid(format!(
                    "a delta copies {len} bytes from offset {offset} of a base of {} bytes",
                    self.base.len
                )));
            }
            Op::Copy { offset, len }
        } else if cmd != 0 {
            Op::Insert { len: u64::from(cmd) }
        } else {
            return Err(invalid("a delta instruction 0, which git never writes".into()));
        };
        Ok(true)
    }
}

impl<R: Read> Read for Apply<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match &mut self.op {
                Op::Copy { offset, len } if *len > 0 => {
                    let n = buf.len().min(usize::try_from(*len).unwrap_or(usize::MAX));
                    let from = *offset;
                    *offset += n as u64;
                    *len -= n as u64;
                    self.base.read_at(from, &mut buf[..n])?;
                    return Ok(n);
                }
                Op::Insert { len } if *len > 0 => {
                    let n = buf.len().min(*len as usize);
                    let n = self.delta.read(&mut buf[..n])?;
                    if n == 0 {
                        return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "a delta ended inside an insert"));
                    }
                    *len -= n as u64;
                    return Ok(n);
                }
                _ => {
                    if !self.next_op()? {
                        return Ok(0);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn varint(mut value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    /// A copy instruction with only the non-zero bytes of offset and length, as git writes it.
    pub(crate) fn copy(offset: u64, len: u64) -> Vec<u8> {
        let mut cmd = 0x80u8;
        let mut rest = Vec::new();
        let len = if len == 0x10000 { 0 } else { len };
        for (i, byte) in offset.to_le_bytes()[..4].iter().enumerate() {
            if *byte != 0 {
                cmd |= 1 << i;
                rest.push(*byte);
            }
        }
        for (i, byte) in len.to_le_bytes()[..3].iter().enumerate() {
            if *byte != 0 {
                cmd |= 1 << (4 + i);
                rest.push(*byte);
            }
        }
        [vec![cmd], rest].concat()
    }

    /// A delta from a base of `base_len` bytes to one of `result_len`, with `ops`.
    pub(crate) fn delta(base_len: u64, result_len: u64, ops: &[Vec<u8>]) -> Vec<u8> {
        [varint(base_len), varint(result_len), ops.concat()].concat()
    }

    fn apply(base: &[u8], delta: &[u8]) -> std::io::Result<Vec<u8>> {
        let base = Base::read(base.len() as u64, base)?;
        let (len, mut apply) = Apply::new(base, delta)?;
        let mut out = Vec::new();
        apply.read_to_end(&mut out)?;
        assert_eq!(out.len() as u64, len, "the result has the size the delta gives");
        Ok(out)
    }

    #[test]
    fn copies_and_inserts_make_the_result() {
        let base: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        let ops = [
            copy(0x10000, 0x10000),                 // a whole 64 KiB: length byte 0
            [vec![5], b"hello".to_vec()].concat(),  // insert
            copy(3, 1),                             // one byte
            copy(0x0102_0304 & 0x3ffff, 0x01_0203), // three length bytes
            [vec![127], vec![b'x'; 127]].concat(),  // the longest insert
            copy(299_999, 1),                       // the last byte of the base
        ];
        let len = 0x10000 + 5 + 1 + 0x01_0203 + 127 + 1;
        let out = apply(&base, &delta(300_000, len, &ops)).unwrap();
        let at = 0x0102_0304usize & 0x3ffff;
        let expected = [
            &base[0x10000..0x20000],
            b"hello",
            &base[3..4],
            &base[at..at + 0x01_0203],
            &[b'x'; 127][..],
            &base[299_999..],
        ]
        .concat();
        assert!(out == expected);
    }

    #[test]
    fn a_large_base_is_read_from_a_temporary_file() {
        let base: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
        let b = Base::read(base.len() as u64, &base[..]).unwrap();
        assert!(matches!(b.bytes, Bytes::File(_)), "3 MiB are not held in memory");
        let ops = [copy(2 << 20, 1 << 20), copy(0, 10)];
        let (_, mut apply) = Apply::new(b, std::io::Cursor::new(delta(3 << 20, (1 << 20) + 10, &ops))).unwrap();
        let mut out = Vec::new();
        apply.read_to_end(&mut out).unwrap();
        assert!(out == [&base[2 << 20..], &base[..10]].concat());
    }

    #[test]
    fn a_damaged_delta_is_an_error() {
        let base = vec![7u8; 100];
        let cases: [(&str, Vec<u8>); 5] = [
            ("for a base of 99 bytes", delta(99, 1, &[copy(0, 1)])),
            ("copies 10 bytes from offset 95", delta(100, 10, &[copy(95, 10)])),
            ("instruction 0", delta(100, 1, &[vec![0]])),
            ("ended inside an insert", delta(100, 5, &[vec![5, b'a']])),
            ("failed to fill whole buffer", delta(100, 1, &[vec![0x91]])),
        ];
        for (what, delta) in cases {
            let e = apply(&base, &delta).expect_err(what);
            assert!(e.to_string().contains(what), "{what}: {e}");
        }
    }

    #[test]
    fn a_base_of_another_length_than_promised_is_an_error() {
        let short = Base::read(10, &[1u8; 9][..]).err().expect("9 bytes for 10");
        assert_eq!(short.kind(), ErrorKind::UnexpectedEof);
        let long = Base::read(10, &[1u8; 11][..]).err().expect("11 bytes for 10");
        assert!(long.to_string().contains("more than 10 bytes"), "{long}");
    }
}
