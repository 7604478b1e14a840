//! API tokens: create (the secret is in that answer only), list, revoke. Admin only.

use linkloom_wire::NewToken;
pub use linkloom_wire::{CreatedToken, Role, Token};

use crate::client::{segment, ApiRequest};
use crate::{Client, Error};

/// Most pages [`Client::tokens`] follows.
const MAX_TOKEN_PAGES: usize = 1_000;

impl Client {
    /// Creates a token with `role`; a `worker` token may be limited to `queues`. The answer holds
    /// the secret, which no later call shows again.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// use linkloom::Role;
    /// let created = client.create_token("loaders", Role::Worker, Some(vec!["loads".into()])).await?;
    /// println!("LOOM_TOKEN={}", created.token);
    /// # Ok(()) }
    /// ```
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        queues: Option<Vec<String>>,
    ) -> Result<CreatedToken, Error> {
        if role == Role::Unknown {
            return Err(Error::Invalid("a token needs a known role".into()));
        }
        let body = NewToken { name: name.to_string(), role: role.to_string(), queues };
        let request = ApiRequest::post("/api/v1/tokens".into()).json(&body)?;
        self.call_json(&request, "the new token").await
    }

    /// Every token: names, roles, creators; never secrets.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// for t in client.tokens().await? {
    ///     println!("{} ({})", t.name, t.role);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn tokens(&self) -> Result<Vec<Token>, Error> {
        self.all_pages(ApiRequest::read("/api/v1/tokens".into()), "the tokens", MAX_TOKEN_PAGES).await
    }

    /// Revokes a token: every node refuses it from then on.
    pub async fn revoke_token(&self, name: &str) -> Result<(), Error> {
        let request = ApiRequest::new(reqwest::Method::DELETE, format!("/api/v1/tokens/{}", segment(name)));
        self.call(&request).await.map(|_| ())
    }
}
