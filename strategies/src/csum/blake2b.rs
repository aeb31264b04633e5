//! blake2b-256 (RFC 7693, unkeyed, 32-byte digest), btrfs's `blake2b`: RustCrypto's blake2.
//!
//! A 32-byte digest is not the first half of blake2b-512's: the length is in the
//! parameter block, so every output bit differs.

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};

pub(super) const LEN: usize = 32;

pub(super) fn digest(data: &[u8], out: &mut [u8]) {
    out.copy_from_slice(&Blake2b::<U32>::digest(data));
}

pub(super) fn implementation() -> String {
    "blake2 crate 0.10 (RustCrypto) Blake2b<U32>, portable".into()
}

#[cfg(test)]
mod tests {
    use super::super::hex;
    use super::*;

    fn blake2b256(data: &[u8]) -> String {
        let mut out = [0u8; LEN];
        digest(data, &mut out);
        hex(&out)
    }

    #[test]
    fn reference_vectors() {
        // The BLAKE2 reference implementation's BLAKE2b-256 of "abc" and of nothing.
        assert_eq!(
            blake2b256(b"abc"),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"
        );
        assert_eq!(
            blake2b256(b""),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
        );
    }

    #[test]
    fn the_crate_computes_rfc7693s_blake2b_512_example() {
        // RFC 7693 appendix A gives only the 64-byte digest of "abc": the same core.
        let full = blake2::Blake2b512::digest(b"abc");
        assert_eq!(
            hex(&full),
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1\
             7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"
        );
        assert_ne!(hex(&full[..LEN]), blake2b256(b"abc"));
    }
}
