//! A recording HTTP proxy in front of one node: it remembers every request's method, path and
//! `Idempotency-Key`, and can lose the answer to one request after the node applied it (the
//! connection closed without a reply), as a node that dies between commit and answer.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Headers copied from the node's answer to the client.
const ANSWER_HEADERS: [&str; 4] = ["content-type", "retry-after", "idempotent-replayed", "x-request-id"];

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    /// The answer was lost on purpose.
    pub dropped: bool,
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    seen: Mutex<Vec<Seen>>,
    /// (method, path suffix) of the request whose answer is lost, until it happened once.
    lose: Mutex<Option<(&'static str, &'static str)>>,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    pub url: String,
    shared: Arc<Shared>,
    stop: Arc<Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// A proxy to `upstream` on a free port of 127.0.0.1.
    pub fn start(upstream: String, lose: Option<(&'static str, &'static str)>) -> Result<Proxy, String> {
        linkloom_harness::install_crypto_provider();
        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
        let http = reqwest::Client::builder().build().map_err(|e| e.to_string())?;
        let shared = Arc::new(Shared { upstream, http, seen: Mutex::default(), lose: Mutex::new(lose) });
        let stop = Arc::new(Notify::new());
        let (thread_shared, thread_stop) = (shared.clone(), stop.clone());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(listener) else { return };
                loop {
                    let accepted = tokio::select! {
                        accepted = listener.accept() => accepted,
                        _ = thread_stop.notified() => return,
                    };
                    let Ok((stream, _)) = accepted else { continue };
                    tokio::spawn(serve(stream, thread_shared.clone()));
                }
            });
        });
        Ok(Proxy { url, shared, stop, thread: Some(thread) })
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

async fn serve(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let lost = Arc::new(Notify::new());
    let signal = lost.clone();
    let service = service_fn(move |request| {
        let (shared, signal) = (shared.clone(), signal.clone());
        async move { Ok::<_, Infallible>(forward(request, shared, signal).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        _ = lost.notified() => {}
    }
}

fn answer(status: u16, body: Bytes, headers: Vec<(String, String)>) -> Response<Body> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(name, value);
    }
    response
        .body(Full::new(body).boxed_unsync())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed_unsync()))
}

async fn forward(request: Request<Incoming>, shared: Arc<Shared>, lost: Arc<Notify>) -> Response<Body> {
    let method = request.method().clone();
    let path_and_query = request.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let path = request.uri().path().to_string();
    let headers = request.headers().clone();
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return answer(400, Bytes::from_static(b"unreadable body"), Vec::new()),
    };
    let lose = {
        let mut rule = shared.lose.lock().unwrap_or_else(|p| p.into_inner());
        let hit = rule.is_some_and(|(m, suffix)| method.as_str() == m && path.ends_with(suffix));
        if hit {
            *rule = None;
        }
        hit
    };
    let mut upstream = shared.http.request(method.clone(), format!("{}{path_and_query}", shared.upstream)).body(body);
    for (name, value) in headers.iter() {
        if !matches!(name.as_str(), "host" | "content-length" | "connection" | "transfer-encoding") {
            upstream = upstream.header(name.clone(), value.clone());
        }
    }
    let result = upstream.send().await;
    shared.seen.lock().unwrap_or_else(|p| p.into_inner()).push(Seen {
        method: method.to_string(),
        path,
        idempotency_key: key,
        dropped: lose,
    });
    let response = match result {
        Ok(response) => response,
        // The node is gone: the client sees its connection closed, as with a dead node.
        Err(_) => {
            lost.notify_one();
            return std::future::pending().await;
        }
    };
    if lose {
        // The node applied it; the answer never reaches the client.
        let _ = response.bytes().await;
        lost.notify_one();
        return std::future::pending().await;
    }
    let status = response.status().as_u16();
    let copied: Vec<(String, String)> = ANSWER_HEADERS
        .iter()
        .filter_map(|name| {
            response.headers().get(*name).and_then(|v| v.to_str().ok()).map(|v| (name.to_string(), v.to_string()))
        })
        .collect();
    let bytes = response.bytes().await.unwrap_or_default();
    answer(status, bytes, copied)
}
