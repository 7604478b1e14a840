//! The cluster as one node sees it, and the workers connected to it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::ApiRequest;
use crate::{Client, Error};

/// One node's view of the cluster (`GET /api/v1/cluster`).
///
/// ```no_run
/// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
/// let info = client.cluster().await?;
/// println!("node {} sees leader {:?} in term {}", info.node_id, info.leader_id, info.term);
/// for member in &info.members {
///     println!("  {} at {} (voter: {})", member.id, member.addr, member.voter);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ClusterInfo {
    /// The node that answered.
    pub node_id: u64,
    /// The leader it knows of, if any.
    pub leader_id: Option<u64>,
    /// The Raft term.
    pub term: u64,
    /// Its Raft role, e.g. `Leader`, `Follower`, `Learner`, `Candidate`.
    pub state: String,
    /// Index of its last log entry.
    pub last_log_index: Option<u64>,
    /// Index of the last entry it applied.
    pub last_applied: Option<u64>,
    /// Index its latest snapshot covers.
    pub snapshot_index: Option<u64>,
    /// Index up to which its log was purged behind the snapshot.
    pub purged_index: Option<u64>,
    /// Log entries it keeps on disk.
    pub log_entries_on_disk: Option<u64>,
    /// Every member of the cluster.
    pub members: Vec<Member>,
    /// The engine's counters (`actor_restarts`, `ticks_fired`, ...), as JSON.
    pub engine: Value,
}

/// One member of the cluster.
///
/// ```
/// let member: linkloom::Member = serde_json::from_str(r#"{"id": 2, "addr": "127.0.0.1:8082", "voter": true}"#)?;
/// assert!(member.voter);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Member {
    /// Its node id.
    pub id: u64,
    /// Its `host:port`.
    pub addr: String,
    /// Votes (a learner does not).
    pub voter: bool,
}

/// A worker connected to the cluster (`GET /api/v1/workers`).
///
/// ```no_run
/// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
/// for worker in client.workers().await? {
///     println!("{} on node {:?}: {}/{} busy on {:?}", worker.id, worker.node_id, worker.running, worker.concurrency, worker.queues);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct WorkerInfo {
    /// The worker's id.
    pub id: String,
    /// The node it is connected to.
    pub node_id: Option<u64>,
    /// The queues it takes tasks from.
    pub queues: Vec<String>,
    /// Tasks it runs at once at most.
    pub concurrency: u32,
    /// Tasks it runs now.
    pub running: u32,
    /// RFC 3339: when it connected.
    pub connected_at: Option<String>,
    /// RFC 3339: when it was last heard from.
    pub last_seen_at: Option<String>,
}

impl Client {
    /// The answering node's view of the cluster: leader, term, indexes, members, engine counters.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// let info = client.cluster().await?;
    /// assert!(info.leader_id.is_some(), "no leader yet");
    /// # Ok(()) }
    /// ```
    pub async fn cluster(&self) -> Result<ClusterInfo, Error> {
        self.call_json(&ApiRequest::get("/api/v1/cluster".into()), "the cluster view").await
    }

    /// The workers connected to the cluster.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// let busy = client.workers().await?.iter().filter(|w| w.running > 0).count();
    /// println!("{busy} busy worker(s)");
    /// # Ok(()) }
    /// ```
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>, Error> {
        #[derive(Deserialize)]
        struct Items {
            #[serde(default)]
            items: Vec<WorkerInfo>,
        }
        let items: Items = self.call_json(&ApiRequest::get("/api/v1/workers".into()), "the workers").await?;
        Ok(items.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::serve;
    use axum::routing::get;
    use axum::Router;
    use serde_json::json;

    #[tokio::test]
    async fn reads_the_cluster_and_its_workers() {
        let router = Router::new()
            .route(
                "/api/v1/cluster",
                get(|| async {
                    axum::Json(json!({
                        "node_id": 1, "leader_id": 2, "term": 7, "state": "Follower", "last_log_index": 40,
                        "last_applied": 40, "snapshot_index": null, "purged_index": null, "log_entries_on_disk": 41,
                        "members": [{"id": 1, "addr": "127.0.0.1:8081", "voter": true},
                                    {"id": 2, "addr": "127.0.0.1:8082", "voter": true}],
                        "engine": {"actor_restarts": 0, "ticks_fired": 3}
                    }))
                }),
            )
            .route(
                "/api/v1/workers",
                get(|| async {
                    axum::Json(json!({"items": [{"id": "w-1", "node_id": 2, "queues": ["loaders"], "concurrency": 4,
                        "running": 1, "connected_at": "2026-01-01T00:00:00Z", "last_seen_at": "2026-01-01T00:00:05Z",
                        "session": "from-a-newer-server"}]}))
                }),
            );
        let client = Client::new([serve(router).await]).unwrap();
        let info = client.cluster().await.unwrap();
        assert_eq!((info.node_id, info.leader_id, info.term), (1, Some(2), 7));
        assert_eq!(info.members.len(), 2);
        assert_eq!(info.engine["ticks_fired"], 3);
        let workers = client.workers().await.unwrap();
        assert_eq!(workers.len(), 1);
        assert_eq!((workers[0].id.as_str(), workers[0].concurrency, workers[0].running), ("w-1", 4, 1));
        assert_eq!(workers[0].queues, ["loaders"]);
    }
}
