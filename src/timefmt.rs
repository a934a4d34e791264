//! UTC timestamps in RFC 3339, as the index and key files record them.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The current time in UTC, RFC 3339 with seconds precision.
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc());
    now.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// Parses an RFC 3339 timestamp.
pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// The UTC date and time fields (year, month, day, hour, minute, second)
/// of an RFC 3339 time.
fn utc_fields(s: &str) -> Option<(i32, u8, u8, u8, u8, u8)> {
    let t = parse_rfc3339(s)?.to_offset(time::UtcOffset::UTC);
    Some((
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    ))
}

/// A compact human form (`2026-01-02 03:04:05 UTC`) of an RFC 3339 time;
/// the input unchanged when it does not parse.
pub fn human(s: &str) -> String {
    match utc_fields(s) {
        Some((y, mo, d, h, mi, se)) => {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{se:02} UTC")
        }
        None => s.to_owned(),
    }
}

/// The basic ISO 8601 form (`20260102T030405Z`) of an RFC 3339 time, as
/// snapshot object keys use it; `None` when it does not parse.
pub fn basic_utc(s: &str) -> Option<String> {
    let (y, mo, d, h, mi, se) = utc_fields(s)?;
    Some(format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{se:02}Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_a_time() {
        assert_eq!(human("2026-01-02T03:04:05Z"), "2026-01-02 03:04:05 UTC");
        assert_eq!(
            human("2026-01-02T04:04:05+01:00"),
            "2026-01-02 03:04:05 UTC"
        );
        assert_eq!(human("yesterday"), "yesterday");
        assert_eq!(
            basic_utc("2026-01-02T04:04:05+01:00").as_deref(),
            Some("20260102T030405Z")
        );
        assert_eq!(basic_utc("yesterday"), None);
    }
}
