//! The one accept loop of the node's port, which the API, the web UI and Raft share: a slow or
//! greedy client must not starve the cluster's own traffic.
//!
//! - **Caps at accept.** At most `max_connections` in all, at most `max_connections_per_address`
//!   from one IP address, and the last `peer_reserve` of the total only for the cluster's other
//!   members (by the addresses in the membership): a flood fills its own share and the node
//!   keeps talking to its peers. A refused plain-HTTP connection gets a short 503 before it is
//!   closed; each refusal is counted in `/metrics` by the cap that made it.
//! - **Timeouts.** The TLS handshake must finish within `handshake_timeout`, and every request
//!   head within `header_read_timeout` of the moment the server starts waiting for it (on a
//!   kept-alive connection, from the end of the previous answer): a slowloris client, or a
//!   connection that never says anything, is closed. A connection with no traffic in either
//!   direction for `idle_timeout` is closed too (a client that stops reading its answer). Bodies
//!   have their own deadline (api's `read_deadline`). Long-lived answers (worker streams, followed
//!   logs) send pings and keep-alives well within the idle timeout.
//! - **Shutdown.** On the signal the loop stops accepting and open connections get `shutdown_grace` to
//!   finish.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use linkloom_api::HttpMetrics;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;

/// How the server treats connections.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// Of `max_connections`, this many are kept for the cluster's members.
    pub peer_reserve: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub handshake_timeout: Duration,
    /// After the shutdown signal, how long open connections get to finish.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_connections: 4096,
            max_connections_per_address: 256,
            peer_reserve: 64,
            header_read_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(120),
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// The IP addresses of the cluster's members, refreshed from the membership.
#[derive(Debug, Default, Clone)]
pub struct PeerAddresses(Arc<RwLock<HashSet<IpAddr>>>);

impl PeerAddresses {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.read().map(|set| set.contains(&ip)).unwrap_or(false)
    }

    /// Replaces the set with the addresses of `members` (`host:port`; names are resolved).
    pub async fn refresh(&self, members: impl IntoIterator<Item = String>) {
        let mut set = HashSet::new();
        for member in members {
            match member.parse::<SocketAddr>() {
                Ok(addr) => {
                    set.insert(addr.ip());
                }
                Err(_) => {
                    if let Ok(resolved) = tokio::net::lookup_host(member.as_str()).await {
                        set.extend(resolved.map(|a| a.ip()));
                    }
                }
            }
        }
        if let Ok(mut current) = self.0.write() {
            *current = set;
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Full,
    PerAddress,
    PeerReserve,
}

/// Open connections, in all and per address.
#[derive(Debug, Default)]
struct Admission {
    per_address: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it frees its place.
struct Slot {
    admission: Arc<Admission>,
    metrics: Arc<HttpMetrics>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut per = self.admission.per_address.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per.remove(&self.ip);
            }
        }
        self.metrics.connections.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        is_peer: bool,
        options: &ServeOptions,
        metrics: &Arc<HttpMetrics>,
    ) -> Result<Slot, Refusal> {
        let mut per = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        let total = metrics.connections.open.load(Ordering::Relaxed) as usize;
        let mine = per.get(&ip).copied().unwrap_or(0);
        if total >= options.max_connections {
            return Err(Refusal::Full);
        }
        if !is_peer {
            if mine >= options.max_connections_per_address {
                return Err(Refusal::PerAddress);
            }
            if total >= options.max_connections.saturating_sub(options.peer_reserve) {
                return Err(Refusal::PeerReserve);
            }
        }
        *per.entry(ip).or_default() += 1;
        metrics.connections.open.fetch_add(1, Ordering::Relaxed);
        metrics.connections.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(Slot { admission: self.clone(), metrics: metrics.clone(), ip })
    }
}

/// Serves `app` on `listener` (over TLS when `tls` is set) until `shutdown` resolves, then gives
/// open connections `options.shutdown_grace` to finish.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    options: ServeOptions,
    peers: PeerAddresses,
    metrics: Arc<HttpMetrics>,
    shutdown: impl Future<Output = ()>,
) {
    let grace = options.shutdown_grace;
    let graceful = GracefulShutdown::new();
    let admission = Arc::new(Admission::default());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let slot = match admission.admit(peer.ip(), peers.contains(peer.ip()), &options, &metrics) {
            Ok(slot) => slot,
            Err(refusal) => {
                let counter = match refusal {
                    Refusal::Full => &metrics.connections.refused_full,
                    Refusal::PerAddress => &metrics.connections.refused_per_address,
                    Refusal::PeerReserve => &metrics.connections.refused_peer_reserve,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, ?refusal, "connection refused");
                if tls.is_none() {
                    tokio::spawn(refuse(tcp, refusal));
                }
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {e}");
        }
        let service = TowerToHyperService::new(app.clone());
        let (tls, options, metrics, watcher) = (tls.clone(), options.clone(), metrics.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _slot = slot;
            let io: Box<dyn Io> = match tls {
                None => Box::new(tcp),
                Some(acceptor) => match tokio::time::timeout(options.handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => Box::new(stream),
                    Ok(Err(e)) => {
                        metrics.connections.tls_handshake_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%peer, "TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        metrics.connections.tls_handshake_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
            };
            let idle = Idle::new(io, options.idle_timeout);
            let idled = idle.timed_out.clone();
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(options.header_read_timeout).keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(idle), service);
            if let Err(e) = watcher.watch(connection).await {
                if e.is_timeout() {
                    metrics.connections.header_timeouts.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "no complete request head in time: closed");
                } else if idled.load(Ordering::Relaxed) {
                    metrics.connections.idle_timeouts.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "no traffic in time: closed");
                } else {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => tracing::warn!("connections still open {grace:?} after the signal; closing them"),
    }
}

/// A short 503 for a refused plain-HTTP connection, so a client sees why (bounded: a client
/// that does not read it is simply closed).
async fn refuse(mut tcp: TcpStream, refusal: Refusal) {
    let why = match refusal {
        Refusal::Full => "this node has as many connections as it takes",
        Refusal::PerAddress => "this address has as many connections to this node as one address may",
        Refusal::PeerReserve => "the node's remaining connections are kept for the other nodes of the cluster",
    };
    let body = format!(r#"{{"error":{{"code":"too_many_connections","message":"{why}","details":null}}}}"#);
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(answer.as_bytes())).await;
}

/// What a connection's byte stream is: plain TCP or TLS over it.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A byte stream that fails with `TimedOut` once nothing has moved either way for `limit`
/// while someone waits on it.
struct Idle {
    inner: Box<dyn Io>,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
    timed_out: Arc<std::sync::atomic::AtomicBool>,
}

impl Idle {
    fn new(inner: Box<dyn Io>, limit: Duration) -> Idle {
        Idle { inner, limit, deadline: Box::pin(tokio::time::sleep(limit)), timed_out: Arc::default() }
    }

    fn moved(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.limit);
    }

    /// After a `Pending` from the inner stream: an error if the deadline has passed (the
    /// deadline's waker is registered either way).
    fn check(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.timed_out.store(true, Ordering::Relaxed);
                Poll::Ready(std::io::Error::new(std::io::ErrorKind::TimedOut, "no traffic on the connection"))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// What a write of the inner stream returned, with the deadline moved by any progress.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<std::io::Result<usize>>,
    ) -> Poll<std::io::Result<usize>> {
        match written {
            Poll::Ready(result) => {
                if matches!(result, Ok(n) if n > 0) {
                    self.moved();
                }
                Poll::Ready(result)
            }
            Poll::Pending => self.check(cx).map(Err),
        }
    }
}

impl AsyncRead for Idle {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.moved();
                }
                Poll::Ready(result)
            }
            Poll::Pending => self.check(cx).map(Err),
        }
    }
}

impl AsyncWrite for Idle {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, data);
        self.after_write(cx, written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.check(cx).map(Err),
            ready => ready,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn caps_leave_room_for_peers() {
        let options =
            ServeOptions { max_connections: 10, max_connections_per_address: 4, peer_reserve: 3, ..Default::default() };
        let metrics = Arc::new(HttpMetrics::default());
        let admission = Arc::new(Admission::default());
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(admission.admit(ip("10.0.0.9"), false, &options, &metrics).expect("within the per-address cap"));
        }
        assert_eq!(admission.admit(ip("10.0.0.9"), false, &options, &metrics).err(), Some(Refusal::PerAddress));
        for n in 0..3 {
            held.push(admission.admit(ip(&format!("10.0.1.{n}")), false, &options, &metrics).expect("room"));
        }
        // 7 open of 10, 3 kept for peers.
        assert_eq!(admission.admit(ip("10.0.2.1"), false, &options, &metrics).err(), Some(Refusal::PeerReserve));
        for _ in 0..3 {
            held.push(admission.admit(ip("10.0.0.2"), true, &options, &metrics).expect("a peer takes the reserve"));
        }
        assert_eq!(admission.admit(ip("10.0.0.2"), true, &options, &metrics).err(), Some(Refusal::Full));
        held.truncate(3);
        assert_eq!(metrics.connections.open.load(Ordering::Relaxed), 3, "dropped slots are freed");
        assert!(admission.admit(ip("10.0.0.9"), false, &options, &metrics).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_times_out() {
        let (client, server) = tokio::io::duplex(64);
        let mut idle = Idle::new(Box::new(server), Duration::from_secs(5));
        let flag = idle.timed_out.clone();
        let mut buf = [0u8; 8];
        let read = tokio::io::AsyncReadExt::read(&mut idle, &mut buf);
        let err = read.await.expect_err("times out");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(flag.load(Ordering::Relaxed));
        drop(client);
    }
}
