//! One place that turns an error and its chain of causes into the single
//! line the user reads. Library modules use it to describe foreign errors
//! (kube, gRPC, object storage); the CLI uses it for every failure.

use std::error::Error;

/// Appends the causes below an error to `msg`, each after `: `, skipping a
/// cause whose text the message already holds (many errors repeat their
/// source in their own text). Newlines are kept.
pub fn with_causes(msg: String, source: Option<&(dyn Error + 'static)>) -> String {
    join(msg, source, &|_| None)
}

/// Joins an error and its sources into one line, skipping repeats.
pub fn one_line(e: &dyn Error) -> String {
    with_causes(e.to_string(), e.source()).replace('\n', " ")
}

/// [`one_line`], with `hint(error)` (e.g. the command line's advice on
/// which flag to pass) placed right after the text of each error in the
/// chain that has one.
pub fn one_line_with(
    e: &(dyn Error + 'static),
    hint: impl Fn(&(dyn Error + 'static)) -> Option<String>,
) -> String {
    let mut msg = e.to_string();
    msg.extend(hint(e));
    join(msg, e.source(), &hint).replace('\n', " ")
}

/// The causes appended to `msg`, each followed by its hint.
fn join(
    mut msg: String,
    mut source: Option<&(dyn Error + 'static)>,
    hint: &dyn Fn(&(dyn Error + 'static)) -> Option<String>,
) -> String {
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&text);
        }
        if let Some(h) = hint(s).filter(|h| !msg.contains(h.as_str())) {
            msg.push_str(&h);
        }
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle: inner")]
    struct Middle(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner\nline")]
    struct Inner;

    #[test]
    fn hints_follow_the_error_they_belong_to() {
        let hint =
            |e: &(dyn std::error::Error + 'static)| e.is::<Middle>().then(|| " (try X)".to_owned());
        assert_eq!(
            super::one_line_with(&Outer(Middle(Inner)), hint),
            "outer: middle: inner (try X): inner line"
        );
        assert_eq!(
            super::one_line_with(&Middle(Inner), hint),
            "middle: inner (try X): inner line"
        );
    }

    #[test]
    fn chains_join_into_one_line_without_repeats() {
        assert_eq!(
            super::one_line(&Outer(Middle(Inner))),
            "outer: middle: inner: inner line"
        );
        assert_eq!(super::one_line(&Middle(Inner)), "middle: inner: inner line");
        let m = Middle(Inner);
        assert_eq!(
            super::with_causes(String::new(), Some(&m)),
            "middle: inner: inner\nline"
        );
    }
}
