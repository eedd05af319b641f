//! Compressed records (issue 20, ADR 0009): a large log or change record is stored as its
//! postcard body compressed with zstd, under a version byte of its own.
//!
//! The envelope is the checksummed one (`[version][CRC-32C][body]`), whose body here is
//! `[length of the postcard body, u32 little-endian][one zstd frame]`. The checksum covers the
//! compressed bytes: a damaged record is refused before anything is decompressed. A record whose
//! postcard body is shorter than the threshold the writer gives stays in the plain format of
//! its kind (compressing a few hundred bytes gains little and costs the writer more than it
//! saves).

use std::cell::RefCell;

use serde::Serialize;

use super::{CHECKSUM_BYTES, CodecError, encode_unsealed, write_checksum};

/// The postcard body a log record must reach to be stored compressed (log format 8, change
/// records format 2). A `cycle.completed` of 1,000 findings (33 KB) is stored in 2.9 KB; an
/// alert or a span (a few hundred bytes) stays plain.
pub const COMPRESS_FROM: usize = 512;

/// zstd's level: its fastest standard one. Levels 1 and 3 compress a cycle record to within 8 %
/// of each other; level 1 is the faster (620 vs 560 MB/s on this workload, ADR 0009).
const LEVEL: i32 = 1;

/// The largest body a compressed record may name: far above any event the wire accepts (a
/// record of a corrupt length is refused before it is allocated).
const MAX_BODY: usize = 256 << 20;

/// Bytes of the body's length before the zstd frame.
const LENGTH_BYTES: usize = 4;

/// The output buffer a thread keeps between records, at most: one larger (a rare huge event)
/// is given back after its record, so a thread holds what typical records need.
const KEEP_BUFFER_BYTES: usize = 1 << 20;

thread_local! {
    /// The writer thread's compression context, kept between records (making one allocates
    /// about a megabyte), and its output buffer.
    static COMPRESSOR: RefCell<Option<(zstd::bulk::Compressor<'static>, Vec<u8>)>> =
        const { RefCell::new(None) };
    /// A reading thread's decompression context.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Encodes `value` into `out` (cleared first) in the checksummed envelope: version `plain` when
/// its postcard body is shorter than `from` bytes, else version `packed` with the body
/// compressed.
pub(super) fn seal_compressing<T: Serialize + ?Sized>(
    versions: (u8, u8),
    key: &[u8],
    value: &T,
    from: usize,
    out: &mut Vec<u8>,
) {
    encode_compressing(versions, value, from, out);
    write_checksum(key, out);
}

/// [`seal_compressing`] with the checksum left zero (written once the key is known).
pub(super) fn encode_compressing<T: Serialize + ?Sized>(
    (plain, packed): (u8, u8),
    value: &T,
    from: usize,
    out: &mut Vec<u8>,
) {
    encode_unsealed(plain, value, out);
    let head = 1 + CHECKSUM_BYTES;
    let body_len = out.len() - head;
    if body_len < from {
        return;
    }
    COMPRESSOR.with(|slot| {
        let mut slot = slot.borrow_mut();
        let (compressor, frame) = slot.get_or_insert_with(|| {
            (
                zstd::bulk::Compressor::new(LEVEL).expect("zstd's level 1 is valid"),
                Vec::new(),
            )
        });
        frame.clear();
        frame.reserve(zstd::zstd_safe::compress_bound(body_len));
        compressor
            .compress_to_buffer(&out[head..], frame)
            .expect("a buffer of zstd's bound holds the frame");
        out.truncate(head);
        out[0] = packed;
        let len = u32::try_from(body_len).expect("a record body is under 4 GiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(frame);
        if frame.capacity() > KEEP_BUFFER_BYTES {
            *frame = Vec::new();
        }
    });
}

/// The postcard body of a compressed record's (unsealed) body.
pub(super) fn decompress(body: &[u8]) -> Result<Vec<u8>, CodecError> {
    let Some((len, frame)) = body.split_first_chunk::<LENGTH_BYTES>() else {
        return Err(CodecError::Truncated { len: body.len() });
    };
    let len = u32::from_le_bytes(*len) as usize;
    if len > MAX_BODY {
        return Err(CodecError::Compression(format!(
            "names a body of {len} bytes, above the {MAX_BODY} a record may take"
        )));
    }
    let decompressed = DECOMPRESSOR.with(|slot| {
        let mut slot = slot.borrow_mut();
        let decompressor = match &mut *slot {
            Some(decompressor) => decompressor,
            None => slot.insert(
                zstd::bulk::Decompressor::new()
                    .map_err(|e| CodecError::Compression(e.to_string()))?,
            ),
        };
        decompressor
            .decompress(frame, len)
            .map_err(|e| CodecError::Compression(e.to_string()))
    })?;
    if decompressed.len() != len {
        return Err(CodecError::Compression(format!(
            "decompresses to {} bytes, not the {len} it names",
            decompressed.len()
        )));
    }
    Ok(decompressed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_body, unseal_with_key};

    fn record(from: usize) -> (Vec<u8>, Vec<String>) {
        let value: Vec<String> = (0..200).map(|i| format!("check-{:04}", i % 50)).collect();
        let mut out = Vec::new();
        seal_compressing((1, 2), &7u64.to_le_bytes(), &value, from, &mut out);
        (out, value)
    }

    #[test]
    fn a_large_body_is_compressed_and_reads_back_a_small_one_stays_plain() {
        let (packed, value) = record(COMPRESS_FROM);
        assert_eq!(packed[0], 2);
        let plain_len = postcard::to_allocvec(&value).unwrap().len();
        assert!(
            packed.len() * 4 < plain_len,
            "{} vs {plain_len}",
            packed.len()
        );
        let body = decompress(unseal_with_key(&7u64.to_le_bytes(), &packed).unwrap()).unwrap();
        assert_eq!(decode_body::<Vec<String>>(&body).unwrap(), value);

        let (plain, _) = record(usize::MAX);
        assert_eq!(plain[0], 1);
        let body = unseal_with_key(&7u64.to_le_bytes(), &plain).unwrap();
        assert_eq!(decode_body::<Vec<String>>(body).unwrap(), value);
    }

    #[test]
    fn a_huge_record_does_not_leave_its_buffer_behind() {
        // 2 MiB of body that does not compress: the frame buffer grows past what is kept.
        let mut state = 7u64;
        let noise: Vec<u8> = (0..2 << 20)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                (state >> 56) as u8
            })
            .collect();
        let mut out = Vec::new();
        seal_compressing((1, 2), &1u64.to_le_bytes(), &noise, 0, &mut out);
        assert_eq!(out[0], 2);
        let kept =
            COMPRESSOR.with(|slot| slot.borrow().as_ref().map(|(_, frame)| frame.capacity()));
        assert!(
            kept.is_some_and(|capacity| capacity <= KEEP_BUFFER_BYTES),
            "{kept:?}"
        );
        let body = decompress(unseal_with_key(&1u64.to_le_bytes(), &out).unwrap()).unwrap();
        assert_eq!(decode_body::<Vec<u8>>(&body).unwrap(), noise);
    }

    #[test]
    fn a_damaged_or_lying_record_is_refused_not_allocated() {
        let (mut packed, _) = record(0);
        // Under another key, or with a flipped byte: the checksum refuses it first.
        assert!(matches!(
            unseal_with_key(&8u64.to_le_bytes(), &packed),
            Err(CodecError::ChecksumMismatch { .. })
        ));
        let last = packed.len() - 1;
        packed[last] ^= 1;
        assert!(unseal_with_key(&7u64.to_le_bytes(), &packed).is_err());
        // A body naming a length it does not have, or one too large to allocate.
        let (packed, _) = record(0);
        let mut body = unseal_with_key(&7u64.to_le_bytes(), &packed)
            .unwrap()
            .to_vec();
        body[..LENGTH_BYTES].copy_from_slice(&(MAX_BODY as u32 + 1).to_le_bytes());
        assert!(matches!(decompress(&body), Err(CodecError::Compression(_))));
        body[..LENGTH_BYTES].copy_from_slice(&3u32.to_le_bytes());
        assert!(matches!(decompress(&body), Err(CodecError::Compression(_))));
        assert!(matches!(
            decompress(&body[..2]),
            Err(CodecError::Truncated { .. })
        ));
        assert!(matches!(
            decompress(&[0, 1, 0, 0, 9, 9, 9]),
            Err(CodecError::Compression(_))
        ));
    }
}
