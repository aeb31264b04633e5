//! sha256 (FIPS 180-4), btrfs's `sha256`: the sha2 crate, with SHA-NI where the CPU has it.

use sha2::{Digest, Sha256};

pub(super) const LEN: usize = 32;

pub(super) fn digest(data: &[u8], out: &mut [u8]) {
    out.copy_from_slice(&Sha256::digest(data));
}

pub(super) fn implementation() -> String {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sha") {
        return "sha2 crate 0.10, SHA-NI".into();
    }
    "sha2 crate 0.10, software".into()
}

#[cfg(test)]
mod tests {
    use super::super::hex;
    use super::*;

    fn sha256(data: &[u8]) -> String {
        let mut out = [0u8; LEN];
        digest(data, &mut out);
        hex(&out)
    }

    #[test]
    fn fips180_vectors() {
        assert_eq!(
            sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            sha256(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
