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

/// A compact human form (`2026-01-02 03:04:05 UTC`) of an RFC 3339 time;
/// the input unchanged when it does not parse.
pub fn human(s: &str) -> String {
    match parse_rfc3339(s) {
        Some(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        None => s.to_owned(),
    }
}
