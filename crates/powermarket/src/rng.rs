//! The random numbers of the core: how an RNG is seeded, and how its state
//! is captured and restored (for pickling). Every env, batch and opponent
//! set uses these functions and nothing else.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The one RNG type: ChaCha8, reproducible across machines.
pub type Rng = ChaCha8Rng;

/// Seed an RNG: ChaCha8 from a 64-bit seed, or from OS entropy.
pub fn make_rng(seed: Option<u64>) -> Rng {
    Rng::seed_from_u64(seed.unwrap_or_else(rand::random))
}

/// The RNG of stream `stream` under the key of `seed`: ChaCha8 keyed by
/// `seed_from_u64(seed)`, with its stream (nonce) set. Stream 0 is
/// `make_rng(Some(seed))`; distinct streams never overlap.
pub fn stream_rng(seed: u64, stream: u64) -> Rng {
    let mut r = Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// The whole state of an RNG: its key, stream and position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RngState {
    pub seed: [u8; 32],
    pub stream: u64,
    pub word_pos: u128,
}

impl RngState {
    /// The state of `r`.
    pub fn capture(r: &Rng) -> Self {
        RngState {
            seed: r.get_seed(),
            stream: r.get_stream(),
            word_pos: r.get_word_pos(),
        }
    }

    /// An RNG in this state: it draws what the captured one would have.
    pub fn restore(self) -> Rng {
        let mut r = Rng::from_seed(self.seed);
        r.set_stream(self.stream);
        r.set_word_pos(self.word_pos);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn a_restored_rng_draws_what_the_captured_one_would() {
        let mut a = stream_rng(7, 3);
        let _: [u64; 5] = std::array::from_fn(|_| a.random());
        let mut b = RngState::capture(&a).restore();
        let next_a: Vec<u64> = (0..10).map(|_| a.random()).collect();
        let next_b: Vec<u64> = (0..10).map(|_| b.random()).collect();
        assert_eq!(next_a, next_b);
        assert_ne!(
            next_a,
            (0..10)
                .map(|_| stream_rng(7, 4).random::<u64>())
                .collect::<Vec<_>>()
        );
    }
}
