//! Worker threads: how every parallel kernel splits its work.
//!
//! A split runs `task(w)` for each worker `w` in `0..workers`: `0` on the calling thread, the
//! others on helper threads kept for the life of the process. A helper that finishes its share
//! keeps polling for the next one for [`SPIN`] before it parks. Kernels of a model split back to
//! back, microseconds apart, and waking a parked thread costs more than many of them take: on the
//! 2-core VM this was written on, a split of 5 us of work took 64 us when the helper had parked
//! (it parked within 20 us under a general-purpose pool) and 6 us when it was still polling.
//!
//! Workers never outnumber the cores ([`set_threads`]). Splits never nest: a worker's share
//! runs with [`threads`] at 1. Two threads splitting at once do not share helpers: the second
//! runs all its shares itself.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long a helper polls for its next share before it parks.
const SPIN: Duration = Duration::from_micros(500);
/// How long of that it polls back to back; after that it yields between polls. Yielding
/// after some 20 us instead cost MobileNet-V2 at 2 threads about 5% (5.2 -> 5.5 ms in the
/// quiet rounds of an alternating run): splits came while the helper was in a system call.
const EAGER: Duration = Duration::from_micros(100);

static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Sets the worker threads kernels split over (default 1) to `n`, at most the cores this
/// process may run on, and returns the count set. Helpers poll between splits, so more of
/// them than cores take turns polling while the thread with work waits for a core: MobileNet-V2
/// at 4 threads on 2 cores took 66 ms, against 5 ms at 2.
pub fn set_threads(n: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let n = n.clamp(1, cores);
    THREADS.store(n, Ordering::Relaxed);
    n
}

thread_local! {
    /// Set while a thread runs one worker's share of a split: work it calls stays on it, so
    /// splits never nest (a head of attention would otherwise split its small products again).
    static IN_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Workers a split may use here: [`set_threads`]'s count, or 1 inside a worker.
pub fn threads() -> usize {
    if IN_WORKER.with(|w| w.get()) {
        1
    } else {
        THREADS.load(Ordering::Relaxed)
    }
}

/// Runs `f` as a worker: nothing it calls splits again (until it returns or unwinds).
fn as_worker<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_WORKER.with(|w| w.set(self.0));
        }
    }
    let _restore = Restore(IN_WORKER.with(|w| w.replace(true)));
    f()
}

/// Runs `f` on `0..n` split into one contiguous range per worker ([`threads`]), when there
/// are at least `min_per_worker` items for each; on the calling thread otherwise.
pub fn parallel_ranges(n: usize, min_per_worker: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    let workers = threads().min(n / min_per_worker.max(1)).max(1);
    if workers == 1 {
        return f(0..n);
    }
    split(workers, &|w| f(share_start(w, workers, n, 1)..share_start(w + 1, workers, n, 1)));
}

/// Runs `f(i, chunk)` for every `chunk_len`-element chunk `i` of `out` (a last, shorter one
/// included), contiguous runs of chunks split over the workers as [`parallel_ranges`] splits
/// indices: the way kernels whose outputs are independent planes or rows write them.
pub fn parallel_chunks<T: Send + Copy>(
    out: &mut [T],
    chunk_len: usize,
    min_per_worker: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let chunk_len = chunk_len.max(1);
    let (len, base) = (out.len(), Shared(out.as_mut_ptr()));
    parallel_ranges(len.div_ceil(chunk_len), min_per_worker, |chunks| {
        for i in chunks {
            let start = i * chunk_len;
            let n = chunk_len.min(len - start);
            // SAFETY: chunk i is [start, start + n) of `out`, and every index is given to
            // exactly one task, so no two tasks hold overlapping slices.
            f(i, unsafe { std::slice::from_raw_parts_mut(base.get().add(start), n) });
        }
    });
}

/// Where worker `w`'s share of `0..extent` starts: the multiple of `unit` nearest an even
/// split. Rounding up instead gave a 14x14 map's 196 columns to two workers as 112 and 84.
pub(crate) fn share_start(w: usize, workers: usize, extent: usize, unit: usize) -> usize {
    if w >= workers {
        return extent;
    }
    ((w * extent + workers * unit / 2) / (workers * unit) * unit).min(extent)
}

/// Runs `task(w)` for every `w` in `0..workers`, each as a worker; returns when all have
/// returned. A panic in any share is raised again here, after every share has finished.
pub fn split(workers: usize, task: &(dyn Fn(usize) + Sync)) {
    if workers <= 1 {
        return as_worker(|| task(0));
    }
    let mut helpers = match HELPERS.try_lock() {
        Ok(helpers) => helpers,
        // A share that panicked on the calling thread poisoned the lock; the helpers are fine.
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return run_every_share_here(workers, task),
    };
    while helpers.len() < workers - 1 {
        let index = helpers.len() + 1;
        helpers.push(Helper::start(index));
    }
    let job = Job { task, pending: AtomicUsize::new(workers - 1), panicked: AtomicBool::new(false) };
    let shared = &job as *const Job as *mut Job<'static>;
    for helper in &helpers[..workers - 1] {
        helper.slot.0.store(shared, Ordering::Release);
        helper.thread.unpark();
    }
    // Helpers hold `job` (and `task`, borrowed from the caller) until they count themselves
    // out: wait for that even when the calling thread's share unwinds.
    let finished = WaitFor(&job);
    as_worker(|| task(0));
    drop(finished);
    if job.panicked.load(Ordering::Relaxed) {
        panic!("a worker thread panicked during a split (its message is above)");
    }
}

/// Runs every share on the calling thread (another thread holds the helpers), then raises the
/// first share's panic, if any: the same contract as a split over helpers.
fn run_every_share_here(workers: usize, task: &(dyn Fn(usize) + Sync)) {
    let mut first_panic = None;
    for w in 0..workers {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| as_worker(|| task(w)))) {
            first_panic.get_or_insert(payload);
        }
    }
    if let Some(payload) = first_panic {
        std::panic::resume_unwind(payload);
    }
}

/// One split's shares for the helpers, on the splitting thread's stack.
struct Job<'a> {
    task: &'a (dyn Fn(usize) + Sync),
    /// Helpers that have not finished their share.
    pending: AtomicUsize,
    panicked: AtomicBool,
}

struct WaitFor<'a, 'j>(&'a Job<'j>);

impl Drop for WaitFor<'_, '_> {
    fn drop(&mut self) {
        let mut polls = 0u32;
        while self.0.pending.load(Ordering::Acquire) != 0 {
            // A helper descheduled by the OS needs this core more than a poll does.
            if polls < 1 << 16 {
                polls += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

static HELPERS: Mutex<Vec<Helper>> = Mutex::new(Vec::new());

/// A helper thread and the slot it takes its next job from.
struct Helper {
    slot: Arc<Slot>,
    thread: Thread,
}

/// Where a split leaves a helper's job; a cache line of its own, as the helper polls it.
#[repr(align(64))]
struct Slot(AtomicPtr<Job<'static>>);

impl Helper {
    /// Starts the helper that runs worker `index`'s shares.
    fn start(index: usize) -> Helper {
        let slot = Arc::new(Slot(AtomicPtr::new(null_mut())));
        let polled = slot.clone();
        let handle = std::thread::Builder::new()
            .name(format!("smelt-worker-{index}"))
            .spawn(move || polled.serve(index))
            .expect("a worker thread starts");
        Helper { slot, thread: handle.thread().clone() }
    }
}

impl Slot {
    fn serve(&self, index: usize) -> ! {
        IN_WORKER.with(|w| w.set(true));
        loop {
            let job = self.next_job();
            // SAFETY: the splitting thread keeps the job alive until `pending` counts this
            // helper out, the last thing done with it here.
            let job = unsafe { &*job };
            if catch_unwind(AssertUnwindSafe(|| (job.task)(index))).is_err() {
                job.panicked.store(true, Ordering::Relaxed);
            }
            job.pending.fetch_sub(1, Ordering::Release);
        }
    }

    /// Polls for [`SPIN`], then parks until a split unparks it. Past [`EAGER`] it yields
    /// between polls, so that other busy processes get the core it holds.
    fn next_job(&self) -> *mut Job<'static> {
        let start = Instant::now();
        let (mut polls, mut eager) = (0u32, true);
        loop {
            // Only the helper clears its slot: a job seen here is still there for the swap.
            if !self.0.load(Ordering::Relaxed).is_null() {
                return self.0.swap(null_mut(), Ordering::Acquire);
            }
            polls = polls.wrapping_add(1);
            // Reading the clock costs more than a poll: look at it every 64th.
            if polls.is_multiple_of(64) {
                let waited = start.elapsed();
                if waited >= SPIN {
                    // A split stores the job before it unparks, so an unpark between the
                    // load above and this park is not lost: park returns at once.
                    std::thread::park();
                    continue;
                }
                eager = waited < EAGER;
            }
            if eager {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// A pointer workers share; they touch disjoint parts of what it points to, or only read it.
#[derive(Clone, Copy)]
pub(crate) struct Shared<T>(pub(crate) *mut T);
// SAFETY: every user splits the pointee into disjoint per-worker parts or only reads it.
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// Whole-struct access, so closures capture the `Send` wrapper, not the raw field.
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_is_given_once_with_its_index_and_length() {
        set_threads(2);
        let mut out = vec![0usize; 103];
        parallel_chunks(&mut out, 10, 1, |i, chunk| {
            assert_eq!(chunk.len(), if i == 10 { 3 } else { 10 });
            chunk.iter_mut().for_each(|e| *e += i + 1);
        });
        assert!(out.iter().enumerate().all(|(k, &e)| e == k / 10 + 1), "{out:?}");
        set_threads(1);
    }

    #[test]
    fn shares_start_at_the_unit_nearest_an_even_split() {
        for (extent, unit) in [(196, 16), (112, 16), (3136, 16), (5, 16), (49, 6), (1280, 6)] {
            for workers in 1..=4 {
                let starts: Vec<usize> = (0..=workers).map(|w| share_start(w, workers, extent, unit)).collect();
                assert_eq!((starts[0], starts[workers]), (0, extent));
                for (w, pair) in starts.windows(2).enumerate() {
                    assert!(pair[0] <= pair[1] && pair[0] % unit == 0, "{extent}/{unit}: {starts:?}");
                    let off = (pair[0] * workers).abs_diff(w * extent);
                    assert!(off <= unit * workers / 2, "{extent}/{unit} over {workers}: {starts:?}");
                }
            }
        }
        assert_eq!(share_start(1, 2, 196, 16), 96);
    }

    #[test]
    fn every_share_runs_once_on_its_own_worker() {
        for workers in [1, 2, 3, 5] {
            let counts: Vec<AtomicUsize> = (0..workers).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..200 {
                split(workers, &|w| {
                    assert_eq!(threads(), 1, "a share splits no further");
                    counts[w].fetch_add(1, Ordering::Relaxed);
                });
            }
            assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 200), "{workers} workers");
        }
    }

    #[test]
    fn a_panicking_share_is_raised_after_every_share_finished() {
        // Share 1 runs on a helper, share 0 on the calling thread.
        for failing in [1, 0] {
            let finished = AtomicUsize::new(0);
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                split(3, &|w| {
                    if w == failing {
                        panic!("share {w} fails");
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    finished.fetch_add(1, Ordering::Relaxed);
                })
            }));
            assert!(outcome.is_err());
            assert_eq!(finished.load(Ordering::Relaxed), 2);
            assert!(!IN_WORKER.with(|w| w.get()), "the calling thread splits again afterwards");
        }
        // The helpers are still there for the next split.
        let ran = AtomicUsize::new(0);
        split(3, &|_| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_split_without_helpers_also_runs_every_share_before_raising() {
        // Another thread holds the helpers, so this split runs its shares itself.
        let held = HELPERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let finished = AtomicUsize::new(0);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            split(3, &|w| {
                if w == 1 {
                    panic!("share {w} fails");
                }
                finished.fetch_add(1, Ordering::Relaxed);
            })
        }));
        drop(held);
        assert!(outcome.is_err());
        assert_eq!(finished.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn concurrent_splits_each_run_all_their_shares() {
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        let ran = AtomicUsize::new(0);
                        split(2, &|_| {
                            ran.fetch_add(1, Ordering::Relaxed);
                        });
                        assert_eq!(ran.load(Ordering::Relaxed), 2);
                    }
                });
            }
        });
    }
}
