//! A parser for server-sent events (the `text/event-stream` format), fed bytes as they arrive.
//!
//! Only what log following needs: `event` and `data` fields, comments (keep-alives) skipped,
//! CR, LF and CRLF line ends, events split anywhere across chunks. `id` and `retry` are ignored
//! because the log stream does not use them.

use crate::Error;

/// Largest event accepted: a log stream's first event holds the whole log so far.
const MAX_EVENT_BYTES: usize = 64 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// `message` unless the event named itself.
    pub(crate) event: String,
    pub(crate) data: String,
}

/// Incremental parser state.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// The current, unfinished line.
    line: Vec<u8>,
    /// The last byte fed was a CR: a LF right after it ends nothing more.
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// Feeds `bytes`; answers the events they completed, in order.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, Error> {
        let mut events = Vec::new();
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match byte {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.end_line(&line) {
                        events.push(event);
                    }
                }
                _ => {
                    self.line.push(byte);
                    if self.line.len() + self.data.len() > MAX_EVENT_BYTES {
                        return Err(Error::Decode(format!("an event larger than {MAX_EVENT_BYTES} bytes")));
                    }
                }
            }
        }
        Ok(events)
    }

    fn end_line(&mut self, line: &[u8]) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return None;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the LF after the last data line
        Some(SseEvent { event: event.unwrap_or_else(|| "message".to_string()), data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        input.chunks(piece).flat_map(|chunk| parser.push(chunk).unwrap()).collect()
    }

    fn message(data: &str) -> SseEvent {
        SseEvent { event: "message".into(), data: data.into() }
    }

    #[test]
    fn parses_events_split_anywhere() {
        let input = b": keep-alive\n\ndata: --- a attempt 1 (running) ---\ndata: hello\ndata: \n\n\
                      event: end\ndata: task ended\n\n";
        let expected = vec![
            message("--- a attempt 1 (running) ---\nhello\n"),
            SseEvent { event: "end".into(), data: "task ended".into() },
        ];
        for piece in 1..input.len() {
            assert_eq!(parse_in_pieces(input, piece), expected, "pieces of {piece} bytes");
        }
    }

    #[test]
    fn accepts_every_line_end() {
        for input in [&b"data: x\r\ndata:y\r\n\r\n"[..], b"data: x\rdata:y\r\r", b"data: x\ndata:y\n\n"] {
            for piece in 1..input.len() {
                assert_eq!(parse_in_pieces(input, piece), vec![message("x\ny")], "{input:?} in {piece}");
            }
        }
    }

    #[test]
    fn ignores_what_it_does_not_use() {
        let events = parse_in_pieces(b"id: 7\nretry: 100\nevent: x\n\nfoo: bar\ndata\n\n", 3);
        // An event without data is not dispatched; a bare `data` field is an empty line of data.
        assert_eq!(events, vec![message("")]);
    }

    #[test]
    fn keeps_utf8_split_across_chunks() {
        let input = "data: héllo wörld ✓\n\n".as_bytes();
        for piece in 1..input.len() {
            assert_eq!(parse_in_pieces(input, piece), vec![message("héllo wörld ✓")]);
        }
    }

    #[test]
    fn refuses_an_event_without_end() {
        let mut parser = SseParser::default();
        let chunk = vec![b'x'; 1024 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..=MAX_EVENT_BYTES / chunk.len() {
            result = parser.push(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(Error::Decode(_))));
    }
}
