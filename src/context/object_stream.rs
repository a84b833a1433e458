//! Streams one blob straight from the repository's object files, so a file
//! of any size costs relctl fixed buffers. libgit2 reads a packed object
//! whole and maps a loose one whole. But git stores a file either as one
//! zlib stream (a loose object is a file of its own, a packed blob an entry
//! of its pack) or, in a pack, as a delta against another object. A zlib
//! stream is inflated as it is read; a delta is applied as it is read, once
//! its base is written out where it can be read at any offset (see
//! [`delta`]). Anything else (an object in an alternate store, an index
//! format other than v2, a file that cannot be read) gives `None`, and the
//! caller reads the blob whole through libgit2, which reports what is wrong
//! with it.
//!
//! [`delta`]: super::delta

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use flate2::bufread::ZlibDecoder;
use git2::Oid;

use super::delta;

/// A blob's size and a reader of exactly its contents. A damaged object
/// file may give fewer or more bytes, or fail zlib's checksum, which only
/// the read after the last byte checks: the caller reads to the end.
pub type Stream = (u64, Box<dyn Read + Send>);

/// Bytes read from an object file at a time.
const BUFFER: usize = 64 << 10;

/// Pack entry types: a blob, and deltas whose base is found by its offset
/// in the same pack or by its id.
const BLOB: u8 = 3;
const OFS_DELTA: u8 = 6;
const REF_DELTA: u8 = 7;

/// Deltas on deltas are followed this deep at most (`git repack --depth` allows 4095).
const MAX_CHAIN: usize = 4095;

/// Opens blob `oid` of the object store at `objects` (a repository's
/// `objects` directory) as a stream, when it is loose or packed.
pub fn open(objects: &Path, oid: Oid) -> Option<Stream> {
    if oid.as_bytes().len() != 20 {
        return None;
    }
    match locate(objects, oid)? {
        Location::Loose(path) => loose(&path),
        Location::Packed { pack, offset } => match packed(objects, pack, offset) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(%oid, "not streamed from its pack, read whole instead: {e}");
                None
            }
        },
    }
}

/// Where an object is stored.
enum Location {
    Loose(PathBuf),
    Packed { pack: PathBuf, offset: u64 },
}

/// Where object `oid` lies in `objects` when it is loose: `ab/cdef…`.
pub fn loose_path(objects: &Path, oid: Oid) -> PathBuf {
    let hex = oid.to_string();
    objects.join(&hex[..2]).join(&hex[2..])
}

/// Finds `oid`: its loose file, else its entry in a pack (through the `.idx` next to each).
fn locate(objects: &Path, oid: Oid) -> Option<Location> {
    let path = loose_path(objects, oid);
    if path.is_file() {
        return Some(Location::Loose(path));
    }
    std::fs::read_dir(objects.join("pack"))
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "idx"))
        .find_map(|idx| {
            Some(Location::Packed { offset: offset_in(&idx, oid).ok()??, pack: idx.with_extension("pack") })
        })
}

/// A loose object: the zlib stream of `blob <size>\0<contents>`.
fn loose(path: &Path) -> Option<Stream> {
    let file = File::open(path).ok()?;
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

/// The inflated data of the pack entry whose data starts at `offset` of `pack`.
fn inflate(pack: &Path, offset: u64) -> std::io::Result<ZlibDecoder<BufReader<File>>> {
    let mut file = File::open(pack)?;
    file.seek(SeekFrom::Start(offset))?;
    Ok(ZlibDecoder::new(BufReader::with_capacity(BUFFER, file)))
}

/// A packed blob: its entry inflated, or its chain of deltas followed down
/// to a blob, every delta below the first applied, and the first applied
/// as it is read. `Ok(None)` for an entry that is not a blob, a base that
/// is not in this store, or a chain longer than [`MAX_CHAIN`].
fn packed(objects: &Path, mut pack: PathBuf, mut offset: u64) -> std::io::Result<Option<Stream>> {
    // Where the data of each delta starts, from the requested object down.
    let mut deltas: Vec<(PathBuf, u64)> = Vec::new();
    let (size, base): (u64, Box<dyn Read + Send>) = loop {
        if deltas.len() > MAX_CHAIN {
            return Ok(None);
        }
        let mut entry = BufReader::with_capacity(BUFFER, File::open(&pack)?);
        entry.seek(SeekFrom::Start(offset))?;
        let (kind, size) = entry_header(&mut entry)?;
        match kind {
            BLOB => break (size, Box::new(ZlibDecoder::new(entry))),
            OFS_DELTA => {
                let back = base_distance(&mut entry)?;
                deltas.push((pack.clone(), entry.stream_position()?));
                let Some(base) = offset.checked_sub(back).filter(|_| back > 0) else { return Ok(None) };
                offset = base;
            }
            REF_DELTA => {
                let mut id = [0u8; 20];
                entry.read_exact(&mut id)?;
                deltas.push((pack.clone(), entry.stream_position()?));
                match Oid::from_bytes(&id).ok().and_then(|id| locate(objects, id)) {
                    Some(Location::Packed { pack: p, offset: o }) => (pack, offset) = (p, o),
                    Some(Location::Loose(path)) => match loose(&path) {
                        Some(stream) => break stream,
                        None => return Ok(None),
                    },
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        }
    };
    let Some((first_pack, first_at)) = deltas.first().cloned() else { return Ok(Some((size, base))) };
    // From the base up: each delta's result is the base of the one above it.
    let mut base = delta::Base::read(size, base)?;
    for (pack, at) in deltas[1..].iter().rev() {
        let (size, applied) = delta::Apply::new(base, inflate(pack, *at)?)?;
        base = delta::Base::read(size, applied)?;
    }
    let (size, applied) = delta::Apply::new(base, inflate(&first_pack, first_at)?)?;
    Ok(Some((size, Box::new(applied))))
}

/// Whether `oid` is stored as a delta in a pack of `objects`.
#[cfg(test)]
pub fn is_delta(objects: &Path, oid: Oid) -> bool {
    let Some(Location::Packed { pack, offset }) = locate(objects, oid) else { return false };
    let mut entry = File::open(pack).unwrap();
    entry.seek(SeekFrom::Start(offset)).unwrap();
    matches!(entry_header(&mut entry).unwrap().0, OFS_DELTA | REF_DELTA)
}

/// How far before an `OFS_DELTA` entry its base starts: a big-endian
/// varint in which each continuation also adds one (git's encoding).
fn base_distance(r: &mut impl Read) -> std::io::Result<u64> {
    let mut byte = [0u8];
    r.read_exact(&mut byte)?;
    let mut distance = u64::from(byte[0] & 0x7f);
    while byte[0] & 0x80 != 0 {
        r.read_exact(&mut byte)?;
        distance = distance
            .checked_add(1)
            .and_then(|d| d.checked_mul(128))
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "a base offset beyond 64 bits"))?
            | u64::from(byte[0] & 0x7f);
    }
    Ok(distance)
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
pub(crate) mod tests {
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

    /// A pack entry's header: the type in bits 4-6 of the first byte, the
    /// size's 4 low bits below it, then 7 bits a byte while the top bit is set.
    fn entry(kind: u8, size: u64) -> Vec<u8> {
        let mut out = vec![(kind << 4) | (size & 0x0f) as u8];
        let mut rest = size >> 4;
        while rest > 0 {
            *out.last_mut().unwrap() |= 0x80;
            out.push((rest & 0x7f) as u8);
            rest >>= 7;
        }
        out
    }

    #[test]
    fn pack_entry_headers_give_type_and_size() {
        for (kind, size) in [(3, 0), (3, 15), (3, 16), (3, 3 << 20), (6, 5), (3, 5_000_000_000)] {
            assert_eq!(entry_header(&mut &entry(kind, size)[..]).unwrap(), (kind, size));
        }
    }

    /// How far back an `OFS_DELTA`'s base is, as git encodes it.
    fn distance(mut back: u64) -> Vec<u8> {
        let mut out = vec![(back & 0x7f) as u8];
        back >>= 7;
        while back > 0 {
            back -= 1;
            out.push(0x80 | (back & 0x7f) as u8);
            back >>= 7;
        }
        out.reverse();
        out
    }

    #[test]
    fn base_distances_decode_as_git_encodes_them() {
        for back in [0, 1, 127, 128, 129, 16_511, 16_512, 1 << 40] {
            assert_eq!(base_distance(&mut &distance(back)[..]).unwrap(), back);
        }
    }

    /// `data` as a zlib stream at `level` (0: stored blocks), as git writes objects.
    pub(crate) fn zlib(data: &[u8], level: u32) -> Vec<u8> {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(level));
        z.write_all(data).unwrap();
        z.finish().unwrap()
    }

    /// A loose object file: the zlib stream of a header that gives `size`, then `body`.
    pub(crate) fn loose_object(size: u64, body: &[u8], level: u32) -> Vec<u8> {
        zlib(&[format!("blob {size}\0").as_bytes(), body].concat(), level)
    }

    fn blob_id(data: &[u8]) -> Oid {
        Oid::hash_object(git2::ObjectType::Blob, data).unwrap()
    }

    /// What a hand-made pack entry holds (its data not yet compressed).
    enum Body {
        Blob(Vec<u8>),
        /// A delta whose base is the entry at this index of the pack.
        OfsDelta(usize, Vec<u8>),
        /// A delta whose base has this id.
        RefDelta(Oid, Vec<u8>),
    }

    /// Writes `objects/pack/pack-t.{pack,idx}` holding `entries`.
    fn write_pack(objects: &Path, entries: Vec<(Oid, Body)>) {
        let mut pack = [&b"PACK"[..], &2u32.to_be_bytes(), &(entries.len() as u32).to_be_bytes()].concat();
        let mut index: Vec<([u8; 20], u64)> = Vec::new();
        for (id, body) in entries {
            let at = pack.len() as u64;
            let (kind, prefix, data) = match body {
                Body::Blob(data) => (BLOB, Vec::new(), data),
                Body::OfsDelta(base, data) => (OFS_DELTA, distance(at - index[base].1), data),
                Body::RefDelta(base, data) => (REF_DELTA, base.as_bytes().to_vec(), data),
            };
            index.push((id.as_bytes().try_into().unwrap(), at));
            pack.extend(entry(kind, data.len() as u64));
            pack.extend(prefix);
            pack.extend(zlib(&data, 1));
        }
        pack.extend([0u8; 20]);
        index.sort();
        std::fs::create_dir_all(objects.join("pack")).unwrap();
        std::fs::write(objects.join("pack/pack-t.pack"), pack).unwrap();
        std::fs::write(objects.join("pack/pack-t.idx"), idx(&index)).unwrap();
    }

    fn read_all(objects: &Path, id: Oid) -> Option<Vec<u8>> {
        let (size, mut reader) = open(objects, id)?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).ok()?;
        assert_eq!(out.len() as u64, size);
        Some(out)
    }

    #[test]
    fn deltas_are_applied_down_to_their_base_by_offset_and_by_id() {
        use super::delta::tests::{copy, delta};
        let dir = tempfile::tempdir().unwrap();
        let objects = dir.path();
        let a: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 253) as u8).collect();
        let b = [&a[..50_000], b"-changed-", &a[50_000..]].concat();
        let c = [&b[..10], &b[20_000..]].concat();
        let d = [&a[90_000..], b"tail"].concat();
        let e = [&c[..5], b"!", &c[5..]].concat();
        let (ia, ib, ic, id, ie) = (blob_id(&a), blob_id(&b), blob_id(&c), blob_id(&d), blob_id(&e));
        // B: a delta of A; C: of B; E: of C (a chain of three); D: of A, named by id.
        let insert = |bytes: &[u8]| [vec![bytes.len() as u8], bytes.to_vec()].concat();
        let b_delta = delta(100_000, b.len() as u64, &[copy(0, 50_000), insert(b"-changed-"), copy(50_000, 50_000)]);
        let c_delta = delta(b.len() as u64, c.len() as u64, &[copy(0, 10), copy(20_000, b.len() as u64 - 20_000)]);
        let e_delta = delta(c.len() as u64, e.len() as u64, &[copy(0, 5), insert(b"!"), copy(5, c.len() as u64 - 5)]);
        let d_delta = delta(100_000, d.len() as u64, &[copy(90_000, 10_000), insert(b"tail")]);
        write_pack(
            objects,
            vec![
                (ia, Body::Blob(a.clone())),
                (ib, Body::OfsDelta(0, b_delta)),
                (ic, Body::OfsDelta(1, c_delta)),
                (id, Body::RefDelta(ia, d_delta)),
                (ie, Body::OfsDelta(2, e_delta)),
            ],
        );
        assert!(read_all(objects, ia).unwrap() == a);
        assert!(read_all(objects, ib).unwrap() == b, "a delta of a blob");
        assert!(read_all(objects, ic).unwrap() == c, "a delta of a delta");
        assert!(read_all(objects, id).unwrap() == d, "a delta whose base is named by id");
        assert!(read_all(objects, ie).unwrap() == e, "a chain of three deltas, applied from the base up");
    }

    #[test]
    fn a_missing_base_is_left_to_libgit2_and_a_broken_delta_fails_its_read() {
        use super::delta::tests::{copy, delta};
        let dir = tempfile::tempdir().unwrap();
        let objects = dir.path();
        let (orphan, missing, cycle) = (blob_id(b"thr"), blob_id(b"not in this store"), blob_id(b"cyc"));
        let (ia, ib) = (blob_id(b"one"), blob_id(b"two"));
        write_pack(
            objects,
            vec![
                (ia, Body::Blob(b"one".to_vec())),
                (ib, Body::OfsDelta(0, delta(3, 10, &[copy(0, 10)]))),
                (orphan, Body::RefDelta(missing, delta(3, 3, &[copy(0, 3)]))),
                (cycle, Body::RefDelta(cycle, delta(3, 3, &[copy(0, 3)]))),
            ],
        );
        assert!(open(objects, orphan).is_none(), "a base that is not in the store: libgit2 says what is wrong");
        assert!(open(objects, cycle).is_none(), "a delta of itself ends, and libgit2 says what is wrong");
        let (_, mut reader) = open(objects, ib).expect("a delta on a blob");
        let e = reader.read_to_end(&mut Vec::new()).expect_err("copies 10 bytes of a 3-byte base");
        assert!(e.to_string().contains("copies 10 bytes from offset 0 of a base of 3 bytes"), "{e}");
    }
}
