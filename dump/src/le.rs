//! Little-endian fields of fixed-layout records: the dump's header and chunk
//! records, the stream's records, the crash note. Reads past the end give
//! zeros (or `None`), writes past the end are dropped: a short or damaged record
//! is caught by its magic and CRC, never by a panic.

/// Copies `bytes` into `out` at `at`; nothing when it does not fit.
pub fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    let end = at.checked_add(bytes.len());
    if let Some(dst) = end.and_then(|end| out.get_mut(at..end)) {
        dst.copy_from_slice(bytes);
    }
}

/// `N` bytes at `at`, if there are that many.
pub fn bytes<const N: usize>(src: &[u8], at: usize) -> Option<[u8; N]> {
    let mut b = [0u8; N];
    b.copy_from_slice(src.get(at..at.checked_add(N)?)?);
    Some(b)
}

/// `N` bytes at `at`, zeros when there are not that many.
pub fn get<const N: usize>(src: &[u8], at: usize) -> [u8; N] {
    bytes(src, at).unwrap_or([0; N])
}

/// The little-endian `u32` at `at` (0 past the end).
pub fn u32_at(src: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(get(src, at))
}

/// The little-endian `u64` at `at` (0 past the end).
pub fn u64_at(src: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(get(src, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_is_zero_or_dropped() {
        let mut buf = [0u8; 8];
        put(&mut buf, 4, &7u32.to_le_bytes());
        assert_eq!(u32_at(&buf, 4), 7);
        put(&mut buf, 6, &[1, 2, 3]);
        put(&mut buf, usize::MAX, &[1]);
        assert_eq!(buf, [0, 0, 0, 0, 7, 0, 0, 0]);
        assert_eq!(u64_at(&buf, 4), 0);
        assert_eq!(bytes::<2>(&buf, usize::MAX), None);
        assert_eq!(get::<2>(&buf, 7), [0, 0]);
    }
}
