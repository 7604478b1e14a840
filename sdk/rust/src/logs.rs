//! Task logs: the text so far, or followed live over server-sent events.
//!
//! The server sends the whole log so far as the first event, then each new piece, then an `end`
//! event when the task (or the execution) ends. If the connection breaks, following resumes on
//! the next server that answers and skips the bytes already delivered, so the caller sees the
//! log once. (A log longer than the per-attempt limit loses its oldest bytes on the server; a
//! resume across that moment may repeat or skip a little text near the `[... dropped ...]` mark.)

use std::collections::VecDeque;
use std::time::Duration;

use futures::Stream;

use crate::client::{segment, ApiRequest};
use crate::sse::SseParser;
use crate::{Client, Error};

/// The server sends a keep-alive at least every 15 s; a silent connection is declared dead after
/// this long and resumed elsewhere.
const FOLLOW_IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// Most times one follow resumes after a broken connection.
const MAX_FOLLOW_RESUMES: u32 = 10;

impl Client {
    /// The logs of one task (or of every task when `task` is `None`) so far, attempt by attempt.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// let text = client.logs("daily-report:20260101T060000Z", Some("extract")).await?;
    /// print!("{text}");
    /// # Ok(()) }
    /// ```
    pub async fn logs(&self, execution_id: &str, task: Option<&str>) -> Result<String, Error> {
        let mut request = ApiRequest::get(format!("/api/v1/executions/{}/logs", segment(execution_id)));
        if let Some(task) = task {
            request = request.query("task", task);
        }
        let body = self.call(&request).await?;
        String::from_utf8(body.to_vec()).map_err(|e| Error::Decode(format!("the logs: {e}")))
    }

    /// Follows the logs of one task (or of every task) as they are written: the text so far,
    /// then each new piece, ending when the task ends. The stream yields an error and ends if
    /// no server can be reached.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// use futures::StreamExt;
    ///
    /// let logs = client.follow_logs("daily-report:20260101T060000Z", Some("extract"));
    /// futures::pin_mut!(logs);
    /// while let Some(chunk) = logs.next().await {
    ///     print!("{}", chunk?);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn follow_logs(
        &self,
        execution_id: &str,
        task: Option<&str>,
    ) -> impl Stream<Item = Result<String, Error>> + Send + 'static {
        let mut request = ApiRequest::get(format!("/api/v1/executions/{}/logs", segment(execution_id)))
            .query("follow", "true")
            .accept("text/event-stream");
        if let Some(task) = task {
            request = request.query("task", task);
        }
        let follow = Follow {
            client: self.clone(),
            request,
            connection: None,
            server: 0,
            parser: SseParser::default(),
            ready: VecDeque::new(),
            position: 0,
            skip_until: 0,
            resumes: 0,
            done: false,
        };
        futures::stream::unfold(follow, |mut follow| async move {
            let item = follow.next().await?;
            Some((item, follow))
        })
    }
}

/// The state of one followed log.
struct Follow {
    client: Client,
    request: ApiRequest,
    connection: Option<reqwest::Response>,
    /// Index of the server `connection` is to.
    server: usize,
    parser: SseParser,
    /// Text parsed but not yet handed out.
    ready: VecDeque<String>,
    /// Bytes of the log received on the current connection.
    position: usize,
    /// Bytes delivered before the current connection: the new one repeats them, so skip them.
    skip_until: usize,
    resumes: u32,
    done: bool,
}

impl Follow {
    async fn next(&mut self) -> Option<Result<String, Error>> {
        loop {
            if let Some(text) = self.ready.pop_front() {
                return Some(Ok(text));
            }
            if self.done {
                return None;
            }
            let connection = match &mut self.connection {
                Some(connection) => connection,
                None => match self.client.open_with_server(&self.request).await {
                    Ok((response, server)) => {
                        self.parser = SseParser::default();
                        self.position = 0;
                        self.server = server;
                        self.connection.insert(response)
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                },
            };
            let broken = match tokio::time::timeout(FOLLOW_IDLE_TIMEOUT, connection.chunk()).await {
                Ok(Ok(Some(bytes))) => match self.parser.push(&bytes) {
                    Ok(events) => {
                        for event in events {
                            self.take(event);
                        }
                        None
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                },
                Ok(Ok(None)) => Some("the stream ended before the task did".to_string()),
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("nothing received for {FOLLOW_IDLE_TIMEOUT:?}")),
            };
            if let Some(why) = broken {
                self.connection = None;
                self.resumes += 1;
                if self.resumes > MAX_FOLLOW_RESUMES {
                    self.done = true;
                    return Some(Err(Error::Decode(format!(
                        "the log stream: it broke {} times (last: {why})",
                        self.resumes
                    ))));
                }
                tracing::debug!(reason = %why, "log stream broken; resuming on the next server");
                // Resume elsewhere: this server may be going away.
                if self.client.current() == self.server {
                    self.client.set_current(self.client.advance(self.server));
                }
                self.skip_until = self.skip_until.max(self.position);
            }
        }
    }

    /// Handles one event: text past what was already delivered becomes ready; `end` ends.
    fn take(&mut self, event: crate::sse::SseEvent) {
        if self.done {
            return; // nothing after `end` belongs to this follow
        }
        if event.event == "end" {
            self.done = true;
            return;
        }
        if event.event != "message" {
            return;
        }
        let start = self.position;
        self.position += event.data.len();
        if self.position <= self.skip_until {
            return;
        }
        let mut from = self.skip_until.saturating_sub(start);
        while !event.data.is_char_boundary(from) {
            from += 1;
        }
        let text = &event.data[from..];
        if !text.is_empty() {
            self.ready.push_back(text.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::{closed_port, serve};
    use axum::extract::{Path, Query};
    use axum::response::sse::{Event, Sse};
    use axum::routing::get;
    use axum::Router;
    use futures::StreamExt;
    use std::collections::HashMap;
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    async fn collect(stream: impl Stream<Item = Result<String, Error>>) -> (String, Option<Error>) {
        futures::pin_mut!(stream);
        let mut text = String::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => text.push_str(&chunk),
                Err(e) => return (text, Some(e)),
            }
        }
        (text, None)
    }

    #[tokio::test]
    async fn follows_the_servers_events_until_end() {
        let router = Router::new().route(
            "/api/v1/executions/{id}/logs",
            get(|Path(id): Path<String>, Query(query): Query<HashMap<String, String>>| async move {
                assert_eq!(id, "wf:1");
                assert_eq!(query.get("follow").map(String::as_str), Some("true"));
                assert_eq!(query.get("task").map(String::as_str), Some("extract"));
                // The same encoding the API uses: one event per new piece, then `end`.
                let events = vec![
                    Event::default().data("--- extract attempt 1 (running) ---\nline one\n"),
                    Event::default().comment("keep-alive"),
                    Event::default().data("line two\r\n"),
                    Event::default().data("ünïcödé\n"),
                    Event::default().event("end").data("task ended"),
                    Event::default().data("never read"),
                ];
                Sse::new(futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>)))
            }),
        );
        let client = Client::new([closed_port(), serve(router).await]).unwrap();
        let (text, error) = collect(client.follow_logs("wf:1", Some("extract"))).await;
        assert!(error.is_none(), "{error:?}");
        // axum's encoder turns CRLF into two line ends; everything else arrives as sent.
        assert_eq!(text, "--- extract attempt 1 (running) ---\nline one\nline two\n\nünïcödé\n");
    }

    #[tokio::test]
    async fn resumes_on_another_server_without_repeating_text() {
        // The first server sends part of the log and hangs up; the second has the whole log.
        let first = serve(Router::new().route(
            "/api/v1/executions/{id}/logs",
            get(|| async {
                let events = vec![Event::default().data("one\n"), Event::default().data("two\n")];
                Sse::new(futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>)))
            }),
        ))
        .await;
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let second = serve(Router::new().route(
            "/api/v1/executions/{id}/logs",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async {
                    let events = vec![
                        Event::default().data("one\ntwo\nthr"),
                        Event::default().data("ee\n"),
                        Event::default().event("end").data("task ended"),
                    ];
                    Sse::new(futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>)))
                }
            }),
        ))
        .await;
        let client = Client::new([first, second]).unwrap();
        let (text, error) = collect(client.follow_logs("wf:1", None)).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(text, "one\ntwo\nthree\n");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn reports_unreachable_servers_and_ends() {
        let client = Client::new([closed_port()]).unwrap();
        let (text, error) = collect(client.follow_logs("wf:1", None)).await;
        assert_eq!(text, "");
        assert!(matches!(error, Some(Error::Connect { .. })), "{error:?}");
    }

    #[tokio::test]
    async fn reads_plain_logs() {
        let router = Router::new().route(
            "/api/v1/executions/{id}/logs",
            get(|Query(query): Query<HashMap<String, String>>| async move {
                assert!(!query.contains_key("follow"));
                "--- t attempt 1 (succeeded) ---\nhi\n"
            }),
        );
        let client = Client::new([serve(router).await]).unwrap();
        assert_eq!(client.logs("wf:1", None).await.unwrap(), "--- t attempt 1 (succeeded) ---\nhi\n");
    }
}
