//! Per-sector checksum algorithms: the CPU work the strategies place.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Checksums cover 4 KiB sectors, as btrfs's do with 4 KiB pages.
pub const SECTOR_SIZE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algo {
    Crc32c,
    Sha256,
    None,
}

impl Algo {
    pub const ALL: [Algo; 3] = [Algo::Crc32c, Algo::Sha256, Algo::None];

    pub fn name(self) -> &'static str {
        match self {
            Algo::Crc32c => "crc32c",
            Algo::Sha256 => "sha256",
            Algo::None => "none",
        }
    }

    /// Bytes of checksum per sector (0 for `none`).
    #[allow(clippy::len_without_is_empty)] // a width, not a collection
    pub fn len(self) -> usize {
        match self {
            Algo::Crc32c => 4,
            Algo::Sha256 => 32,
            Algo::None => 0,
        }
    }

    /// Checksums one buffer.
    pub fn digest(self, data: &[u8], out: &mut [u8]) {
        debug_assert_eq!(out.len(), self.len());
        match self {
            Algo::Crc32c => out.copy_from_slice(&crc32c::crc32c(data).to_le_bytes()),
            Algo::Sha256 => out.copy_from_slice(&Sha256::digest(data)),
            Algo::None => {}
        }
    }

    /// Checksums every whole sector of `data` into `out` (`len()` bytes per sector).
    pub fn sectors(self, data: &[u8], out: &mut [u8]) {
        let n = self.len();
        assert_eq!(data.len() % SECTOR_SIZE, 0, "data is not whole sectors");
        assert_eq!(out.len(), data.len() / SECTOR_SIZE * n, "wrong output size");
        if n == 0 {
            return;
        }
        for (sector, sum) in data.chunks_exact(SECTOR_SIZE).zip(out.chunks_exact_mut(n)) {
            self.digest(sector, sum);
        }
    }

    /// Which implementation runs, for the manifest (hardware or software).
    pub fn implementation(self) -> String {
        #[cfg(target_arch = "x86_64")]
        let (hw_crc, hw_sha) = (
            std::arch::is_x86_feature_detected!("sse4.2"),
            std::arch::is_x86_feature_detected!("sha"),
        );
        #[cfg(not(target_arch = "x86_64"))]
        let (hw_crc, hw_sha) = (false, false);
        match self {
            Algo::Crc32c if hw_crc => "crc32c crate 0.6, SSE4.2 crc32 instruction".into(),
            Algo::Crc32c => "crc32c crate 0.6, software tables".into(),
            Algo::Sha256 if hw_sha => "sha2 crate 0.10, SHA-NI".into(),
            Algo::Sha256 => "sha2 crate 0.10, software".into(),
            Algo::None => "none".into(),
        }
    }
}

impl fmt::Display for Algo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algo {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Algo::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("unknown checksum '{s}' (expected crc32c, sha256 or none)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn crc(data: &[u8]) -> u32 {
        let mut out = [0u8; 4];
        Algo::Crc32c.digest(data, &mut out);
        u32::from_le_bytes(out)
    }

    #[test]
    fn crc32c_rfc3720_vectors() {
        // RFC 3720 B.4: 32 bytes of zeros, of ones, incrementing, decrementing.
        assert_eq!(crc(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc(&[0xFFu8; 32]), 0x62A8_AB43);
        let inc: Vec<u8> = (0..32).collect();
        assert_eq!(crc(&inc), 0x46DD_794E);
        let dec: Vec<u8> = (0..32).rev().collect();
        assert_eq!(crc(&dec), 0x113F_DB5C);
        // The classic check value.
        assert_eq!(crc(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn sha256_fips180_vectors() {
        let mut out = [0u8; 32];
        Algo::Sha256.digest(b"abc", &mut out);
        assert_eq!(
            hex(&out),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        Algo::Sha256.digest(
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            &mut out,
        );
        assert_eq!(
            hex(&out),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        Algo::Sha256.digest(b"", &mut out);
        assert_eq!(
            hex(&out),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn sectors_are_checksummed_independently() {
        let mut data = vec![0u8; 3 * SECTOR_SIZE];
        data[SECTOR_SIZE] = 1;
        let mut out = vec![0u8; 12];
        Algo::Crc32c.sectors(&data, &mut out);
        assert_eq!(out[0..4], out[8..12]);
        assert_ne!(out[0..4], out[4..8]);
        assert_eq!(
            u32::from_le_bytes(out[0..4].try_into().unwrap()),
            crc(&[0u8; SECTOR_SIZE])
        );
    }

    #[test]
    fn names_round_trip_and_unknown_is_named() {
        for a in Algo::ALL {
            assert_eq!(a.name().parse::<Algo>().unwrap(), a);
        }
        assert!("md5".parse::<Algo>().unwrap_err().contains("md5"));
    }
}
