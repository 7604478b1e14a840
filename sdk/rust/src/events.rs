//! Events: telling the cluster that something happened, so the workflows whose `event`
//! triggers match it start (each once per event id), and reading back what each event started.

use linkloom_wire::PublishEvent;
pub use linkloom_wire::{Event, EventHook, EventOutcome, EventSource, StartEvent};
use serde_json::Value;

use crate::client::{new_idempotency_key, ApiRequest, Page};
use crate::{Client, Error};

impl Client {
    /// Sends event `name` with `payload`. Every workflow with a matching `event` trigger starts
    /// once for it; the answer lists what each started (or why it skipped).
    ///
    /// `id` makes the send idempotent: the same id again within the cluster's event window (24 h)
    /// starts nothing and answers the first outcome (`repeated` is true). Give the id of the thing
    /// that happened (an order id, a message id), so a caller that runs twice sends it once.
    /// Without one this client draws a random id and keeps it for its own retries, so a send
    /// whose answer was lost still starts each workflow once.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// let event = client
    ///     .send_event("order.created", Some("order-42"), serde_json::json!({"order_id": 42, "region": "eu"}))
    ///     .await?;
    /// for outcome in &event.outcomes {
    ///     println!("{}: {:?}", outcome.workflow_id, outcome.execution_id);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn send_event(&self, name: &str, id: Option<&str>, payload: Value) -> Result<Event, Error> {
        let id = id.map(str::to_string).unwrap_or_else(new_idempotency_key);
        let body = PublishEvent { name: name.to_string(), id: Some(id), payload };
        let request = ApiRequest::post("/api/v1/events".into()).json(&body)?;
        self.call_json(&request, "the event").await
    }

    /// One page of the events the cluster remembers, newest first; `name` filters. Pass the
    /// page's `next_cursor` as `cursor` for the next.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// let page = client.list_events(Some("order.created"), Some(50), None).await?;
    /// for event in page.items {
    ///     println!("{} {} started {}", event.received_at, event.id, event.outcomes.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_events(
        &self,
        name: Option<&str>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<Event>, Error> {
        let mut request = ApiRequest::read("/api/v1/events".into());
        if let Some(name) = name {
            request = request.query("name", name.to_string());
        }
        if let Some(limit) = limit {
            request = request.query("limit", limit.to_string());
        }
        if let Some(cursor) = cursor {
            request = request.query("cursor", cursor.to_string());
        }
        self.call_json(&request, "a page of events").await
    }
}
