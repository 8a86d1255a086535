//! ISO 8601 dates and timestamps of the fixed layout `YYYY-MM-DD[ T]HH:MM:SS[.fraction]`.
//!
//! CSV files nearly always write timestamps this way, and polars' reader parses them through a
//! per-chunk pattern inference and a generic `strftime`-style parser. The layout is fixed, so
//! every field sits at a known offset: the parse is a handful of digit reads plus
//! [`days_from_civil`]. Text of any other layout, or a field out of range (month 13, April 31,
//! hour 24, second 60), is `None` and the caller leaves the column to polars. polars fixes its
//! pattern on a chunk's first value, so a [`StampParser`] does too: after a value with `T`
//! between date and time, one with a space is `None`, and the other way round.
//!
//! [`StampParser`] also remembers the last date it converted: timestamps in a file are mostly
//! sorted, so consecutive rows share their date and skip the calendar arithmetic.

use polars::prelude::TimeUnit;

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The decimal number written by the ASCII digits `s[a..b]`, `None` if one is not a digit.
#[inline(always)]
fn digits(s: &[u8], a: usize, b: usize) -> Option<i64> {
    let mut v = 0i64;
    for &c in &s[a..b] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

/// Days since 1970-01-01 of `YYYY-MM-DD` at the start of `s` (a real calendar day), or `None`.
fn civil_days(s: &[u8]) -> Option<i64> {
    if s.len() < 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(s, 0, 4)?, digits(s, 5, 7)?, digits(s, 8, 10)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// `YYYY-MM-DD` exactly, as days since the epoch, or `None` for any other text.
pub(crate) fn parse_iso_date(s: &[u8]) -> Option<i32> {
    if s.len() != 10 {
        return None;
    }
    civil_days(s).map(|d| d as i32)
}

/// Nanoseconds in one `unit`.
pub(crate) fn nanos_per(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Nanoseconds => 1,
        TimeUnit::Microseconds => 1_000,
        TimeUnit::Milliseconds => 1_000_000,
    }
}

/// Parses timestamps, remembering the last date seen and the first value's layout.
#[derive(Default)]
pub(crate) struct StampParser {
    /// The `YYYY-MM-DD` bytes of the last date converted, when there is one.
    date: Option<[u8; 10]>,
    days: i64,
    /// The byte between date and time (`T` or a space) of the first value parsed.
    separator: Option<u8>,
}

impl StampParser {
    /// `s` as (seconds since the epoch, nanoseconds in the second ≥ 0), or `None` for any
    /// other layout or an out-of-range field.
    #[inline]
    pub(crate) fn parse(&mut self, s: &[u8]) -> Option<(i64, i64)> {
        if s.len() < 19 || s[13] != b':' || s[16] != b':' {
            return None;
        }
        match self.separator {
            Some(sep) if s[10] != sep => return None,
            Some(_) => {}
            None if s[10] == b' ' || s[10] == b'T' => self.separator = Some(s[10]),
            None => return None,
        }
        let days = match self.date {
            Some(date) if s[..10] == date => self.days,
            _ => {
                let days = civil_days(s)?;
                self.date = s[..10].try_into().ok();
                self.days = days;
                days
            }
        };
        let (h, mi, se) = (digits(s, 11, 13)?, digits(s, 14, 16)?, digits(s, 17, 19)?);
        if h > 23 || mi > 59 || se > 59 {
            return None;
        }
        let mut nanos = 0i64;
        if s.len() > 19 {
            if s[19] != b'.' || s.len() == 20 || s.len() > 29 {
                return None;
            }
            nanos = digits(s, 20, s.len())? * 10i64.pow(29 - s.len() as u32);
        }
        Some((days * 86_400 + h * 3600 + mi * 60 + se, nanos))
    }

    /// `s` in units of `per_unit` nanoseconds since the epoch (rounded down), or `None` as
    /// for [`StampParser::parse`].
    #[inline]
    pub(crate) fn parse_in(&mut self, s: &[u8], per_unit: i64) -> Option<i64> {
        let (secs, nanos) = self.parse(s)?;
        // Whole seconds are a multiple of every unit and `nanos` ≥ 0: this is the floor, with
        // no 64-bit division by a variable on the seconds.
        Some(secs * (1_000_000_000 / per_unit) + nanos / per_unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nanoseconds since the epoch.
    fn parse_iso(s: &[u8]) -> Option<i64> {
        StampParser::default().parse_in(s, nanos_per(TimeUnit::Nanoseconds))
    }

    #[test]
    fn iso_timestamps() {
        assert_eq!(parse_iso(b"1970-01-01 00:00:00"), Some(0));
        assert_eq!(
            parse_iso(b"2000-01-01T00:00:01"),
            Some(946_684_801_000_000_000)
        );
        assert_eq!(
            parse_iso(b"2000-03-01 00:00:00.5"),
            Some(951_868_800_500_000_000)
        );
        assert_eq!(parse_iso(b"1969-12-31 23:59:59.25"), Some(-750_000_000));
        assert_eq!(parse_iso(b"2000-13-01 00:00:00"), None);
        assert_eq!(parse_iso(b"2001-02-29 00:00:00"), None);
        assert_eq!(parse_iso(b"01/02/2000 00:00:00"), None);
        assert_eq!(parse_iso(b"2000-01-01 24:00:00"), None);
        // polars has no leap seconds.
        assert_eq!(parse_iso(b"2000-01-01 23:59:60"), None);
        assert_eq!(parse_iso(b"2000-01-01T23:59:60.5"), None);
        assert_eq!(parse_iso_date(b"2000-02-29"), Some(11_016));
        assert_eq!(parse_iso_date(b"2000-04-31"), None);
        assert_eq!(parse_iso_date(b"2000-04-30 "), None);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
    }

    #[test]
    fn the_remembered_date_is_only_reused_for_the_same_text() {
        let mut p = StampParser::default();
        assert_eq!(p.parse(b"2000-01-01 00:00:01"), Some((946_684_801, 0)));
        assert_eq!(
            p.parse(b"2000-01-01 00:00:02.5"),
            Some((946_684_802, 500_000_000))
        );
        assert_eq!(p.parse(b"2000-01-02 00:00:00"), Some((946_771_200, 0)));
        // A bad date after a good one is still rejected.
        assert_eq!(p.parse(b"2000-02-30 00:00:00"), None);
        assert_eq!(p.parse(b"2000-01-02 00:00:00"), Some((946_771_200, 0)));
        // The first value's layout is the only one taken, as in polars.
        assert_eq!(p.parse(b"2000-01-02T00:00:00"), None);
        let mut t = StampParser::default();
        assert_eq!(t.parse(b"2000-01-02T00:00:00"), Some((946_771_200, 0)));
        assert_eq!(t.parse(b"2000-01-02 00:00:00"), None);
        // A fresh parser has no remembered date to match.
        assert_eq!(
            StampParser::default().parse(b"\0\0\0\0\0\0\0\0\0\0 00:00:00"),
            None
        );
    }
}
