//! The frozen chart's escaping, as a property: the escaped text, rendered
//! with Go text/template's rules for text and string-constant actions and
//! then Helm's removal of `<no value>`, gives back the input exactly.
//! (The differential test against the real helm binaries is
//! tests/frozen_property.rs; this is the pure-Rust check of the same rules.)
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let escaped = helm_bulk::restore::frozen::escape_template(text);
    match render(&escaped) {
        Ok(rendered) => assert_eq!(
            rendered, text,
            "escape_template({text:?}) = {escaped:?} renders differently"
        ),
        Err(why) => panic!("escape_template({text:?}) = {escaped:?} is not a plain template: {why}"),
    }
});

/// Renders a template made only of text and `{{"…"}}` actions the way Go's
/// text/template and Helm's engine do; anything else is an error.
fn render(template: &str) -> Result<String, String> {
    // Helm's chart loader drops a byte order mark at the start of a file.
    let template = template.strip_prefix('\u{feff}').unwrap_or(template);
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let action = &rest[open + 2..];
        let Some(body) = action.strip_prefix('"') else {
            return Err(format!("an action that is not a string constant at {:?}", &action[..action.len().min(20)]));
        };
        let (value, after) = go_string(body)?;
        let Some(after) = after.strip_prefix("}}") else {
            return Err("a string action not closed by }}".to_owned());
        };
        out.push_str(&value);
        rest = after;
    }
    out.push_str(rest);
    // Helm: strings.ReplaceAll(rendered, "<no value>", "")
    Ok(out.replace("<no value>", ""))
}

/// Reads a Go interpreted string literal after its opening quote; returns the
/// value and what follows the closing quote.
fn go_string(s: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &s[i + 1..])),
            '\n' => return Err("a newline in a string constant".to_owned()),
            '\\' => {
                let (_, e) = chars.next().ok_or("an unfinished escape")?;
                let mut hex = |n: usize| -> Result<char, String> {
                    let mut v = 0u32;
                    for _ in 0..n {
                        let (_, h) = chars.next().ok_or("an unfinished escape")?;
                        v = v * 16 + h.to_digit(16).ok_or("a bad hex digit")?;
                    }
                    char::from_u32(v).ok_or_else(|| "an invalid code point".to_owned())
                };
                value.push(match e {
                    '\\' => '\\',
                    '"' => '"',
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'v' => '\u{b}',
                    'u' => hex(4)?,
                    'U' => hex(8)?,
                    other => return Err(format!("an escape \\{other} this check does not model")),
                });
            }
            c => value.push(c),
        }
    }
    Err("an unterminated string constant".to_owned())
}
