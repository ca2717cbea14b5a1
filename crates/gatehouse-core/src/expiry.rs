//! Expiry dates, one rule for every entry point: a date (`2027-06-30`) means *through* that day, UTC — the
//! credential works until the last second of it and stops at the next midnight — and listings say it that way
//! ("through 2027-06-30 (UTC)") instead of showing the midnight after it.

use crate::Error;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The Unix time at which a credential given the expiry date `text` (`YYYY-MM-DD`) stops working: the midnight
/// (UTC) after that day.
pub fn end_of_day(text: &str) -> Result<i64, Error> {
    let bad = || Error::invalid(format!("'{text}' is not a date (YYYY-MM-DD)"));
    let mut parts = text.trim().splitn(3, '-');
    let (Some(year), Some(month), Some(day)) = (parts.next(), parts.next(), parts.next()) else { return Err(bad()) };
    let (year, month, day): (i64, u32, u32) =
        (year.parse().map_err(|_| bad())?, month.parse().map_err(|_| bad())?, day.parse().map_err(|_| bad())?);
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || day == 0 {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) {
        return Err(bad());
    }
    Ok((days + 1) * 86_400)
}

/// How an expiry (`None`: never) reads in a listing: "through 2027-06-30 (UTC)" for a date given as a day,
/// else "until 2027-06-30 12:00:00 UTC".
pub fn describe(expires_at: Option<i64>) -> String {
    let Some(at) = expires_at else { return "never".into() };
    let (days, seconds) = (at.div_euclid(86_400), at.rem_euclid(86_400));
    if seconds == 0 {
        let (year, month, day) = civil_from_days(days - 1);
        return format!("through {year:04}-{month:02}-{day:02} (UTC)");
    }
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    format!("until {year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_means_through_that_day_and_reads_so() {
        // 2027-07-01T00:00:00Z.
        assert_eq!(end_of_day("2027-06-30").unwrap(), 1_814_400_000);
        assert_eq!(describe(Some(1_814_400_000)), "through 2027-06-30 (UTC)");
        assert_eq!(describe(Some(1_814_400_000 + 12 * 3600)), "until 2027-07-01 12:00:00 UTC");
        assert_eq!(describe(None), "never");
        assert_eq!(end_of_day("2028-02-29").unwrap() - end_of_day("2028-02-28").unwrap(), 86_400);
        for bad in ["2027-02-30", "2027-13-01", "30.06.2027", "tomorrow", "2027-06"] {
            assert!(end_of_day(bad).is_err(), "{bad}");
        }
    }
}
