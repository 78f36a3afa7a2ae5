//! Deterministic UIDs under the `2.25` root.
//!
//! PS3.5 B.2 lets anyone make a UID without registering a root: `2.25.` followed by the decimal value of a
//! 128-bit UUID (ITU-T X.667). tomolab's UUIDs are pseudo-random (version 4 layout: the version nibble 4 and
//! the RFC 4122 variant bits set) but not drawn from entropy: a ChaCha20 stream keyed by the exam's
//! fingerprint — its seed, preset, view angles, technique and detector grid, which the same configuration and
//! seed reproduce exactly — with one stream per object role. So exporting the same exam twice gives the same
//! Study, Series, Frame of Reference and SOP Instance UIDs, and two exams that differ in any of those settings
//! get unrelated ones. The UIDs are 44 characters at most (the limit is 64).

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// What a UID identifies; each role has its own stream of the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UidRole {
    /// The study (one per exam).
    Study,
    /// The frame of reference (one per exam, shared by every object).
    FrameOfReference,
    /// A series: 1 projections, 2 tomosynthesis volume, 3 2D for presentation.
    Series(u32),
    /// A SOP instance: series number and instance number.
    Instance(u32, u32),
    /// The dimension organisation of the multi-frame volume.
    DimensionOrganization,
    /// An irradiation event (one per view).
    IrradiationEvent(u32),
}

impl UidRole {
    fn stream(self) -> u64 {
        match self {
            Self::Study => 1,
            Self::FrameOfReference => 2,
            Self::DimensionOrganization => 3,
            Self::Series(s) => (1 << 40) | u64::from(s),
            Self::Instance(s, i) => (2 << 40) | (u64::from(s) << 24) | u64::from(i),
            Self::IrradiationEvent(k) => (3 << 40) | u64::from(k),
        }
    }
}

/// Makes the UIDs of one exam.
#[derive(Debug, Clone)]
pub struct UidFactory {
    key: [u8; 32],
}

impl UidFactory {
    /// A factory keyed by the exam's `seed` and `fingerprint` (any bytes that tell exams with the same seed
    /// apart; see the module doc).
    pub fn new(seed: u64, fingerprint: &[u8]) -> Self {
        // Two independent 64-bit FNV-1a hashes of the fingerprint (different offsets), plus the seed.
        let fnv =
            |basis: u64| fingerprint.iter().fold(basis, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_le_bytes());
        key[16..24].copy_from_slice(&fnv(0x8422_2325_cbf2_9ce4).to_le_bytes());
        key[24..].copy_from_slice(b"tomodcm1");
        Self { key }
    }

    /// The UUID of `role` as a 128-bit integer (version 4 layout).
    pub fn uuid(&self, role: UidRole) -> u128 {
        let mut rng = ChaCha20Rng::from_seed(self.key);
        rng.set_stream(role.stream());
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
        bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
        u128::from_be_bytes(bytes)
    }

    /// The UID of `role`: `2.25.` and the UUID in decimal.
    pub fn uid(&self, role: UidRole) -> String {
        format!("2.25.{}", self.uuid(role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_valid_deterministic_and_distinct() {
        let f = UidFactory::new(7, b"wide-angle");
        let roles = [UidRole::Study, UidRole::FrameOfReference, UidRole::Series(1), UidRole::Instance(1, 1)];
        let uids: Vec<String> = roles.iter().map(|&r| f.uid(r)).collect();
        for u in &uids {
            assert!(u.len() <= 64 && u.starts_with("2.25."), "{u}");
            // PS3.5 9.1: components are digits without leading zeros.
            assert!(u.split('.').all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit())), "{u}");
            assert!(u.split('.').all(|c| c == "0" || !c.starts_with('0')), "{u}");
        }
        let mut sorted = uids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), uids.len());
        assert_eq!(UidFactory::new(7, b"wide-angle").uid(UidRole::Study), uids[0]);
        assert_ne!(UidFactory::new(8, b"wide-angle").uid(UidRole::Study), uids[0]);
        assert_ne!(UidFactory::new(7, b"narrow-angle").uid(UidRole::Study), uids[0]);
        let v = f.uuid(UidRole::Study);
        assert_eq!((v >> 76) & 0xf, 4, "version nibble");
        assert_eq!((v >> 62) & 0x3, 0b10, "variant bits");
    }
}
