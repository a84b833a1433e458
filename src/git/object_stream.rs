//! Streams one blob straight from the repository's object files, so a file
//! of any size costs relctl a fixed buffer. libgit2 reads a packed object
//! whole and maps a loose one whole. But git stores a file as one zlib
//! stream at a known place in both cases: a loose object is a file of its
//! own, and a packed blob that is not a delta is an entry of its pack (git
//! never deltifies files above `core.bigFileThreshold`, 512 MiB by default).
//! Those two cases are inflated here as they are read; anything else (a
//! delta, an object in an alternate store, an index format other than v2,
//! a file that cannot be read) gives `None`, and the caller reads the blob
//! whole through libgit2, which reports what is wrong with it.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use flate2::bufread::ZlibDecoder;
use git2::Oid;

/// A blob's size and a reader of exactly its contents. A damaged object
/// file may give fewer or more bytes, or fail zlib's checksum, which only
/// the read after the last byte checks: the caller reads to the end.
pub type Stream = (u64, Box<dyn Read + Send>);

/// Bytes read from an object file at a time.
const BUFFER: usize = 64 << 10;

/// Opens blob `oid` of the object store at `objects` (a repository's
/// `objects` directory) as a stream, when it is loose or packed undeltified.
pub fn open(objects: &Path, oid: Oid) -> Option<Stream> {
    if oid.as_bytes().len() != 20 {
        return None;
    }
    loose(objects, oid).or_else(|| packed(objects, oid))
}

/// Where object `oid` lies in `objects` when it is loose: `ab/cdef…`.
pub fn loose_path(objects: &Path, oid: Oid) -> PathBuf {
    let hex = oid.to_string();
    objects.join(&hex[..2]).join(&hex[2..])
}

/// A loose object: the zlib stream of `blob <size>\0<contents>`.
fn loose(objects: &Path, oid: Oid) -> Option<Stream> {
    let file = File::open(loose_path(objects, oid)).ok()?;
    let mut z = ZlibDecoder::new(BufReader::with_capacity(BUFFER, file));
    let mut header = Vec::new();
    let mut byte = [0u8];
    loop {
        // Not a zlib stream with a header git writes: leave it to libgit2.
        if z.read_exact(&mut byte).is_err() || header.len() > 32 {
            return None;
        }
        if byte[0] == 0 {
            break;
        }
        header.push(byte[0]);
    }
    let size = std::str::from_utf8(&header).ok()?.strip_prefix("blob ")?.parse().ok()?;
    Some((size, Box::new(z)))
}

/// A packed blob that is not a delta: found through the `.idx` next to each
/// pack, then inflated from its offset in the `.pack`.
fn packed(objects: &Path, oid: Oid) -> Option<Stream> {
    const BLOB: u8 = 3;
    let (offset, idx) = std::fs::read_dir(objects.join("pack"))
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "idx"))
        .find_map(|idx| Some((offset_in(&idx, oid).ok()??, idx)))?;
    let mut pack = File::open(idx.with_extension("pack")).ok()?;
    pack.seek(SeekFrom::Start(offset)).ok()?;
    let mut pack = BufReader::with_capacity(BUFFER, pack);
    let (kind, size) = entry_header(&mut pack).ok()?;
    (kind == BLOB).then(|| (size, Box::new(ZlibDecoder::new(pack)) as Box<dyn Read + Send>))
}

/// Where `oid` starts in the pack of index `idx` (format v2), if it is there.
fn offset_in(idx: &Path, oid: Oid) -> std::io::Result<Option<u64>> {
    const HEAD: u64 = 8 + 256 * 4;
    let mut f = BufReader::new(File::open(idx)?);
    let mut head = [0u8; HEAD as usize];
    f.read_exact(&mut head)?;
    if head[..8] != [0xff, b't', b'O', b'c', 0, 0, 0, 2] {
        return Ok(None);
    }
    let fanout = |i: usize| u64::from(u32::from_be_bytes(head[8 + i * 4..12 + i * 4].try_into().unwrap()));
    let first = usize::from(oid.as_bytes()[0]);
    let (from, to, total) = (if first == 0 { 0 } else { fanout(first - 1) }, fanout(first), fanout(255));
    // A damaged index must not make us allocate what it claims.
    if from > to || to > total || HEAD + total * 28 > f.get_ref().metadata()?.len() {
        return Ok(None);
    }
    // The ids starting with this byte, sorted.
    f.seek(SeekFrom::Start(HEAD + from * 20))?;
    let mut ids = vec![0u8; ((to - from) * 20) as usize];
    f.read_exact(&mut ids)?;
    let ids: Vec<&[u8]> = ids.chunks_exact(20).collect();
    let Ok(at) = ids.binary_search(&oid.as_bytes()) else { return Ok(None) };
    let n = from + at as u64;
    // Then come all ids, a CRC-32 each, a 4-byte offset each, and 8-byte offsets.
    let mut word = [0u8; 4];
    f.seek(SeekFrom::Start(HEAD + total * 24 + n * 4))?;
    f.read_exact(&mut word)?;
    let small = u32::from_be_bytes(word);
    if small & 0x8000_0000 == 0 {
        return Ok(Some(u64::from(small)));
    }
    let mut large = [0u8; 8];
    f.seek(SeekFrom::Start(HEAD + total * 28 + u64::from(small & 0x7fff_ffff) * 8))?;
    f.read_exact(&mut large)?;
    Ok(Some(u64::from_be_bytes(large)))
}

/// A pack entry's type (3 bits) and inflated size (a little-endian varint).
fn entry_header(r: &mut impl Read) -> std::io::Result<(u8, u64)> {
    let mut byte = [0u8];
    r.read_exact(&mut byte)?;
    let kind = (byte[0] >> 4) & 7;
    let mut size = u64::from(byte[0] & 0x0f);
    let mut shift = 4;
    while byte[0] & 0x80 != 0 && shift < 64 {
        r.read_exact(&mut byte)?;
        size |= u64::from(byte[0] & 0x7f) << shift;
        shift += 7;
    }
    Ok((kind, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pack index (v2) of `objects` (id, offset), sorted by id.
    fn idx(objects: &[([u8; 20], u64)]) -> Vec<u8> {
        let mut out = vec![0xff, b't', b'O', b'c', 0, 0, 0, 2];
        for byte in 0..=255u8 {
            let count = objects.iter().filter(|(id, _)| id[0] <= byte).count() as u32;
            out.extend(count.to_be_bytes());
        }
        objects.iter().for_each(|(id, _)| out.extend(id));
        objects.iter().for_each(|_| out.extend([0u8; 4]));
        let mut large = Vec::new();
        for (_, offset) in objects {
            match u32::try_from(*offset) {
                Ok(small) if small < 0x8000_0000 => out.extend(small.to_be_bytes()),
                _ => {
                    out.extend((0x8000_0000 | (large.len() / 8) as u32).to_be_bytes());
                    large.extend(offset.to_be_bytes());
                }
            }
        }
        out.extend(large);
        out
    }

    #[test]
    fn offsets_are_read_from_both_tables_of_a_v2_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pack-x.idx");
        let (a, b, c) = ([0x01; 20], [0xab; 20], [0xac; 20]);
        std::fs::write(&path, idx(&[(a, 12), (b, 5_000_000_000), (c, 0x7fff_ffff)])).unwrap();
        let at = |id: [u8; 20]| offset_in(&path, Oid::from_bytes(&id).unwrap()).unwrap();
        assert_eq!(at(a), Some(12));
        assert_eq!(at(b), Some(5_000_000_000), "beyond 2 GiB: the 8-byte table");
        assert_eq!(at(c), Some(0x7fff_ffff));
        assert_eq!(at([0xaa; 20]), None, "not in this pack");
        assert_eq!(at([0xff; 20]), None);

        // Its counts promise more than the file holds: nothing is read.
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() - 12]).unwrap();
        assert_eq!(at(a), None, "a truncated index");
    }

    #[test]
    fn pack_entry_headers_give_type_and_size() {
        // The type in bits 4-6 of the first byte, the size's 4 low bits
        // below it, then 7 bits a byte while the top bit is set.
        let encode = |kind: u8, size: u64| {
            let mut out = vec![(kind << 4) | (size & 0x0f) as u8];
            let mut rest = size >> 4;
            while rest > 0 {
                *out.last_mut().unwrap() |= 0x80;
                out.push((rest & 0x7f) as u8);
                rest >>= 7;
            }
            out
        };
        for (kind, size) in [(3, 0), (3, 15), (3, 16), (3, 3 << 20), (6, 5), (3, 5_000_000_000)] {
            assert_eq!(entry_header(&mut &encode(kind, size)[..]).unwrap(), (kind, size));
        }
    }
}
