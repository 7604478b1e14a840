//! openraft's network: one [`PeerClient`] per target, each call one POST over the transport.

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

use crate::rpc::{PATH_APPEND, PATH_SNAPSHOT, PATH_VOTE};
use crate::transport::{Transport, TransportError};
use crate::types::TypeConfig;

#[derive(Clone)]
pub(crate) struct NetworkFactory<T> {
    pub(crate) transport: T,
    pub(crate) snapshot_timeout: Duration,
}

impl<T: Transport> RaftNetworkFactory<TypeConfig> for NetworkFactory<T> {
    type Network = PeerClient<T>;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Self::Network {
        PeerClient {
            target,
            addr: node.addr.clone(),
            transport: self.transport.clone(),
            snapshot_timeout: self.snapshot_timeout,
        }
    }
}

pub(crate) struct PeerClient<T> {
    target: u64,
    addr: String,
    transport: T,
    snapshot_timeout: Duration,
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
        let body = codec::encode(request)
            .map_err(|e| CallError::Transport(TransportError::Io { addr: self.addr.clone(), reason: e.to_string() }))?;
        let bytes = self.transport.post(&self.addr, path, body, timeout).await.map_err(CallError::Transport)?;
        let result: Result<Resp, E> = codec::decode(&bytes)
            .map_err(|e| CallError::Transport(TransportError::Io { addr: self.addr.clone(), reason: e.to_string() }))?;
        result.map_err(CallError::Remote)
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
        // Snapshots travel whole through `full_snapshot`; chunked transfer is never used.
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
        let request = (vote, snapshot.meta, *snapshot.snapshot);
        let call = self.call::<_, SnapshotResponse<u64>, Fatal<u64>>(PATH_SNAPSHOT, &request, self.snapshot_timeout);
        tokio::select! {
            biased;
            closed = cancel => Err(StreamingError::Closed(closed)),
            result = call => result.map_err(|e| match e {
                CallError::Transport(e @ TransportError::Unreachable { .. }) => StreamingError::Unreachable(Unreachable::new(&e)),
                CallError::Transport(e) => StreamingError::Network(NetworkError::new(&e)),
                CallError::Remote(e) => StreamingError::RemoteError(RemoteError::new(self.target, e)),
            }),
        }
    }

    fn backoff(&self) -> Backoff {
        // A restarted peer is picked up again within a fifth of a second.
        Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}
