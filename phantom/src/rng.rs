//! Seeded random streams.
//!
//! Every random draw comes from a ChaCha8 generator keyed by the user's seed and switched to a
//! stream named by *what* is being drawn and *which* chunk of it (a z plane of the noise, the n-th
//! lesion), never by which thread asks. The same seed therefore gives the same bytes on any
//! thread count.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a random stream is used for; the high 16 bits of the ChaCha stream id.
#[derive(Debug, Clone, Copy)]
#[repr(u16)]
pub(crate) enum Purpose {
    /// White noise of the texture field, one stream per z plane of the coarse grid.
    TextureNoise = 1,
    /// Seeds of the Cooper's-ligament compartments.
    Ligaments = 2,
    /// Shape and placement of the n-th lesion.
    Lesion = 3,
}

/// The generator for `purpose` and chunk `index` under `seed`.
pub(crate) fn stream(seed: u64, purpose: Purpose, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((purpose as u64) << 48) | (index & ((1 << 48) - 1)));
    rng
}
