//! The bounded hash pool: results, queue limit, memory budget, queue-wait
//! metrics, and that hashing never runs on async runtime threads.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatehouse_passwords::{
    GenerateScheme, HashPool, HashPoolConfig, JobKind, PoolError, Verification, VerifyOptions, Zeroizing, generate,
};

fn pw(s: &str) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(s.as_bytes().to_vec())
}

const SMALL_ARGON: GenerateScheme = GenerateScheme::Argon2id { m_cost_kib: 4096, t_cost: 1, p_cost: 1 };

#[tokio::test(flavor = "current_thread")]
async fn verify_and_generate_run_on_pool_threads() {
    let threads = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&threads);
    let pool = HashPool::new(HashPoolConfig {
        workers: 2,
        queue_limit: 4,
        memory_budget_kib: 65_536,
        default_scheme: GenerateScheme::BlfCrypt { cost: 4 },
        queue_wait_observer: Some(Arc::new(move |kind, _wait| {
            let name = std::thread::current().name().unwrap_or("?").to_string();
            seen.lock().unwrap().push(format!("{kind:?}:{name}"));
        })),
    })
    .unwrap();

    let stored = pool.generate(pw("hunter2"), GenerateScheme::BlfCrypt { cost: 4 }).await.unwrap();
    assert!(stored.starts_with("{BLF-CRYPT}$2y$04$"));
    let opts = VerifyOptions::default();
    assert_eq!(pool.verify(stored.clone(), pw("hunter2"), opts).await, Ok(Verification::Match));
    assert_eq!(pool.verify(stored, pw("hunter3"), opts).await, Ok(Verification::Mismatch));
    pool.dummy_verify(pw("whatever")).await.unwrap();

    let threads = threads.lock().unwrap();
    assert_eq!(threads.len(), 4, "{threads:?}");
    for t in threads.iter() {
        assert!(t.contains(":gatehouse-hash-"), "job ran on {t}");
    }
    assert!(threads[3].starts_with("DummyVerify:"));
    let stats = pool.stats();
    assert_eq!((stats.submitted, stats.completed, stats.in_flight), (4, 4, 0));
}

/// A single-threaded runtime keeps running other tasks while a slow hash is
/// computed: the hash is not on the runtime thread.
#[tokio::test(flavor = "current_thread")]
async fn runtime_stays_responsive_during_slow_hash() {
    let slow = generate(b"pw", &GenerateScheme::BlfCrypt { cost: 10 }).unwrap();
    let pool = HashPool::new(HashPoolConfig { workers: 1, ..HashPoolConfig::default() }).unwrap();
    let started = Instant::now();
    let ticker = tokio::spawn(async {
        let mut ticks = 0u32;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            ticks += 1;
        }
        (ticks, Instant::now())
    });
    let result = pool.verify(slow, pw("pw"), VerifyOptions::default()).await.unwrap();
    let hash_done = Instant::now();
    let (ticks, ticker_done) = ticker.await.unwrap();
    assert_eq!(result, Verification::Match);
    assert_eq!(ticks, 10);
    // The hash takes far longer than 10 ticks in a debug build; the ticker
    // finished while it ran.
    if hash_done.duration_since(started) > Duration::from_millis(200) {
        assert!(ticker_done < hash_done);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_limit_returns_busy() {
    let slow = generate(b"pw", &GenerateScheme::BlfCrypt { cost: 9 }).unwrap();
    let pool = HashPool::new(HashPoolConfig {
        workers: 1,
        queue_limit: 1,
        memory_budget_kib: 1024,
        default_scheme: GenerateScheme::BlfCrypt { cost: 4 },
        queue_wait_observer: None,
    })
    .unwrap();
    let mut handles = Vec::new();
    for _ in 0..6 {
        let pool = pool.clone();
        let slow = slow.clone();
        handles.push(tokio::spawn(async move { pool.verify(slow, pw("pw"), VerifyOptions::default()).await }));
    }
    let mut ok = 0;
    let mut busy = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(Verification::Match) => ok += 1,
            Err(PoolError::Busy) => busy += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(ok >= 2, "ok={ok} busy={busy}");
    assert!(busy >= 1, "ok={ok} busy={busy}");
    assert_eq!(pool.stats().rejected_busy, busy);
}

/// 12 parallel Argon2id verifies with a budget for 2 never reserve more
/// than the budget, and all complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_budget_bounds_argon2() {
    let stored = generate(b"pw", &SMALL_ARGON).unwrap();
    let observed_waits = Arc::new(Mutex::new(0u32));
    let w = Arc::clone(&observed_waits);
    let pool = HashPool::new(HashPoolConfig {
        workers: 4,
        queue_limit: 64,
        memory_budget_kib: 2 * 4096,
        default_scheme: GenerateScheme::BlfCrypt { cost: 4 },
        queue_wait_observer: Some(Arc::new(move |kind, _| {
            assert_eq!(kind, JobKind::Verify);
            *w.lock().unwrap() += 1;
        })),
    })
    .unwrap();
    let mut handles = Vec::new();
    for i in 0..12 {
        let pool = pool.clone();
        let stored = stored.clone();
        handles.push(tokio::spawn(async move {
            let cand = if i % 2 == 0 { "pw" } else { "nope" };
            pool.verify(stored, pw(cand), VerifyOptions::default()).await
        }));
    }
    for (i, h) in handles.into_iter().enumerate() {
        let expect = if i % 2 == 0 { Verification::Match } else { Verification::Mismatch };
        assert_eq!(h.await.unwrap(), Ok(expect));
    }
    let stats = pool.stats();
    assert!(stats.memory_peak_kib <= 2 * 4096, "{stats:?}");
    assert!(stats.memory_peak_kib >= 4096, "{stats:?}");
    assert_eq!(stats.memory_in_use_kib, 0);
    assert_eq!(pool.memory_available_kib(), 2 * 4096);
    assert_eq!(*observed_waits.lock().unwrap(), 12);
    assert_eq!(stats.started, 12);
    assert!(stats.queue_wait_max >= stats.queue_wait_last);
    assert!(stats.queue_wait_mean() <= stats.queue_wait_max);
}

#[tokio::test(flavor = "current_thread")]
async fn job_larger_than_budget_is_refused() {
    let pool =
        HashPool::new(HashPoolConfig { workers: 1, memory_budget_kib: 1024, ..HashPoolConfig::default() }).unwrap();
    let err = pool.generate(pw("pw"), SMALL_ARGON).await.unwrap_err();
    assert_eq!(err, PoolError::ExceedsMemoryBudget { required_kib: 4096, budget_kib: 1024 });
    assert!(matches!(pool.generate(pw("a\0b"), GenerateScheme::Ssha512).await, Err(PoolError::Password(_))));
}

/// The dummy verification costs about as much as a real one in the same
/// scheme (it *is* a real verification of a hash in that scheme).
#[tokio::test(flavor = "current_thread")]
async fn dummy_verify_costs_like_default_scheme() {
    let scheme = GenerateScheme::BlfCrypt { cost: 8 };
    let pool =
        HashPool::new(HashPoolConfig { workers: 1, default_scheme: scheme, ..HashPoolConfig::default() }).unwrap();
    pool.warm_up().await.unwrap();
    let real = generate(b"secret", &scheme).unwrap();
    let opts = VerifyOptions::default();
    // Warm both paths once, then take the best of three of each.
    let mut real_best = Duration::MAX;
    let mut dummy_best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        pool.verify(real.clone(), pw("guess"), opts).await.unwrap();
        real_best = real_best.min(t.elapsed());
        let t = Instant::now();
        pool.dummy_verify(pw("guess")).await.unwrap();
        dummy_best = dummy_best.min(t.elapsed());
    }
    let ratio = dummy_best.as_secs_f64() / real_best.as_secs_f64();
    assert!((0.5..2.0).contains(&ratio), "real {real_best:?} dummy {dummy_best:?}");
}
