//! What a legacy field must look like. Each function takes the field's text exactly as the CSV
//! holds it (nothing is trimmed) and returns the value to store, or `None` when it is unacceptable.

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01T00:00:00Z).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// 9999-12-31T23:59:59.999Z in epoch milliseconds: the last instant a date string can name.
const MAX_EPOCH_MILLIS: i64 = 253_402_300_799_999;

/// A positive integer of ASCII digits (no sign, no spaces) that fits a BIGINT.
pub fn positive_id(s: &str) -> Option<u64> {
    let n = digits(s)?;
    (n > 0 && n <= i64::MAX as u64).then_some(n)
}

/// An integer 1–5 (a star rating or a characteristic value).
pub fn one_to_five(s: &str) -> Option<i16> {
    match digits(s)? {
        n @ 1..=5 => i16::try_from(n).ok(),
        _ => None,
    }
}

/// A non-negative integer that fits an INTEGER (the helpful count).
pub fn helpfulness(s: &str) -> Option<i32> {
    i32::try_from(digits(s)?).ok()
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `true`/`false`/`1`/`0`, any case.
pub fn boolean(s: &str) -> Option<bool> {
    if s == "1" || s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s == "0" || s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A review date as microseconds since 2000-01-01 UTC (PostgreSQL's binary `timestamptz`).
///
/// Accepted: epoch milliseconds (digits only, up to year 9999), `YYYY-MM-DD` (midnight UTC), and
/// RFC 3339 (`2020-07-30T12:00:00Z`, `2020-07-30T12:00:00.5+02:00`).
pub fn date(s: &str) -> Option<i64> {
    let unix_micros = if s.bytes().all(|b| b.is_ascii_digit()) {
        let millis: i64 = s.parse().ok()?;
        if millis > MAX_EPOCH_MILLIS {
            return None;
        }
        millis * 1000
    } else if s.len() == 10 {
        let b = s.as_bytes();
        if b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let year: i32 = four_digits(&s[0..4])?;
        let month: u8 = s[5..7].parse().ok().filter(|_| all_digits(&s[5..7]))?;
        let day: u8 = s[8..10].parse().ok().filter(|_| all_digits(&s[8..10]))?;
        let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
        i64::try_from(date.midnight().assume_utc().unix_timestamp_nanos() / 1000).ok()?
    } else {
        let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
        i64::try_from(t.unix_timestamp_nanos() / 1000).ok()?
    };
    Some(unix_micros - PG_EPOCH_MICROS)
}

fn four_digits(s: &str) -> Option<i32> {
    s.parse().ok().filter(|_| s.len() == 4 && all_digits(s))
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// Length in characters, as PostgreSQL's `char_length` counts them.
pub fn char_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

/// 3–60 characters, exactly one `@`, a non-empty local part, a domain with a dot that neither
/// starts nor ends it, and no whitespace anywhere.
pub fn email(s: &str) -> bool {
    let len = char_len(s);
    if !(3..=60).contains(&len) || s.chars().any(char::is_whitespace) {
        return false;
    }
    let mut parts = s.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        _ => false,
    }
}

/// `http://` or `https://` (lower case, as the column's CHECK matches it) and at most 2,048
/// characters.
pub fn url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://")) && char_len(s) <= 2048
}

/// The legacy spelling of "no response": the text `null` (any case, quoted or not), or nothing.
pub fn is_null(s: &str) -> bool {
    s.is_empty() || s.eq_ignore_ascii_case("null")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_a_positive_integer_without_sign_or_spaces() {
        assert_eq!(positive_id("42"), Some(42));
        assert_eq!(positive_id("007"), Some(7));
        for bad in [
            "0",
            "-1",
            "+1",
            " 1",
            "1.0",
            "",
            "abc",
            "9223372036854775808",
        ] {
            assert_eq!(positive_id(bad), None, "{bad}");
        }
        assert_eq!(positive_id("9223372036854775807"), Some(i64::MAX as u64));
    }

    #[test]
    fn a_rating_of_six_or_two_and_a_half_is_rejected() {
        assert_eq!(one_to_five("1"), Some(1));
        assert_eq!(one_to_five("5"), Some(5));
        for bad in ["0", "6", "7", "2.5", "", "-1", "five"] {
            assert_eq!(one_to_five(bad), None, "{bad}");
        }
    }

    #[test]
    fn helpfulness_is_a_non_negative_integer() {
        assert_eq!(helpfulness("0"), Some(0));
        assert_eq!(helpfulness("2147483647"), Some(i32::MAX));
        for bad in ["-1", "2147483648", "", "1.5", "x"] {
            assert_eq!(helpfulness(bad), None, "{bad}");
        }
    }

    #[test]
    fn booleans_are_true_false_one_or_zero_in_any_case() {
        for (s, v) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("False", false),
            ("0", false),
        ] {
            assert_eq!(boolean(s), Some(v), "{s}");
        }
        for bad in ["yes", "", "t", "2", " true"] {
            assert_eq!(boolean(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_date_is_epoch_milliseconds_a_day_or_rfc_3339() {
        // 2020-07-30T00:00:00Z
        let day = 1_596_067_200_000_000 - PG_EPOCH_MICROS;
        assert_eq!(date("1596067200000"), Some(day));
        assert_eq!(date("2020-07-30"), Some(day));
        assert_eq!(date("2020-07-30T00:00:00Z"), Some(day));
        assert_eq!(date("2020-07-30T02:00:00.5+02:00"), Some(day + 500_000));
        assert_eq!(date("0"), Some(-PG_EPOCH_MICROS));
        for bad in [
            "",
            "2020-13-01",
            "2020-02-30",
            "30/07/2020",
            "2020-7-30",
            "yesterday",
            "-5",
            "99999999999999999",
            "2020-07-30 12:00",
        ] {
            assert_eq!(date(bad), None, "{bad}");
        }
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        assert_eq!(char_len("héllo"), 5);
        assert_eq!(char_len("abc"), 3);
    }

    #[test]
    fn an_email_needs_one_at_a_local_part_and_a_dotted_domain() {
        assert!(email("a@b.co"));
        assert!(email("first.last+tag@mail.example.com"));
        for bad in [
            "ab",
            "no-at.example.com",
            "a@@b.co",
            "a@b@c.co",
            "@b.co",
            "a@bco",
            "a@.co",
            "a@b.",
            "a b@c.co",
            "a@b.co\t",
        ] {
            assert!(!email(bad), "{bad}");
        }
        assert!(!email(&format!("{}@b.co", "a".repeat(56))), "61 characters");
        assert!(email(&format!("{}@b.co", "a".repeat(55))), "60 characters");
    }

    #[test]
    fn a_photo_url_is_http_or_https_up_to_2048_characters() {
        assert!(url("https://x.example/a.jpg"));
        assert!(url("http://x"));
        for bad in ["ftp://x", "HTTPS://x", "//x/a.jpg", "", "x"] {
            assert!(!url(bad), "{bad}");
        }
        let long = format!("https://{}", "a".repeat(2040));
        assert!(url(&long));
        assert!(!url(&format!("{long}a")));
    }

    #[test]
    fn null_in_any_case_or_nothing_means_no_response() {
        assert!(is_null("null") && is_null("NULL") && is_null(""));
        assert!(!is_null("nullable") && !is_null(" null"));
    }
}
