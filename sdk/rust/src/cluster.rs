//! The cluster as one node sees it, its members and tunable limits, and the workers and queues
//! of the worker protocol.

use crate::client::ApiRequest;
use crate::{Client, Error};

pub use linkloom_wire::{ClusterView, LimitValues, Limits, LimitsChange, Member, Queue, QueueList, WorkerInfo};
use linkloom_wire::{Members, NewMember};

/// How long [`Client::snapshot`] waits for its archive (the node allows itself two minutes).
const SNAPSHOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(150);

/// Most pages [`Client::workers`] follows.
const MAX_WORKER_PAGES: usize = 1_000;

impl Client {
    /// The answering node's view of the cluster: leader, term, indexes, members, engine counters.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// let info = client.cluster().await?;
    /// assert!(info.leader_id.is_some(), "no leader yet");
    /// # Ok(()) }
    /// ```
    pub async fn cluster(&self) -> Result<ClusterView, Error> {
        self.call_json(&ApiRequest::read("/api/v1/cluster".into()), "the cluster view").await
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
        self.all_pages(ApiRequest::read("/api/v1/workers".into()), "the workers", MAX_WORKER_PAGES).await
    }

    /// Per queue: ready tasks waiting for a worker, and the workers that serve it.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// for q in client.queues().await? {
    ///     println!("{}: {} waiting, {} worker(s)", q.queue, q.waiting, q.workers);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn queues(&self) -> Result<Vec<Queue>, Error> {
        let list: QueueList = self.call_json(&ApiRequest::read("/api/v1/queues".into()), "the queues").await?;
        Ok(list.items)
    }

    /// A backup of the cluster's state: an archive holding every write acknowledged before the
    /// call, with a SHA-256 checksum, for `loom-node restore`. The answering node takes a fresh
    /// snapshot for it, so this may take a while on a large history (up to two minutes is
    /// allowed). Admin only.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let backup = client.snapshot().await?;
    /// std::fs::write("linkloom.snap", &backup)?;
    /// # Ok(()) }
    /// ```
    pub async fn snapshot(&self) -> Result<bytes::Bytes, Error> {
        let mut request = ApiRequest::new(reqwest::Method::GET, "/api/v1/cluster/snapshot".into());
        request.accept = Some("application/octet-stream");
        request.timeout = Some(SNAPSHOT_TIMEOUT);
        self.call(&request).await
    }

    /// The tunable limits in force, with their ceilings.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// let limits = client.limits().await?;
    /// println!("{} tasks per workflow at most", limits.values.max_tasks_per_workflow);
    /// # Ok(()) }
    /// ```
    pub async fn limits(&self) -> Result<Limits, Error> {
        self.call_json(&ApiRequest::read("/api/v1/cluster/limits".into()), "the limits").await
    }

    /// Changes the limits `change` names (each between 1 and its ceiling); answers the limits now
    /// in force. Admin only.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// let change = linkloom::LimitsChange { max_tasks_per_workflow: Some(50), ..Default::default() };
    /// let limits = client.set_limits(&change).await?;
    /// assert_eq!(limits.values.max_tasks_per_workflow, 50);
    /// # Ok(()) }
    /// ```
    pub async fn set_limits(&self, change: &LimitsChange) -> Result<Limits, Error> {
        let request = ApiRequest::new(reqwest::Method::PUT, "/api/v1/cluster/limits".into()).json(change)?;
        self.call_json(&request, "the limits").await
    }

    /// Adds node `id`, reachable at `addr` (`host:port`), as a learner; answers the members after
    /// it. Admin only.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// client.add_member(4, "10.0.0.4:8080").await?;
    /// client.promote_member(4).await?;
    /// # Ok(()) }
    /// ```
    pub async fn add_member(&self, id: u64, addr: &str) -> Result<Vec<Member>, Error> {
        let body = NewMember { id, addr: addr.to_string() };
        let request = ApiRequest::post("/api/v1/cluster/members".into()).json(&body)?;
        let members: Members = self.call_json(&request, "the members").await?;
        Ok(members.members)
    }

    /// Makes learner `id` a voter once it has the log; answers the members after it. Admin only.
    pub async fn promote_member(&self, id: u64) -> Result<Vec<Member>, Error> {
        let request = ApiRequest::post(format!("/api/v1/cluster/members/{id}/promote"));
        let members: Members = self.call_json(&request, "the members").await?;
        Ok(members.members)
    }

    /// Removes member `id`; answers the members after it. Admin only.
    pub async fn remove_member(&self, id: u64) -> Result<Vec<Member>, Error> {
        let request = ApiRequest::new(reqwest::Method::DELETE, format!("/api/v1/cluster/members/{id}"));
        let members: Members = self.call_json(&request, "the members").await?;
        Ok(members.members)
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
        assert_eq!(info.engine.map(|e| e.ticks_fired), Some(3));
        let workers = client.workers().await.unwrap();
        assert_eq!(workers.len(), 1);
        assert_eq!((workers[0].id.as_str(), workers[0].concurrency, workers[0].running), ("w-1", 4, 1));
        assert_eq!(workers[0].queues, ["loaders"]);
    }
}
