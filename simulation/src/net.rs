//! turmoil's network under the node's HTTP stack: a hyper-util connector for the Raft transport,
//! write forwarding, HTTP tasks and the simulated clients, and an axum listener for the API.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;

/// Connects to `host:port` over turmoil's network.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimConnector;

/// A simulated TCP connection, as hyper wants it.
pub struct SimIo(TokioIo<turmoil::net::TcpStream>);

impl tower::Service<http::Uri> for SimConnector {
    type Response = SimIo;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<SimIo>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        Box::pin(async move {
            let host = uri.host().ok_or_else(|| io::Error::other(format!("no host in {uri}")))?.to_string();
            let port = uri.port_u16().unwrap_or(80);
            tracing::trace!(target: "loom_sim::net", "connect {host}:{port} at {:?}", turmoil::sim_elapsed());
            let stream = turmoil::net::TcpStream::connect((host.as_str(), port)).await?;
            Ok(SimIo(TokioIo::new(stream)))
        })
    }
}

impl Connection for SimIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl Read for SimIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl Write for SimIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// axum's listener over turmoil's network.
pub struct SimListener(pub turmoil::net::TcpListener);

impl SimListener {
    pub async fn bind(port: u16) -> io::Result<SimListener> {
        Ok(SimListener(turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?))
    }
}

impl axum::serve::Listener for SimListener {
    type Io = turmoil::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok(pair) => return pair,
                // Accept fails only transiently in the simulation; try again after a tick.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// The nodes' transport: the production HTTP transport over turmoil, plus a link bandwidth the
/// runner can set per (from, to) pair.
///
/// turmoil delays every message alike, whatever its size. Real links do not: a heartbeat crosses
/// one in microseconds while a batch of log entries takes its length over the bandwidth. Some
/// situations only arise from that difference (a restarted leader whose leadership a heartbeat
/// confirms long before the entries it must commit again have crossed); a bandwidth limit makes
/// them reachable on purpose.
#[derive(Clone)]
pub struct SimTransport {
    inner: linkloom_raft::HttpTransport<SimConnector>,
    from: u64,
    world: crate::world::World,
}

impl SimTransport {
    pub fn new(inner: linkloom_raft::HttpTransport<SimConnector>, from: u64, world: crate::world::World) -> Self {
        SimTransport { inner, from, world }
    }
}

impl linkloom_raft::Transport for SimTransport {
    async fn post(
        &self,
        addr: &str,
        path: &str,
        body: Vec<u8>,
        timeout: std::time::Duration,
    ) -> Result<Vec<u8>, linkloom_raft::transport::TransportError> {
        let to = addr.split(':').next().and_then(|host| host.strip_prefix('n')).and_then(|id| id.parse::<u64>().ok());
        let bytes_per_second = to.and_then(|to| self.world.with(|w| w.bandwidth.get(&(self.from, to)).copied()));
        if let Some(rate) = bytes_per_second.filter(|r| *r > 0) {
            let millis = (body.len() as u64).saturating_mul(1_000) / rate;
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
        }
        self.inner.post(addr, path, body, timeout).await
    }
}
