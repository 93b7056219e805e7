//! The one rayon thread pool of the process, shared by every batched env and
//! every batched clearing.
//!
//! One pool per process keeps K envs from running K x cores threads. The pool
//! is built on first use and rebuilt in a child after `fork()`: a forked
//! child inherits the pool's bookkeeping but none of its threads, so
//! installing work on the parent's pool would hang.

use crate::error::{MarketError, Result};
use rayon::ThreadPool;
use std::sync::{Arc, Mutex};

/// Largest `num_threads` an env accepts.
pub const MAX_THREADS: usize = 1024;

static POOL: Mutex<Option<(u32, Arc<ThreadPool>)>> = Mutex::new(None);

/// Number of worker threads of the shared pool: the environment variable
/// `POWERMARKET_NUM_THREADS` if set to a positive integer, else the number
/// of cores.
pub fn pool_size() -> usize {
    std::env::var("POWERMARKET_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| (1..=MAX_THREADS).contains(&n))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The shared pool of this process (built now if this process has none).
pub fn shared() -> Result<Arc<ThreadPool>> {
    let pid = std::process::id();
    let mut slot = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((owner, pool)) = slot.as_ref() {
        if *owner == pid {
            return Ok(Arc::clone(pool));
        }
    }
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(pool_size())
            .thread_name(|i| format!("powermarket-{i}"))
            .build()
            .map_err(|e| MarketError::Misuse(format!("could not start worker threads: {e}")))?,
    );
    if let Some((_, stale)) = slot.replace((pid, Arc::clone(&pool))) {
        // The parent's pool: its threads do not exist in this process, so
        // it must not be joined or dropped here.
        std::mem::forget(stale);
    }
    Ok(pool)
}

/// Check a user's `num_threads` (`None`: the pool size).
pub fn threads_arg(num_threads: Option<usize>) -> Result<usize> {
    match num_threads {
        None => Ok(pool_size()),
        Some(t) if (1..=MAX_THREADS).contains(&t) => Ok(t),
        Some(t) => Err(MarketError::Invalid {
            arg: "num_threads",
            message: format!(
                "must be an int in [1, {MAX_THREADS}] (or None for all cores), got {t}"
            ),
        }),
    }
}

/// `dst.copy_from_slice(src)`, split over the shared pool when large (a
/// caller holding a lock, such as Python's GIL, keeps it until every piece is
/// written).
pub fn copy_wide<T: Copy + Send + Sync>(dst: &mut [T], src: &[T], threads: usize) {
    const PIECE: usize = 1 << 16;
    if threads < 2 || dst.len() < 2 * PIECE {
        dst.copy_from_slice(src);
        return;
    }
    match shared() {
        Ok(pool) => pool.install(|| {
            use rayon::prelude::*;
            dst.par_chunks_mut(PIECE)
                .zip(src.par_chunks(PIECE))
                .for_each(|(d, s)| d.copy_from_slice(s));
        }),
        Err(_) => dst.copy_from_slice(src),
    }
}
