//! Errors told on one line, causes included, for logs and reports that keep
//! one line per failure (the CLI prints the causes as `caused by:` lines).

/// An error and its causes on one line (`a: b: c`), each cause once.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}
