//! Values rendered into a shell script (`command: "..."`, run as `sh -c`) are quoted for where
//! they land, so a value can never become shell syntax: an upstream output of `x; id` stays the
//! one word `x; id`.
//!
//! The script's literal text is scanned as POSIX `sh` reads it, far enough to know, at each
//! template, whether it stands outside quotes, inside `'...'`, inside `"..."`, in a comment, or in
//! a here-document:
//!
//! | where | what the value becomes |
//! |---|---|
//! | outside quotes | one single-quoted word: `'it'\''s'` |
//! | inside `'...'` | its `'` closed, escaped and reopened: `it'\''s` |
//! | inside `"..."` | `\`, `"`, `$` and `` ` `` escaped with `\` |
//! | in a `#` comment | line breaks become spaces (the comment cannot end early) |
//! | in a here-document | refused when the workflow is registered: a here-document expands `$(...)` in its body, and nothing can quote there |

/// Where a template stands in a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellContext {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Comment,
    HereDocument,
}

/// Scans a script's literal pieces (the text between templates) and answers the context of each
/// template between them: `pieces.len() - 1` contexts.
pub fn contexts(pieces: &[&str]) -> Vec<ShellContext> {
    let mut lexer = Lexer::default();
    let mut out = Vec::with_capacity(pieces.len().saturating_sub(1));
    for (i, piece) in pieces.iter().enumerate() {
        lexer.feed(piece);
        if i + 1 < pieces.len() {
            out.push(lexer.context());
            // The value is one opaque word in that context: it changes no state.
            lexer.word_started = true;
        }
    }
    out
}

/// `value` made safe for `context`; `None` where nothing can make it safe (a here-document).
pub fn quote(value: &str, context: ShellContext) -> Option<String> {
    Some(match context {
        ShellContext::Plain => format!("'{}'", value.replace('\'', r"'\''")),
        ShellContext::SingleQuoted => value.replace('\'', r"'\''"),
        ShellContext::DoubleQuoted => {
            let mut out = String::with_capacity(value.len());
            for c in value.chars() {
                if matches!(c, '\\' | '"' | '$' | '`') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        }
        ShellContext::Comment => value.replace(['\n', '\r'], " "),
        ShellContext::HereDocument => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Plain,
    Single,
    Double,
    Comment,
    /// Reading the delimiter word after `<<`.
    HereWord,
    /// In a here-document's body, until a line equal to the delimiter.
    HereBody,
}

#[derive(Debug, Default)]
struct Lexer {
    state: State,
    /// The previous character was a backslash (outside single quotes).
    escaped: bool,
    /// A word has started on this line since the last blank: `#` then is not a comment.
    word_started: bool,
    /// `<` seen: one more makes a here-document operator.
    angle: bool,
    /// The delimiter being read, and whether `<<-` strips leading tabs.
    here_word: String,
    strip_tabs: bool,
    /// Here-documents whose bodies start at the next line break.
    pending_here: Vec<(String, bool)>,
    /// The body line being read.
    body_line: String,
    /// The current here-document's delimiter.
    here: Option<(String, bool)>,
}

impl Lexer {
    fn context(&self) -> ShellContext {
        match self.state {
            State::Plain | State::HereWord => ShellContext::Plain,
            State::Single => ShellContext::SingleQuoted,
            State::Double => ShellContext::DoubleQuoted,
            State::Comment => ShellContext::Comment,
            State::HereBody => ShellContext::HereDocument,
        }
    }

    fn feed(&mut self, text: &str) {
        for c in text.chars() {
            self.step(c);
        }
    }

    fn step(&mut self, c: char) {
        match self.state {
            State::HereBody => {
                if c == '\n' {
                    let line = std::mem::take(&mut self.body_line);
                    if let Some((word, strip)) = &self.here {
                        let line = if *strip { line.trim_start_matches('\t') } else { line.as_str() };
                        if line == word {
                            self.here = None;
                            self.next_here_or_plain();
                        }
                    }
                } else {
                    self.body_line.push(c);
                }
            }
            State::Single => {
                if c == '\'' {
                    self.state = State::Plain;
                }
            }
            State::Double => {
                if self.escaped {
                    self.escaped = false;
                } else if c == '\\' {
                    self.escaped = true;
                } else if c == '"' {
                    self.state = State::Plain;
                }
            }
            State::Comment => {
                if c == '\n' {
                    self.end_of_line();
                }
            }
            State::HereWord => {
                if c == '-' && self.here_word.is_empty() && !self.strip_tabs {
                    self.strip_tabs = true;
                } else if (c == ' ' || c == '\t') && self.here_word.is_empty() {
                } else if c.is_whitespace() || matches!(c, ';' | '&' | '|' | '<' | '>' | '(' | ')') {
                    let word = std::mem::take(&mut self.here_word);
                    self.pending_here.push((word, self.strip_tabs));
                    self.strip_tabs = false;
                    self.state = State::Plain;
                    self.step(c);
                } else if !matches!(c, '\'' | '"' | '\\') {
                    // Quotes around the delimiter only stop expansion; the word is what is left.
                    self.here_word.push(c);
                }
            }
            State::Plain => {
                if self.escaped {
                    self.escaped = false;
                    self.word_started = true;
                    return;
                }
                let angle = std::mem::take(&mut self.angle);
                match c {
                    '\\' => self.escaped = true,
                    '\'' => {
                        self.state = State::Single;
                        self.word_started = true;
                    }
                    '"' => {
                        self.state = State::Double;
                        self.word_started = true;
                    }
                    '#' if !self.word_started => self.state = State::Comment,
                    '<' if angle => {
                        self.state = State::HereWord;
                        self.strip_tabs = false;
                    }
                    '<' => self.angle = true,
                    '\n' => self.end_of_line(),
                    ' ' | '\t' | ';' | '&' | '|' | '(' | ')' => self.word_started = false,
                    _ => self.word_started = true,
                }
            }
        }
    }

    fn end_of_line(&mut self) {
        self.word_started = false;
        self.state = State::Plain;
        self.next_here_or_plain();
    }

    fn next_here_or_plain(&mut self) {
        if self.pending_here.is_empty() {
            self.state = State::Plain;
        } else {
            self.here = Some(self.pending_here.remove(0));
            self.state = State::HereBody;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn ctx(script: &str) -> Vec<ShellContext> {
        let pieces: Vec<&str> = script.split("{{}}").collect();
        contexts(&pieces)
    }

    #[test]
    fn knows_where_each_template_stands() {
        use ShellContext::*;
        assert_eq!(ctx("echo {{}} '{{}}' \"{{}}\" x{{}}"), [Plain, SingleQuoted, DoubleQuoted, Plain]);
        assert_eq!(ctx("echo it\\'s {{}} # note {{}}\necho {{}}"), [Plain, Comment, Plain]);
        assert_eq!(ctx("a#b {{}}"), [Plain], "a # inside a word starts no comment");
        assert_eq!(ctx("cat <<EOF\nhi {{}}\nEOF\necho {{}}"), [HereDocument, Plain]);
        assert_eq!(ctx("cat <<-'END' && echo {{}}\n\tbody {{}}\n\tEND\n{{}}"), [Plain, HereDocument, Plain]);
        assert_eq!(ctx("echo \"a \\\" {{}}\" {{}}"), [DoubleQuoted, Plain]);
        assert_eq!(ctx("x=$(echo {{}})"), [Plain]);
    }

    /// Runs `sh -c script` and answers its stdout.
    fn sh(script: &str) -> String {
        let out = Command::new("sh").arg("-c").arg(script).output().expect("sh runs");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn render(template: &str, value: &str) -> String {
        let pieces: Vec<&str> = template.split("{{}}").collect();
        let contexts = contexts(&pieces);
        let mut out = String::new();
        for (i, piece) in pieces.iter().enumerate() {
            out.push_str(piece);
            if let Some(c) = contexts.get(i) {
                out.push_str(&quote(value, *c).expect("quotable"));
            }
        }
        out
    }

    const HOSTILE: [&str; 8] = [
        "x; echo PWNED",
        "$(echo PWNED)",
        "`echo PWNED`",
        "it's \"quoted\" \\ back",
        "a'; echo PWNED; echo '",
        "\"; echo PWNED; echo \"",
        "line\necho PWNED",
        "",
    ];

    #[test]
    fn a_hostile_value_stays_one_value_wherever_it_lands() {
        for value in HOSTILE {
            for template in ["printf '%s|' {{}}", "printf '%s|' '{{}}'", "printf '%s|' \"{{}}\"", "printf '%s|' a{{}}b"]
            {
                let out = sh(&render(template, value));
                assert!(!out.contains("PWNED\n") && !out.starts_with("PWNED"), "{template} with {value:?}: {out:?}");
                let expected = if template.contains("a{{}}b") { format!("a{value}b|") } else { format!("{value}|") };
                assert_eq!(out, expected, "{template} with {value:?}");
            }
            let out = sh(&render("# {{}}\nprintf ok", value));
            assert_eq!(out, "ok", "a comment with {value:?}");
        }
    }

    #[test]
    fn nothing_quotes_a_here_document() {
        assert_eq!(quote("x", ShellContext::HereDocument), None);
    }
}
