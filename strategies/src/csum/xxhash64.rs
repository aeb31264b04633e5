//! xxhash64 (XXH64, seed 0), btrfs's `xxhash64`, stored little-endian as btrfs stores it.
//!
//! fio's `verify=xxhash` is XXH32; csumbench has no XXH32 and reads `verify=xxhash` as
//! xxhash64, the one btrfs uses.

pub(super) const LEN: usize = 8;

pub(super) fn digest(data: &[u8], out: &mut [u8]) {
    out.copy_from_slice(&xxhash_rust::xxh64::xxh64(data, 0).to_le_bytes());
}

pub(super) fn implementation() -> String {
    "xxhash-rust 0.8 xxh64, scalar".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xxh64(data: &[u8]) -> u64 {
        let mut out = [0u8; LEN];
        digest(data, &mut out);
        u64::from_le_bytes(out)
    }

    /// xxHash's own sanity buffer (cli/xsum_sanity_check.c): byte i is the top byte of
    /// PRIME32 × PRIME64^i.
    fn sanity_buffer(len: usize) -> Vec<u8> {
        let mut gen: u64 = 2_654_435_761;
        (0..len)
            .map(|_| {
                let b = (gen >> 56) as u8;
                gen = gen.wrapping_mul(11_400_714_785_074_694_797);
                b
            })
            .collect()
    }

    #[test]
    fn published_xxh64_vectors() {
        assert_eq!(xxh64(b""), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxh64(b"a"), 0xD24E_C4F1_A98C_6E5B);
        assert_eq!(xxh64(b"abc"), 0x44BC_2CF5_AD77_0999);
        // xxHash's sanity check, seed 0: lengths that take each of its code paths.
        assert_eq!(xxh64(&sanity_buffer(1)), 0xE934_A84A_DB05_2768);
        assert_eq!(xxh64(&sanity_buffer(14)), 0x8282_DCC4_994E_35C8);
        assert_eq!(xxh64(&sanity_buffer(222)), 0xB641_AE8C_B691_C174);
    }
}
