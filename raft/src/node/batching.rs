//! Proposal batching: commands queued on a node go out in batches (one log entry each), a few in
//! flight at once, each stamped with its origin so a retried batch applies once.

use std::collections::BTreeSet;
use std::sync::Arc;

use linkloom_core::state::Origin;
use linkloom_core::{Command, Response};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::*;
use crate::rpc::{LeaderRequest, LeaderResponse};
use crate::transport::Transport;

/// Commands waiting for the batcher; `propose` waits for room beyond this (back-pressure).
pub(super) const MAX_QUEUED_PROPOSALS: usize = 4096;
/// Commands in one batch (one log entry).
const MAX_BATCH_COMMANDS: usize = 256;
/// Batches proposed at once. While they are in flight, new commands gather into the next batch:
/// under load batches grow, and a lone request still goes out at once.
const MAX_BATCHES_IN_FLIGHT: usize = 4;

/// A command waiting to be batched, and where its answer goes.
pub(super) struct Proposal {
    pub(super) command: Command,
    pub(super) reply: oneshot::Sender<Result<Response, NodeError>>,
}

/// Takes queued proposals in batches and sends each batch to the leader as one log entry.
///
/// Batches are numbered in the order they are formed; each carries the lowest number still
/// waiting for its answer, so the state machine can drop the answers it keeps for retries.
pub(super) async fn batch_loop<T: Transport>(link: Arc<LeaderLink<T>>, mut queued: mpsc::Receiver<Proposal>) {
    let in_flight = Arc::new(Semaphore::new(MAX_BATCHES_IN_FLIGHT));
    let waiting: Arc<std::sync::Mutex<BTreeSet<u64>>> = Arc::default();
    let mut next_seq = 0u64;
    let mut buffer = Vec::with_capacity(MAX_BATCH_COMMANDS);
    loop {
        let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
        if queued.recv_many(&mut buffer, MAX_BATCH_COMMANDS).await == 0 {
            return; // the node was dropped
        }
        let batch: Vec<Proposal> = std::mem::take(&mut buffer);
        let seq = next_seq;
        next_seq += 1;
        let answered_below = {
            let mut waiting = waiting.lock().unwrap_or_else(|p| p.into_inner());
            waiting.insert(seq);
            waiting.first().copied().unwrap_or(seq)
        };
        let origin = Origin { node: link.id, session: link.session, seq, answered_below };
        let (link, waiting) = (link.clone(), waiting.clone());
        tokio::spawn(async move {
            let _permit = permit;
            link.propose_batch(origin, batch).await;
            waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(&seq);
        });
    }
}

impl<T: Transport> LeaderLink<T> {
    async fn propose_batch(&self, origin: Origin, batch: Vec<Proposal>) {
        let (commands, replies): (Vec<Command>, Vec<_>) = batch.into_iter().map(|p| (p.command, p.reply)).unzip();
        let count = commands.len();
        let origin = self.settings.exactly_once.then_some(origin);
        let command = Command::Batch { origin, commands };
        match self.on_leader(LeaderRequest::Propose(Box::new(command))).await {
            Ok(LeaderResponse::Applied(Response::Batch(responses))) if responses.len() == count => {
                for (reply, response) in replies.into_iter().zip(responses) {
                    let _ = reply.send(Ok(response));
                }
            }
            Ok(other) => {
                let e = NodeError::Raft(format!("unexpected answer to a batch of {count}: {other:?}"));
                replies.into_iter().for_each(|r| drop(r.send(Err(e.clone()))));
            }
            Err(e) => replies.into_iter().for_each(|r| drop(r.send(Err(e.clone())))),
        }
    }
}
