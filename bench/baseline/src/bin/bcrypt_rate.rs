//! `gatehouse-bench-bcrypt`: how many verifications of one hash Gatehouse's password crate makes per second on
//! THREADS threads, for `bench/run` (the raw speed an uncached login is compared with).
//!
//!     gatehouse-bench-bcrypt HASH PASSWORD THREADS SECONDS
//!
//! HASH is a stored hash as Gatehouse keeps it (`{BLF-CRYPT}$2y$10$…`). Every verification must match.
//! Prints `RATE verifications=… seconds=… per_second=…`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gatehouse_passwords::{Verification, VerifyOptions, verify};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [hash, password, threads, seconds] = args.as_slice() else {
        eprintln!("usage: gatehouse-bench-bcrypt HASH PASSWORD THREADS SECONDS");
        std::process::exit(2);
    };
    let (Ok(threads), Ok(seconds)) = (threads.parse::<usize>(), seconds.parse::<u64>()) else {
        eprintln!("THREADS and SECONDS are numbers");
        std::process::exit(2);
    };
    let options = VerifyOptions::default();
    assert_eq!(verify(hash, password.as_bytes(), &options), Verification::Match, "the password must match");
    let done = AtomicU64::new(0);
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while Instant::now() < until {
                    assert_eq!(verify(hash, password.as_bytes(), &options), Verification::Match);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let count = done.load(Ordering::Relaxed);
    println!("RATE verifications={count} seconds={elapsed:.3} per_second={:.2}", count as f64 / elapsed);
}
