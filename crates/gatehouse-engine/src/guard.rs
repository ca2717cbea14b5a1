//! The brute-force guard. Failed logins are counted per client address (IPv6 per /64) and per username
//! within a window. Each failure beyond a few makes the next answers slower (an escalating delay), and too
//! many failures from one address ban it for a while — longer each time it is banned again. Addresses in the
//! trusted networks (loopback by default: the mail server's own programs) are never banned and not counted as
//! addresses, but guesses at one username still slow down whoever sends them, trusted or not: a local process
//! gets no faster password oracle than a remote one. Usernames are never banned (that would let anyone lock a
//! user out); their failures only add delay.
//!
//! The state is in memory, bounded in size, and visible through [`Guard::snapshot`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Guard settings.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// How long a failure counts.
    pub window: Duration,
    /// Failures from one address within the window that ban it.
    pub ban_after: u32,
    /// Failures (per address or username) after which answers to failures are delayed.
    pub delay_after: u32,
    /// The longest delay.
    pub max_delay: Duration,
    /// The first ban's length; it doubles with each further ban of the same address.
    pub ban_time: Duration,
    /// The longest ban.
    pub max_ban_time: Duration,
    /// Never delayed or banned.
    pub trusted_networks: Vec<ipnet::IpNet>,
    /// Most addresses and usernames tracked at once (the oldest are forgotten first).
    pub capacity: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            window: Duration::from_secs(600),
            ban_after: 15,
            delay_after: 3,
            max_delay: Duration::from_secs(2),
            ban_time: Duration::from_secs(1800),
            max_ban_time: Duration::from_secs(86_400),
            trusted_networks: vec!["127.0.0.0/8".parse().expect("net"), "::1/128".parse().expect("net")],
            capacity: 100_000,
        }
    }
}

/// What the guard says about a login attempt before it is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Allow,
    /// The address is banned until then.
    Banned {
        /// Seconds until the ban ends.
        remaining: Duration,
    },
}

#[derive(Debug, Default, Clone)]
struct Counter {
    failures: Vec<Instant>,
    banned_until: Option<Instant>,
    bans: u32,
    last_seen: Option<Instant>,
}

impl Counter {
    fn recent(&mut self, now: Instant, window: Duration) -> u32 {
        self.failures.retain(|at| now.duration_since(*at) < window);
        self.failures.len() as u32
    }
}

/// One tracked address or username, as shown to operators.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GuardEntry {
    /// `ip` or `user`.
    pub kind: &'static str,
    /// The address (or /64 network) or the username.
    pub key: String,
    /// Failures within the window.
    pub failures: u32,
    /// How often the address was banned.
    pub bans: u32,
    /// Unix seconds when the current ban ends, if banned.
    pub banned_until: Option<u64>,
}

/// What [`Guard::unban`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unbanned {
    /// The address was banned.
    pub was_banned: bool,
    /// Its failures within the window, now forgotten.
    pub failures: u32,
}

/// The guard.
pub struct Guard {
    config: GuardConfig,
    addresses: Mutex<HashMap<IpAddr, Counter>>,
    users: Mutex<HashMap<String, Counter>>,
}

/// IPv4-mapped IPv6 addresses as plain IPv4.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// IPv6 clients usually own a whole /64: count them per /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match unmapped(ip) {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
        v4 => v4,
    }
}

fn prune(
    map: &mut HashMap<impl Clone + Eq + std::hash::Hash, Counter>,
    capacity: usize,
    now: Instant,
    window: Duration,
) {
    if map.len() < capacity {
        return;
    }
    map.retain(|_, c| c.banned_until.is_some_and(|until| until > now) || c.recent(now, window) > 0);
    while map.len() >= capacity {
        let oldest = map.iter().min_by_key(|(_, c)| c.last_seen).map(|(k, _)| k.clone());
        match oldest {
            Some(key) => {
                map.remove(&key);
            }
            None => break,
        }
    }
}

impl Guard {
    /// A guard with these settings.
    pub fn new(config: GuardConfig) -> Self {
        Guard { config, addresses: Mutex::new(HashMap::new()), users: Mutex::new(HashMap::new()) }
    }

    /// Whether `ip` is in a trusted network.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = unmapped(ip);
        self.config.trusted_networks.iter().any(|net| net.contains(&ip))
    }

    /// Checks an attempt before it is decided.
    pub fn check(&self, ip: Option<IpAddr>) -> Verdict {
        let Some(ip) = ip.filter(|ip| !self.is_trusted(*ip)) else { return Verdict::Allow };
        let now = Instant::now();
        let addresses = self.addresses.lock().expect("guard lock");
        match addresses.get(&address_key(ip)).and_then(|c| c.banned_until) {
            Some(until) if until > now => Verdict::Banned { remaining: until - now },
            _ => Verdict::Allow,
        }
    }

    /// Records a failed attempt; returns how long to delay the answer.
    pub fn failure(&self, ip: Option<IpAddr>, username: &str) -> Duration {
        let now = Instant::now();
        let window = self.config.window;
        let mut worst = 0;
        if let Some(ip) = ip.filter(|ip| !self.is_trusted(*ip)) {
            let key = address_key(ip);
            let mut addresses = self.addresses.lock().expect("guard lock");
            prune(&mut addresses, self.config.capacity, now, window);
            let counter = addresses.entry(key).or_default();
            counter.failures.push(now);
            counter.last_seen = Some(now);
            let failures = counter.recent(now, window);
            worst = worst.max(failures);
            if failures >= self.config.ban_after && counter.banned_until.is_none_or(|until| until <= now) {
                let factor = 2u32.saturating_pow(counter.bans.min(16));
                let length = self.config.ban_time.saturating_mul(factor).min(self.config.max_ban_time);
                counter.banned_until = Some(now + length);
                counter.bans += 1;
                counter.failures.clear();
                tracing::warn!(address = %key, failures, ban_seconds = length.as_secs(), "banned after failed logins");
            }
        }
        let username = username.trim().to_lowercase();
        if !username.is_empty() {
            let mut users = self.users.lock().expect("guard lock");
            prune(&mut users, self.config.capacity, now, window);
            let counter = users.entry(username).or_default();
            counter.failures.push(now);
            counter.last_seen = Some(now);
            // Keep the list short: only the count within the window matters.
            let failures = counter.recent(now, window);
            if counter.failures.len() > 64 {
                counter.failures.drain(..counter.failures.len() - 64);
            }
            worst = worst.max(failures);
        }
        self.delay_for(worst)
    }

    /// Records a successful login: the username's failures are forgotten (the address's are not, so an
    /// attacker cannot reset its counter with one account it owns).
    pub fn success(&self, username: &str) {
        self.users.lock().expect("guard lock").remove(&username.trim().to_lowercase());
    }

    fn delay_for(&self, failures: u32) -> Duration {
        if failures <= self.config.delay_after {
            return Duration::ZERO;
        }
        let steps = (failures - self.config.delay_after).min(16);
        Duration::from_millis(125u64 << steps.min(10)).min(self.config.max_delay)
    }

    /// Ends the ban of an address and forgets its failures; returns what was tracked for it (`None` if
    /// nothing was).
    pub fn unban(&self, ip: IpAddr) -> Option<Unbanned> {
        let now = Instant::now();
        let mut counter = self.addresses.lock().expect("guard lock").remove(&address_key(ip))?;
        Some(Unbanned {
            was_banned: counter.banned_until.is_some_and(|until| until > now),
            failures: counter.recent(now, self.config.window),
        })
    }

    /// Everything tracked now: banned addresses first, then by failures.
    pub fn snapshot(&self) -> Vec<GuardEntry> {
        let now = Instant::now();
        let wall = SystemTime::now();
        let unix = |until: Instant| {
            (wall + (until - now)).duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
        };
        let window = self.config.window;
        let mut entries = Vec::new();
        for (ip, counter) in self.addresses.lock().expect("guard lock").iter_mut() {
            let failures = counter.recent(now, window);
            let banned_until = counter.banned_until.filter(|until| *until > now).map(unix);
            if failures > 0 || banned_until.is_some() {
                entries.push(GuardEntry {
                    kind: "ip",
                    key: ip.to_string(),
                    failures,
                    bans: counter.bans,
                    banned_until,
                });
            }
        }
        for (user, counter) in self.users.lock().expect("guard lock").iter_mut() {
            let failures = counter.recent(now, window);
            if failures > 0 {
                entries.push(GuardEntry { kind: "user", key: user.clone(), failures, bans: 0, banned_until: None });
            }
        }
        entries.sort_by(|a, b| b.banned_until.cmp(&a.banned_until).then(b.failures.cmp(&a.failures)));
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn an_address_is_banned_after_too_many_failures_and_others_are_not() {
        let guard = Guard::new(GuardConfig { ban_after: 5, ..GuardConfig::default() });
        for _ in 0..4 {
            guard.failure(ip("203.0.113.5"), "alice@example.org");
        }
        assert_eq!(guard.check(ip("203.0.113.5")), Verdict::Allow);
        guard.failure(ip("203.0.113.5"), "alice@example.org");
        assert!(matches!(guard.check(ip("203.0.113.5")), Verdict::Banned { .. }));
        assert_eq!(guard.check(ip("203.0.113.6")), Verdict::Allow);
        let snapshot = guard.snapshot();
        assert_eq!(snapshot[0].key, "203.0.113.5");
        assert!(snapshot[0].banned_until.is_some());
        assert_eq!(guard.unban("203.0.113.5".parse().unwrap()), Some(Unbanned { was_banned: true, failures: 0 }));
        assert_eq!(guard.unban("203.0.113.5".parse().unwrap()), None, "nothing left to lift");
        assert_eq!(guard.check(ip("203.0.113.5")), Verdict::Allow);
    }

    #[test]
    fn loopback_is_never_banned_but_guesses_at_a_user_slow_down() {
        let guard = Guard::new(GuardConfig { ban_after: 2, ..GuardConfig::default() });
        let mut last = Duration::ZERO;
        for _ in 0..50 {
            last = guard.failure(ip("127.0.0.1"), "x@example.org");
            guard.failure(ip("::1"), "x@example.org");
        }
        assert_eq!(guard.check(ip("127.0.0.1")), Verdict::Allow);
        assert_eq!(guard.check(ip("::1")), Verdict::Allow);
        assert_eq!(last, Duration::from_secs(2), "the per-user delay applies to trusted callers too");
        assert_eq!(
            guard.failure(ip("127.0.0.1"), "someone-else@example.org"),
            Duration::ZERO,
            "per user, not per caller"
        );
        assert!(guard.snapshot().iter().all(|e| e.kind == "user"), "trusted addresses are not tracked");
    }

    #[test]
    fn delays_escalate_and_stop_at_the_maximum() {
        let guard = Guard::new(GuardConfig { ban_after: 1000, delay_after: 2, ..GuardConfig::default() });
        let delays: Vec<Duration> = (0..12).map(|_| guard.failure(ip("198.51.100.1"), "bob@example.org")).collect();
        assert_eq!(delays[0], Duration::ZERO);
        assert!(delays[3] > delays[2] && delays[4] > delays[3], "{delays:?}");
        assert_eq!(delays[11], Duration::from_secs(2));
        guard.success("bob@example.org");
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let guard = Guard::new(GuardConfig { ban_after: 3, ..GuardConfig::default() });
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::3"] {
            guard.failure(ip(host), "");
        }
        assert!(matches!(guard.check(ip("2001:db8:1:2:ffff::9")), Verdict::Banned { .. }));
        assert_eq!(guard.check(ip("2001:db8:1:3::1")), Verdict::Allow);
    }

    #[test]
    fn repeated_bans_get_longer() {
        let guard =
            Guard::new(GuardConfig { ban_after: 1, ban_time: Duration::from_secs(60), ..GuardConfig::default() });
        guard.failure(ip("192.0.2.9"), "");
        let Verdict::Banned { remaining: first } = guard.check(ip("192.0.2.9")) else { panic!("not banned") };
        // Expire the ban by hand and fail again.
        guard.addresses.lock().unwrap().get_mut(&"192.0.2.9".parse().unwrap()).unwrap().banned_until = None;
        guard.failure(ip("192.0.2.9"), "");
        let Verdict::Banned { remaining: second } = guard.check(ip("192.0.2.9")) else { panic!("not banned") };
        assert!(second > first + Duration::from_secs(50), "{first:?} {second:?}");
    }
}
