//! The one clock: Unix seconds, as every table and token stores time.

/// The current time as Unix seconds (0 if the system clock is before 1970).
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Unix seconds as an RFC 3339 UTC time (`2026-12-07T02:53:31Z`); `None` when out of range.
pub fn rfc3339(seconds: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc() {
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339(1_796_439_211).as_deref(), Some("2026-12-05T02:53:31Z"));
        assert_eq!(rfc3339(i64::MAX), None);
    }
}
