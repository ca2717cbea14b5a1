//! The bounded hash pool: a fixed set of dedicated OS threads that run every
//! verification and generation, so async runtime threads never hash.
//!
//! Admission, in order:
//! 1. a slot among `workers + queue_limit` (none free: [`PoolError::Busy`]);
//! 2. for memory-hard jobs (Argon2), `m` KiB from the memory budget, waited
//!    for asynchronously;
//! 3. the job is queued to the workers.
//!
//! The time from submission to a worker starting the job is the queue wait,
//! exposed through [`HashPool::stats`] and an optional observer callback.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use zeroize::Zeroizing;

use crate::dummy::DummyHash;
use crate::{GenerateScheme, PoolError, Verification, VerifyOptions};

/// What a pool job does, reported to the queue-wait observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// [`HashPool::verify`].
    Verify,
    /// [`HashPool::generate`].
    Generate,
    /// [`HashPool::dummy_verify`].
    DummyVerify,
}

/// Callback receiving each job's queue wait (e.g. to feed a histogram).
pub type QueueWaitObserver = Arc<dyn Fn(JobKind, Duration) + Send + Sync>;

/// Configuration of a [`HashPool`].
#[derive(Clone)]
pub struct HashPoolConfig {
    /// Number of hashing threads (default: CPU count).
    pub workers: usize,
    /// Jobs that may wait beyond those running before [`PoolError::Busy`].
    pub queue_limit: usize,
    /// KiB that memory-hard jobs may use at once (default 256 MiB).
    pub memory_budget_kib: u32,
    /// Scheme of the dummy hash used by [`HashPool::dummy_verify`]; set it to
    /// the configured default scheme.
    pub default_scheme: GenerateScheme,
    /// Called with every job's queue wait.
    pub queue_wait_observer: Option<QueueWaitObserver>,
}

impl core::fmt::Debug for HashPoolConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HashPoolConfig")
            .field("workers", &self.workers)
            .field("queue_limit", &self.queue_limit)
            .field("memory_budget_kib", &self.memory_budget_kib)
            .field("default_scheme", &self.default_scheme)
            .field("queue_wait_observer", &self.queue_wait_observer.is_some())
            .finish()
    }
}

impl Default for HashPoolConfig {
    fn default() -> Self {
        HashPoolConfig {
            workers: thread::available_parallelism().map_or(1, |n| n.get()),
            queue_limit: 256,
            memory_budget_kib: 262_144,
            default_scheme: GenerateScheme::default(),
            queue_wait_observer: None,
        }
    }
}

/// A snapshot of pool counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Jobs accepted.
    pub submitted: u64,
    /// Jobs refused with [`PoolError::Busy`].
    pub rejected_busy: u64,
    /// Jobs a worker started.
    pub started: u64,
    /// Jobs a worker finished.
    pub completed: u64,
    /// Jobs accepted and not yet finished (queued or running).
    pub in_flight: u64,
    /// Sum of all queue waits.
    pub queue_wait_total: Duration,
    /// Longest queue wait seen.
    pub queue_wait_max: Duration,
    /// Queue wait of the most recently started job.
    pub queue_wait_last: Duration,
    /// KiB of the memory budget reserved right now.
    pub memory_in_use_kib: u64,
    /// Highest `memory_in_use_kib` seen.
    pub memory_peak_kib: u64,
}

impl PoolStats {
    /// Mean queue wait over started jobs.
    pub fn queue_wait_mean(&self) -> Duration {
        let started = self.started.max(1);
        self.queue_wait_total / u32::try_from(started).unwrap_or(u32::MAX)
    }
}

#[derive(Default)]
struct Counters {
    submitted: AtomicU64,
    rejected_busy: AtomicU64,
    completed: AtomicU64,
    started: AtomicU64,
    wait_total_ns: AtomicU64,
    wait_max_ns: AtomicU64,
    wait_last_ns: AtomicU64,
    memory_in_use_kib: AtomicU64,
    memory_peak_kib: AtomicU64,
}

/// A memory-budget reservation; releases the KiB and updates the gauge on drop.
struct MemoryReservation {
    _permit: OwnedSemaphorePermit,
    kib: u64,
    counters: Arc<Counters>,
}

impl MemoryReservation {
    fn new(permit: OwnedSemaphorePermit, kib: u32, counters: Arc<Counters>) -> Self {
        let kib = u64::from(kib);
        let now = counters.memory_in_use_kib.fetch_add(kib, Ordering::Relaxed) + kib;
        counters.memory_peak_kib.fetch_max(now, Ordering::Relaxed);
        MemoryReservation { _permit: permit, kib, counters }
    }
}

impl Drop for MemoryReservation {
    fn drop(&mut self) {
        self.counters.memory_in_use_kib.fetch_sub(self.kib, Ordering::Relaxed);
    }
}

/// Delivers a finished job's result to the waiting caller.
type Deliver = Box<dyn FnOnce() + Send>;

struct Job {
    kind: JobKind,
    submitted_at: Instant,
    /// Computes the result and returns the thunk that delivers it, so the
    /// worker can release budgets and update counters before the caller wakes.
    run: Box<dyn FnOnce() -> Deliver + Send>,
    // Released when the job is dropped, i.e. after it ran.
    _slot: OwnedSemaphorePermit,
    _memory: Option<MemoryReservation>,
}

struct Inner {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    slots: Arc<Semaphore>,
    memory: Arc<Semaphore>,
    memory_budget_kib: u32,
    default_scheme: GenerateScheme,
    dummy: Arc<OnceLock<Result<DummyHash, crate::PasswordError>>>,
    counters: Arc<Counters>,
}

/// A bounded pool of hashing threads. Cheap to clone (shared handle).
#[derive(Clone)]
pub struct HashPool {
    inner: Arc<Inner>,
}

impl core::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HashPool").field("stats", &self.stats()).finish()
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl HashPool {
    /// Starts `config.workers` hashing threads (at least one). Needs no
    /// async runtime; the async methods work on any executor.
    pub fn new(config: HashPoolConfig) -> std::io::Result<Self> {
        let workers = config.workers.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let counters = Arc::new(Counters::default());
        for i in 0..workers {
            let rx = Arc::clone(&rx);
            let counters = Arc::clone(&counters);
            let observer = config.queue_wait_observer.clone();
            thread::Builder::new()
                .name(format!("gatehouse-hash-{i}"))
                .spawn(move || worker_loop(&rx, &counters, observer.as_ref()))?;
        }
        Ok(HashPool {
            inner: Arc::new(Inner {
                sender: Mutex::new(Some(tx)),
                slots: Arc::new(Semaphore::new(workers.saturating_add(config.queue_limit))),
                memory: Arc::new(Semaphore::new(config.memory_budget_kib as usize)),
                memory_budget_kib: config.memory_budget_kib,
                default_scheme: config.default_scheme,
                dummy: Arc::new(OnceLock::new()),
                counters,
            }),
        })
    }

    /// Verifies `candidate` against `stored` on a worker thread. The
    /// candidate is zeroized when the job is done.
    pub async fn verify(
        &self,
        stored: String,
        candidate: Zeroizing<Vec<u8>>,
        options: VerifyOptions,
    ) -> Result<Verification, PoolError> {
        let mem = crate::verify::memory_cost_kib(&stored, &options.limits);
        self.submit(JobKind::Verify, mem, move || crate::verify(&stored, &candidate, &options)).await
    }

    /// Generates a hash of `password` in `scheme` on a worker thread.
    pub async fn generate(&self, password: Zeroizing<Vec<u8>>, scheme: GenerateScheme) -> Result<String, PoolError> {
        let mem = scheme.memory_cost_kib();
        self.submit(JobKind::Generate, mem, move || crate::generate(&password, &scheme)).await?.map_err(PoolError::from)
    }

    /// Verifies `candidate` against a dummy hash in the configured default
    /// scheme and discards the result: use it when the user does not exist.
    /// The dummy hash is generated on first use (see [`HashPool::warm_up`]).
    pub async fn dummy_verify(&self, candidate: Zeroizing<Vec<u8>>) -> Result<(), PoolError> {
        let mem = self.inner.default_scheme.memory_cost_kib();
        let dummy = Arc::clone(&self.inner.dummy);
        let scheme = self.inner.default_scheme;
        self.submit(JobKind::DummyVerify, mem, move || match dummy.get_or_init(|| DummyHash::new(&scheme)) {
            Ok(d) => {
                d.verify(&candidate);
                Ok(())
            }
            Err(e) => Err(e.clone()),
        })
        .await?
        .map_err(PoolError::from)
    }

    /// Generates the dummy hash now, so the first unknown-user login does not
    /// pay for it.
    pub async fn warm_up(&self) -> Result<(), PoolError> {
        let mem = self.inner.default_scheme.memory_cost_kib();
        let dummy = Arc::clone(&self.inner.dummy);
        let scheme = self.inner.default_scheme;
        self.submit(JobKind::Generate, mem, move || {
            dummy.get_or_init(|| DummyHash::new(&scheme)).as_ref().map(|_| ()).map_err(Clone::clone)
        })
        .await?
        .map_err(PoolError::from)
    }

    /// Current counters, including queue-wait figures.
    pub fn stats(&self) -> PoolStats {
        let c = &self.inner.counters;
        let submitted = c.submitted.load(Ordering::Relaxed);
        let completed = c.completed.load(Ordering::Relaxed);
        PoolStats {
            submitted,
            rejected_busy: c.rejected_busy.load(Ordering::Relaxed),
            started: c.started.load(Ordering::Relaxed),
            completed,
            in_flight: submitted.saturating_sub(completed),
            queue_wait_total: Duration::from_nanos(c.wait_total_ns.load(Ordering::Relaxed)),
            queue_wait_max: Duration::from_nanos(c.wait_max_ns.load(Ordering::Relaxed)),
            queue_wait_last: Duration::from_nanos(c.wait_last_ns.load(Ordering::Relaxed)),
            memory_in_use_kib: c.memory_in_use_kib.load(Ordering::Relaxed),
            memory_peak_kib: c.memory_peak_kib.load(Ordering::Relaxed),
        }
    }

    /// The memory budget in KiB.
    pub fn memory_budget_kib(&self) -> u32 {
        self.inner.memory_budget_kib
    }

    /// KiB of the memory budget currently free.
    pub fn memory_available_kib(&self) -> usize {
        self.inner.memory.available_permits()
    }

    async fn submit<T, F>(&self, kind: JobKind, mem_kib: u32, f: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let submitted_at = Instant::now();
        let counters = &self.inner.counters;
        let slot = match Arc::clone(&self.inner.slots).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                counters.rejected_busy.fetch_add(1, Ordering::Relaxed);
                return Err(PoolError::Busy);
            }
        };
        if mem_kib > self.inner.memory_budget_kib {
            return Err(PoolError::ExceedsMemoryBudget {
                required_kib: mem_kib,
                budget_kib: self.inner.memory_budget_kib,
            });
        }
        let memory = if mem_kib > 0 {
            let permit =
                Arc::clone(&self.inner.memory).acquire_many_owned(mem_kib).await.map_err(|_| PoolError::Closed)?;
            Some(MemoryReservation::new(permit, mem_kib, Arc::clone(counters)))
        } else {
            None
        };
        let (tx, rx) = oneshot::channel();
        let job = Job {
            kind,
            submitted_at,
            run: Box::new(move || {
                let result = f();
                Box::new(move || {
                    let _ = tx.send(result);
                }) as Deliver
            }),
            _slot: slot,
            _memory: memory,
        };
        {
            let sender = self.inner.sender.lock().map_err(|_| PoolError::Closed)?;
            let sender = sender.as_ref().ok_or(PoolError::Closed)?;
            counters.submitted.fetch_add(1, Ordering::Relaxed);
            if sender.send(job).is_err() {
                counters.completed.fetch_add(1, Ordering::Relaxed);
                return Err(PoolError::Closed);
            }
        }
        rx.await.map_err(|_| PoolError::Closed)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel lets idle workers exit.
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
    }
}

fn worker_loop(rx: &Mutex<mpsc::Receiver<Job>>, counters: &Counters, observer: Option<&QueueWaitObserver>) {
    loop {
        let job = {
            let Ok(guard) = rx.lock() else { return };
            match guard.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let wait = job.submitted_at.elapsed();
        let ns = duration_ns(wait);
        counters.started.fetch_add(1, Ordering::Relaxed);
        counters.wait_total_ns.fetch_add(ns, Ordering::Relaxed);
        counters.wait_max_ns.fetch_max(ns, Ordering::Relaxed);
        counters.wait_last_ns.store(ns, Ordering::Relaxed);
        if let Some(obs) = observer {
            obs(job.kind, wait);
        }
        let Job { run, _slot, _memory, .. } = job;
        // A panicking hash must not take the worker down; the caller sees
        // `PoolError::Closed` because the result sender is dropped.
        let deliver = std::panic::catch_unwind(AssertUnwindSafe(run));
        drop(_memory);
        drop(_slot);
        counters.completed.fetch_add(1, Ordering::Relaxed);
        if let Ok(deliver) = deliver {
            deliver();
        }
    }
}
