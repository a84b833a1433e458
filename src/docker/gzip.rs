//! Layer compression for pushes: one gzip stream, deflated or stored per
//! 1 MiB chunk. A chunk whose bytes are near-uniform (over 7.9
//! bits of entropy per byte: random data, archives, media, anything already
//! compressed) is stored as is, because deflate cannot shrink it and its
//! search costs about 1 core-second per 20 MB here; every other chunk is
//! deflated at zlib's default level, as the Docker daemon's own push does.
//! The output depends only on the input, so a layer always gets the same
//! digest and a registry that has it is not sent it again.

use std::io::{self, Read, Write};

use flate2::{Compress, Compression, Crc, FlushCompress};

/// Bytes judged together.
pub const CHUNK: usize = 1 << 20;
/// Above this many bits per byte, a chunk is stored rather than deflated.
const STORE_ABOVE_BITS: f64 = 7.9;

/// gzip header: no name, no time, unknown OS (so the bytes never vary).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Shannon entropy of `data` in bits per byte.
pub fn entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u64; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let n = data.len() as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| c as f64 / n).map(|p| -p * p.log2()).sum()
}

/// Gzips all of `input` into `output`; returns the bytes read.
///
/// Chunks that compress go through zlib, flushed to a byte boundary before a
/// stored chunk; stored chunks are written as deflate's stored blocks; a
/// final empty stored block ends the stream.
pub fn compress(mut input: impl Read, mut output: impl Write) -> io::Result<u64> {
    let mut deflate = Compress::new(Compression::default(), false);
    // Whether zlib holds input not yet flushed to a byte boundary.
    let mut deflating = false;
    let mut crc = Crc::new();
    let mut chunk = vec![0u8; CHUNK];
    let mut out = Vec::with_capacity(CHUNK + CHUNK / 8);
    output.write_all(&HEADER)?;
    let mut total = 0u64;
    loop {
        let n = read_full(&mut input, &mut chunk)?;
        let data = &chunk[..n];
        crc.update(data);
        total += n as u64;
        if entropy(data) > STORE_ABOVE_BITS {
            if deflating {
                run(&mut deflate, &[], &mut out, &mut output, FlushCompress::Sync)?;
                deflate.reset();
                deflating = false;
            }
            for block in data.chunks(u16::MAX as usize) {
                stored_block(&mut output, block, false)?;
            }
        } else if n > 0 {
            run(&mut deflate, data, &mut out, &mut output, FlushCompress::None)?;
            deflating = true;
        }
        if n < CHUNK {
            break;
        }
    }
    if deflating {
        run(&mut deflate, &[], &mut out, &mut output, FlushCompress::Sync)?;
    }
    stored_block(&mut output, &[], true)?;
    output.write_all(&crc.sum().to_le_bytes())?;
    output.write_all(&crc.amount().to_le_bytes())?;
    output.flush()?;
    Ok(total)
}

/// One stored deflate block (at a byte boundary, at most 65,535 bytes).
fn stored_block(output: &mut impl Write, data: &[u8], last: bool) -> io::Result<()> {
    let len = u16::try_from(data.len()).expect("a stored block holds at most 65,535 bytes");
    output.write_all(&[u8::from(last)])?;
    output.write_all(&len.to_le_bytes())?;
    output.write_all(&(!len).to_le_bytes())?;
    output.write_all(data)
}

/// Feeds `data` to `deflate` with `flush`, writing what comes out, until it
/// has taken all of it (and, for a flush, emitted everything).
fn run(
    deflate: &mut Compress,
    mut data: &[u8],
    out: &mut Vec<u8>,
    output: &mut impl Write,
    flush: FlushCompress,
) -> io::Result<()> {
    loop {
        out.clear();
        let before = deflate.total_in();
        deflate.compress_vec(data, out, flush).map_err(io::Error::other)?;
        data = &data[(deflate.total_in() - before) as usize..];
        output.write_all(out)?;
        if data.is_empty() && out.len() < out.capacity() {
            return Ok(());
        }
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;

    /// Deterministic bytes that deflate cannot shrink.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn text(len: usize) -> Vec<u8> {
        b"fn main() { println!(\"hello, layer\"); }\n".iter().copied().cycle().take(len).collect()
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        assert_eq!(compress(data, &mut out).unwrap(), data.len() as u64);
        out
    }

    /// Reads one gzip member: were the output several, only the first would come back.
    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(data).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn entropy_tells_noise_from_text() {
        assert!(entropy(&noise(CHUNK, 7)) > 7.99);
        assert!(entropy(&text(CHUNK)) < 5.0);
        assert_eq!(entropy(&[0; 100]), 0.0);
        assert_eq!(entropy(&[]), 0.0);
    }

    #[test]
    fn mixed_layers_round_trip_and_only_compressible_chunks_shrink() {
        let sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17];
        for size in sizes {
            for data in [noise(size, 3), text(size)] {
                assert_eq!(gunzip(&gz(&data)), data, "size {size}");
            }
        }
        // noise, text, noise, text: levels switch three times mid-stream.
        let mut mixed = Vec::new();
        for i in 0..4 {
            mixed.extend(if i % 2 == 0 { noise(CHUNK, i) } else { text(CHUNK) });
        }
        let out = gz(&mixed);
        assert_eq!(gunzip(&out), mixed);
        let stored = 2 * CHUNK;
        assert!(out.len() > stored, "noise chunks are kept whole: {} bytes", out.len());
        assert!(out.len() < stored + CHUNK / 50, "text chunks shrink to almost nothing: {} bytes", out.len());
        let noise = noise(4 * CHUNK, 9);
        let noise_only = gz(&noise);
        // Stored by relctl: a stored block of 65,535 bytes right after the header, holding them verbatim.
        assert_eq!(noise_only[10..15], [0, 0xff, 0xff, 0, 0]);
        assert_eq!(noise_only[15..15 + 65_535], noise[..65_535]);
        assert!(noise_only.len() < 4 * CHUNK + 4 * CHUNK / 1000, "stored overhead under 0.1 %: {}", noise_only.len());
    }

    #[test]
    fn the_same_bytes_always_compress_to_the_same_blob() {
        let data = [noise(CHUNK + 5, 1), text(CHUNK)].concat();
        assert_eq!(gz(&data), gz(&data));
        assert_eq!(&gz(&data)[..10], &HEADER, "no time or name in the header");
    }

    #[test]
    fn a_failing_reader_is_an_error() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk gone"))
            }
        }
        let err = compress(Broken, Vec::new()).unwrap_err();
        assert_eq!(err.to_string(), "disk gone");
    }
}
