//! `gatehouse-bench-sasl`: a load generator for Dovecot's auth-client protocol (what Postfix speaks to
//! Gatehouse's SASL listener), for `bench/run`.
//!
//!     gatehouse-bench-sasl HOST:PORT USER PASSWORD CONNECTIONS SECONDS
//!
//! Opens CONNECTIONS persistent connections, reads each greeting, sends `VERSION` and `CPID`, then on each
//! connection sends `AUTH <id> PLAIN service=smtp resp=<base64>` and waits for its answer, again and again for
//! SECONDS (closed loop, like wrk). Prints one line in the form of `bench/run`'s wrk script:
//! `RESULT requests=… duration_us=… p50_us=… p90_us=… p99_us=… max_us=… mean_us=… non2xx=<FAIL answers> …`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// What one connection measured: latencies in microseconds, and how many answers were FAIL.
struct Measured {
    latencies: Vec<u32>,
    failures: u64,
    errors: u64,
}

async fn connection(address: SocketAddr, response: String, until: Instant) -> Measured {
    let mut measured = Measured { latencies: Vec::new(), failures: 0, errors: 0 };
    let Ok(stream) = TcpStream::connect(address).await else {
        measured.errors += 1;
        return measured;
    };
    stream.set_nodelay(true).ok();
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut line = String::new();
    // The greeting ends with DONE.
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => {
                measured.errors += 1;
                return measured;
            }
            Ok(_) if line.starts_with("DONE") => break,
            Ok(_) => {}
        }
    }
    if writer.write_all(format!("VERSION\t1\t2\nCPID\t{}\n", std::process::id()).as_bytes()).await.is_err() {
        measured.errors += 1;
        return measured;
    }
    let mut id: u64 = 0;
    while Instant::now() < until {
        id += 1;
        let request = format!("AUTH\t{id}\tPLAIN\tservice=smtp\trip=127.0.0.1\tresp={response}\n");
        let started = Instant::now();
        if writer.write_all(request.as_bytes()).await.is_err() {
            measured.errors += 1;
            break;
        }
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => {
                measured.errors += 1;
                break;
            }
            Ok(_) => {}
        }
        measured.latencies.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if !line.starts_with("OK\t") {
            measured.failures += 1;
        }
    }
    measured
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (|| {
        let [address, user, password, connections, seconds] = args.as_slice() else { return None };
        Some((
            address.parse::<SocketAddr>().ok()?,
            user.clone(),
            password.clone(),
            connections.parse::<usize>().ok()?,
            seconds.parse::<u64>().ok()?,
        ))
    })();
    let Some((address, user, password, connections, seconds)) = parsed else {
        eprintln!("usage: gatehouse-bench-sasl HOST:PORT USER PASSWORD CONNECTIONS SECONDS");
        std::process::exit(2);
    };
    let response = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let results = runtime.block_on(async {
        let tasks: Vec<_> =
            (0..connections).map(|_| tokio::spawn(connection(address, response.clone(), until))).collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("a connection task"));
        }
        results
    });
    let duration = started.elapsed();
    let mut latencies: Vec<u32> = results.iter().flat_map(|m| m.latencies.iter().copied()).collect();
    latencies.sort_unstable();
    let failures: u64 = results.iter().map(|m| m.failures).sum();
    let errors: u64 = results.iter().map(|m| m.errors).sum();
    let mean = latencies.iter().map(|&l| l as f64).sum::<f64>() / latencies.len().max(1) as f64;
    println!(
        "RESULT requests={} duration_us={} p50_us={} p90_us={} p99_us={} max_us={} mean_us={:.0} non2xx={} connect=0 \
         read={errors} write=0 timeout=0 statuses=",
        latencies.len(),
        duration.as_micros(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(0),
        mean,
        failures,
    );
}
