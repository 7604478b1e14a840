//! openraft's network: one [`PeerClient`] per target, each call one POST over the transport.
//!
//! A peer that cannot be reached is given a growing pause (50 ms doubling to 1 s) before the next
//! attempt, kept per target across openraft's replication streams: openraft backs off within one
//! stream, but a leader that rebuilds its streams would otherwise reconnect to a dead or
//! cut-off peer in a tight loop (the simulation found this: tens of thousands of connects at one
//! instant of a partition).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use linkloom_core::codec;
use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError,
    Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::{BasicNode, OptionalSend, Snapshot, Vote};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::identity::{Identity, WIRE_VERSION};
use crate::rpc::{Envelope, PATH_APPEND, PATH_SNAPSHOT, PATH_SNAPSHOT_PART, PATH_VOTE, UNKNOWN_RAFT_PATH};
use crate::storage::{Part, PartAnswer, Reader, SnapshotData, PART_BYTES};
use crate::transport::{Transport, TransportError};
use crate::types::{SnapshotMeta, TypeConfig};

#[derive(Clone)]
pub(crate) struct NetworkFactory<T> {
    pub(crate) transport: T,
    pub(crate) snapshot_timeout: Duration,
    pub(crate) unreachable: Unreachables,
    pub(crate) identity: Identity,
}

/// When each unreachable peer may be tried again, and the pause that led there.
#[derive(Clone, Default)]
pub(crate) struct Unreachables(Arc<Mutex<BTreeMap<u64, (tokio::time::Instant, Duration)>>>);

const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(1);

impl Unreachables {
    /// How long to wait before calling `target` (zero if it is not known to be unreachable).
    fn wait_before(&self, target: u64) -> Duration {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&target)
            .map_or(Duration::ZERO, |(until, _)| until.saturating_duration_since(tokio::time::Instant::now()))
    }

    fn failed(&self, target: u64) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let pause = map.get(&target).map_or(FIRST_PAUSE, |(_, last)| (*last * 2).min(MAX_PAUSE));
        map.insert(target, (tokio::time::Instant::now() + pause, pause));
    }

    fn succeeded(&self, target: u64) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&target);
    }
}

impl<T: Transport> RaftNetworkFactory<TypeConfig> for NetworkFactory<T> {
    type Network = PeerClient<T>;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Self::Network {
        PeerClient {
            target,
            addr: node.addr.clone(),
            transport: self.transport.clone(),
            snapshot_timeout: self.snapshot_timeout,
            unreachable: self.unreachable.clone(),
            identity: self.identity.clone(),
        }
    }
}

pub(crate) struct PeerClient<T> {
    target: u64,
    addr: String,
    transport: T,
    snapshot_timeout: Duration,
    unreachable: Unreachables,
    identity: Identity,
}

/// How a failed call looks to openraft: unreachable peers are backed off, other failures retried.
enum CallError<E> {
    Transport(TransportError),
    Remote(E),
}

impl<T: Transport> PeerClient<T> {
    async fn call<Req: Serialize, Resp: DeserializeOwned, E: DeserializeOwned>(
        &self,
        path: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError<E>> {
        let envelope = Envelope { wire: WIRE_VERSION, cluster: self.identity.get(), message: request };
        let body = codec::encode(&envelope)
            .map_err(|e| CallError::Transport(TransportError::Io { addr: self.addr.clone(), reason: e.to_string() }))?;
        let wait = self.unreachable.wait_before(self.target);
        if !wait.is_zero() {
            tokio::time::sleep(wait.min(timeout)).await;
            if wait >= timeout {
                let reason = format!("still backing off for {} ms after failed connects", (wait - timeout).as_millis());
                return Err(CallError::Transport(TransportError::Unreachable { addr: self.addr.clone(), reason }));
            }
        }
        let answer = self.transport.post(&self.addr, path, body, timeout.saturating_sub(wait)).await;
        match &answer {
            Err(TransportError::Unreachable { .. }) => self.unreachable.failed(self.target),
            Ok(_) => self.unreachable.succeeded(self.target),
            Err(_) => {}
        }
        let bytes = answer.map_err(CallError::Transport)?;
        let result: Result<Resp, E> = codec::decode(&bytes)
            .map_err(|e| CallError::Transport(TransportError::Io { addr: self.addr.clone(), reason: e.to_string() }))?;
        result.map_err(CallError::Remote)
    }

    /// Sends a snapshot a part at a time (see `storage/transfer.rs`): an opening part, the base
    /// in parts of about [`PART_BYTES`], and a last part with the state, which the follower
    /// answers once it has installed the snapshot.
    async fn send_snapshot(
        &self,
        vote: Vote<u64>,
        meta: SnapshotMeta,
        data: SnapshotData,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>> {
        let local = |e: String| StreamingError::Network(NetworkError::new(&std::io::Error::other(e)));
        let mut reader = match data {
            SnapshotData::Stored(store) => store.reader(&meta).await.map_err(local)?,
            SnapshotData::Whole(bytes) => Reader::whole(&bytes).map_err(local)?,
            SnapshotData::Received { .. } => return Err(local("a snapshot received is not sent on".into())),
        };
        let mut seq = 0;
        loop {
            // The opening part is empty: a peer that does not know parts says so before any of
            // the base is read.
            let entries = if seq == 0 { Vec::new() } else { reader.next(PART_BYTES).await.map_err(local)? };
            let last = seq > 0 && entries.is_empty();
            let part = Part { vote, meta: meta.clone(), seq, entries, state: last.then(|| reader.take_state()) };
            match self.call::<_, PartAnswer, Fatal<u64>>(PATH_SNAPSHOT_PART, &part, self.snapshot_timeout).await {
                Ok(PartAnswer::Installed(response)) => return Ok(response),
                Ok(PartAnswer::Next) if last => {
                    return Err(local(format!(
                        "{} took the last part of snapshot {} but did not install it",
                        self.addr, meta.snapshot_id
                    )))
                }
                Ok(PartAnswer::Next) => seq += 1,
                Err(CallError::Transport(TransportError::Status { status: 400, body, .. }))
                    if seq == 0 && body.contains(UNKNOWN_RAFT_PATH) =>
                {
                    // A peer of the previous release: the snapshot whole, as it expects.
                    let whole = reader.into_whole().await.map_err(local)?;
                    let request = (vote, meta, whole);
                    return self
                        .call::<_, SnapshotResponse<u64>, Fatal<u64>>(PATH_SNAPSHOT, &request, self.snapshot_timeout)
                        .await
                        .map_err(|e| self.streaming_error(e));
                }
                Err(e) => return Err(self.streaming_error(e)),
            }
        }
    }

    fn streaming_error(&self, e: CallError<Fatal<u64>>) -> StreamingError<TypeConfig, Fatal<u64>> {
        match e {
            CallError::Transport(e @ TransportError::Unreachable { .. }) => {
                StreamingError::Unreachable(Unreachable::new(&e))
            }
            CallError::Transport(e) => StreamingError::Network(NetworkError::new(&e)),
            CallError::Remote(e) => StreamingError::RemoteError(RemoteError::new(self.target, e)),
        }
    }

    fn rpc_error<E: std::error::Error>(&self, e: CallError<E>) -> RPCError<u64, BasicNode, E> {
        match e {
            CallError::Transport(e @ TransportError::Unreachable { .. }) => RPCError::Unreachable(Unreachable::new(&e)),
            CallError::Transport(e) => RPCError::Network(NetworkError::new(&e)),
            CallError::Remote(e) => RPCError::RemoteError(RemoteError::new(self.target, e)),
        }
    }
}

impl<T: Transport> RaftNetwork<TypeConfig> for PeerClient<T> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call(PATH_APPEND, &rpc, option.hard_ttl()).await.map_err(|e| self.rpc_error(e))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.call(PATH_VOTE, &rpc, option.hard_ttl()).await.map_err(|e| self.rpc_error(e))
    }

    #[allow(deprecated)]
    async fn install_snapshot(
        &mut self,
        _rpc: openraft::raft::InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        openraft::raft::InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        // Snapshots travel through `full_snapshot`, in parts of our own; openraft's chunked
        // transfer is never used.
        Err(RPCError::Network(NetworkError::new(&std::io::Error::other(
            "chunked snapshot transfer is not supported; use full_snapshot",
        ))))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<u64>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>> {
        let Snapshot { meta, snapshot } = snapshot;
        let send = self.send_snapshot(vote, meta, *snapshot);
        tokio::select! {
            biased;
            closed = cancel => Err(StreamingError::Closed(closed)),
            result = send => result,
        }
    }

    fn backoff(&self) -> Backoff {
        // A restarted peer is picked up again within a fifth of a second.
        Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_peer_waits_longer_each_time_until_it_answers() {
        let peers = Unreachables::default();
        assert_eq!(peers.wait_before(2), Duration::ZERO);
        peers.failed(2);
        assert_eq!(peers.wait_before(2), FIRST_PAUSE);
        peers.failed(2);
        assert_eq!(peers.wait_before(2), FIRST_PAUSE * 2);
        for _ in 0..10 {
            peers.failed(2);
        }
        assert_eq!(peers.wait_before(2), MAX_PAUSE);
        assert_eq!(peers.wait_before(3), Duration::ZERO, "other peers are not affected");
        tokio::time::advance(MAX_PAUSE).await;
        assert_eq!(peers.wait_before(2), Duration::ZERO);
        peers.succeeded(2);
        peers.failed(2);
        assert_eq!(peers.wait_before(2), FIRST_PAUSE, "an answer resets the pause");
    }
}
