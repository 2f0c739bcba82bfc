//! HTTP dates (`Last-Modified`, `If-Modified-Since`) in the one format GitHub sends:
//! IMF-fixdate, `Thu, 01 Jan 2026 00:00:00 GMT` (RFC 9110, section 5.6.7); and the timestamps of
//! JSON bodies (webhook payloads), RFC 3339 in UTC as GitHub writes them, `2026-01-01T00:00:00Z`.

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `secs` (since the Unix epoch) as an IMF-fixdate.
pub fn format(secs: u64) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// `secs` (since the Unix epoch) as GitHub's JSON timestamps: RFC 3339, UTC, whole seconds.
pub fn rfc3339(secs: u64) -> String {
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(secs / 86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Seconds since the Unix epoch of a timestamp as [`rfc3339`] writes it, for tests.
#[cfg(test)]
pub(crate) fn parse_rfc3339(text: &str) -> Option<u64> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let numbers = |text: &str, sep: char| -> Option<Vec<u64>> {
        text.split(sep).map(|part| part.parse().ok()).collect()
    };
    let (date, time) = (numbers(date, '-')?, numbers(time, ':')?);
    let ([year, month, day], [hour, minute, second]) = (date.as_slice(), time.as_slice()) else {
        return None;
    };
    if *year < 1970 || !(1..=12).contains(month) || !(1..=31).contains(day) {
        return None;
    }
    if *hour > 23 || *minute > 59 || *second > 60 {
        return None;
    }
    Some(days_from_civil(*year, *month, *day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Seconds since the Unix epoch of an IMF-fixdate; `None` for anything else, which a server
/// ignores as it ignores an invalid `If-Modified-Since`.
pub fn parse(text: &str) -> Option<u64> {
    let (_, rest) = text.trim().split_once(", ")?;
    let mut words = rest.split(' ');
    let day: u64 = words.next()?.parse().ok()?;
    let month = words.next()?;
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let year: u64 = words.next()?.parse().ok()?;
    let mut clock = words
        .next()?
        .split(':')
        .map(|part| part.parse::<u64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if words.next()? != "GMT" || words.next().is_some() || clock.next().is_some() {
        return None;
    }
    if year < 1970 || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar (from 1970 on).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    // Howard Hinnant's algorithm, with years starting in March so that leap days come last.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date (year, month 1-12, day 1-31) `days` after 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TIME_SECS;

    #[test]
    fn known_dates_format_and_parse() {
        for (secs, text) in [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (TIME_SECS, "Thu, 01 Jan 2026 00:00:00 GMT"),
            (TIME_SECS + 3, "Thu, 01 Jan 2026 00:00:03 GMT"),
            (1_798_761_599, "Thu, 31 Dec 2026 23:59:59 GMT"),
        ] {
            assert_eq!(format(secs), text);
            assert_eq!(parse(text), Some(secs), "{text}");
        }
    }

    #[test]
    fn json_timestamps_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(TIME_SECS), crate::data::TIME);
        assert_eq!(rfc3339(1_796_644_800), "2026-12-07T12:00:00Z");
        for secs in (0..146_097 * 86_400).step_by(86_400 * 13 + 3_661) {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs));
        }
        assert_eq!(parse_rfc3339("2026-12-07T12:00:00"), None);
        assert_eq!(parse_rfc3339("2026-13-07T12:00:00Z"), None);
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        for days in (0..146_097 * 2).step_by(7) {
            let secs = days * 86_400 + 3_661;
            assert_eq!(parse(&format(secs)), Some(secs));
        }
    }

    #[test]
    fn other_text_is_not_a_date() {
        for text in [
            "",
            "yesterday",
            "Thu, 01 Jan 2026 00:00:00 UTC",
            "Thu, 01 Foo 2026 00:00:00 GMT",
            "Thu, 01 Jan 2026 00:00 GMT",
            "Thu, 01 Jan 2026 00:00:00:00 GMT",
            "Thu, 32 Jan 2026 00:00:00 GMT",
            "Thu, 01 Jan 2026 24:00:00 GMT",
            "Thu, 01 Jan 2026 00:00:00 GMT x",
            "Thursday, 01-Jan-26 00:00:00 GMT",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }
}
