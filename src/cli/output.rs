//! Everything the commands print: tables, JSON and YAML, strings from a
//! snapshot made safe for a terminal, and standard output that may be a
//! closed pipe.

use std::io::Write;

use super::{Failure, OutputFormat, fail};

/// A byte count for people: `12 B`, `3.4 KiB`, `5.6 MiB`.
pub(crate) fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// A string from a snapshot made safe for a terminal: control characters
/// (escape sequences) are shown escaped, everything else as is.
pub(crate) fn printable(s: &str) -> String {
    if s.chars().any(char::is_control) {
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_debug().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        s.to_owned()
    }
}

/// Writes to stdout, treating a closed pipe (`| head`) as success.
pub(crate) fn print_stdout(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(fail(format!("cannot write to standard output: {e}"))),
    }
}

/// A table for people: each column as wide as its widest cell (counted in
/// characters), two spaces between columns, the last column not padded and
/// no trailing spaces.
pub(crate) fn table<S: AsRef<str>>(header: &[&str], rows: &[Vec<S>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.as_ref().chars().count());
        }
    }
    let last = header.len().saturating_sub(1);
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, c) in cells.enumerate() {
            if i == last {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(AsRef::as_ref));
    }
    out
}

/// `value` as pretty JSON (with a final newline) or as YAML.
pub(crate) fn structured<T: serde::Serialize + ?Sized>(
    format: OutputFormat,
    value: &T,
) -> Result<String, Failure> {
    Ok(match format {
        OutputFormat::Json => format!("{}\n", serde_json::to_string_pretty(value)?),
        OutputFormat::Yaml | OutputFormat::Table => serde_norway::to_string(value)?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_align_by_characters_and_leave_the_last_column_unpadded() {
        let rows = vec![vec!["é", "x", "last  "], vec!["abc", "", ""]];
        assert_eq!(
            super::table(&["A", "BB", "C"], &rows),
            "A    BB  C\né    x   last\nabc\n"
        );
    }

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(super::printable("deployed"), "deployed");
        assert_eq!(super::printable("x\u{1b}[2Jy\n"), "x\\u{1b}[2Jy\\n");
    }
}
