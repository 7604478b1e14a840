//! API tokens: who may call the API, and with which role.
//!
//! The state keeps only a token's name, role and the SHA-256 of its secret: a node's disk, a
//! snapshot or a log entry never holds anything that lets its reader act as the token. The secret
//! is drawn by the node that creates the token (randomness stays out of `apply`), shown once to
//! the caller, and from then on recognised by its hash. Tokens are 256-bit random strings, so a
//! fast hash is enough: there is no low-entropy password to brute-force.

use serde::{Deserialize, Serialize};

use super::{Rejection, Response, State};
use crate::limits;

/// What a token may do. Roles are ordered for the API: `admin` may do everything, `operator`
/// everything a `viewer` may plus writes to workflows and executions; `worker` is apart (the
/// worker protocol and task callbacks only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Operator,
    Viewer,
    Worker,
    /// Sends events only: for the services whose happenings start workflows.
    Publisher,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::Operator, Role::Viewer, Role::Worker, Role::Publisher];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Worker => "worker",
            Role::Publisher => "publisher",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    pub name: String,
    pub role: Role,
    /// Lowercase hex SHA-256 of the secret.
    pub hash: String,
    pub created_at_ms: i64,
    pub created_by: Option<String>,
    /// A `worker` token limited to these queues (`None`: any queue).
    #[serde(default)]
    pub queues: Option<Vec<String>>,
}

/// What a `CreateToken` asks for.
pub(super) struct NewToken {
    pub(super) name: String,
    pub(super) role: Role,
    pub(super) hash: String,
    pub(super) queues: Option<Vec<String>>,
}

/// The name the node's bootstrap token (`LOOM_ADMIN_TOKEN`) acts under; no stored token may take it.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// Checks a token name: 1 to 64 characters of `A-Z a-z 0-9 . _ -`, not the bootstrap name.
pub fn validate_token_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > limits::MAX_TOKEN_NAME_BYTES {
        return Err(format!("token name must be 1 to {} characters", limits::MAX_TOKEN_NAME_BYTES));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("token name `{name}` has `{bad}`; use letters, digits, `.`, `_` and `-`"));
    }
    if name == BOOTSTRAP_ADMIN {
        return Err(format!("token name `{BOOTSTRAP_ADMIN}` is reserved for LOOM_ADMIN_TOKEN"));
    }
    Ok(())
}

/// How a secret is kept: its SHA-256 in lowercase hex (API tokens, attempts' callback tokens).
/// Secrets here are 256-bit random strings, so a fast hash is enough.
pub fn secret_hash(secret: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn is_sha256_hex(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl State {
    pub(super) fn create_token(&mut self, token: NewToken, actor: Option<String>, now: i64) -> Response {
        let NewToken { name, role, hash, mut queues } = token;
        if let Some(list) = &mut queues {
            if role != Role::Worker {
                return Response::Rejected(Rejection::InvalidToken(format!(
                    "only worker tokens are limited to queues; this one is {role}"
                )));
            }
            list.sort();
            list.dedup();
            if list.is_empty() || list.len() > limits::MAX_QUEUES_PER_WORKER {
                return Response::Rejected(Rejection::InvalidToken(format!(
                    "a token's queue list holds 1 to {} queues",
                    limits::MAX_QUEUES_PER_WORKER
                )));
            }
            if let Some(bad) = list.iter().find(|q| !crate::ids::is_slug(q)) {
                return Response::Rejected(Rejection::InvalidToken(format!(
                    "`{bad}` is not a valid queue name: {}",
                    crate::ids::SLUG_RULE
                )));
            }
        }
        if let Err(m) = validate_token_name(&name) {
            return Response::Rejected(Rejection::InvalidToken(m));
        }
        if !is_sha256_hex(&hash) {
            return Response::Rejected(Rejection::InvalidToken("hash must be 64 lowercase hex digits".into()));
        }
        if self.tokens.contains_key(&name) {
            return Response::Rejected(Rejection::TokenExists(name));
        }
        if self.token_hashes.contains_key(&hash) {
            // Only a proposer reusing a secret gets here; refuse rather than alias two names.
            return Response::Rejected(Rejection::InvalidToken("a token with this secret exists".into()));
        }
        if self.tokens.len() >= limits::MAX_TOKENS {
            return Response::Rejected(Rejection::TooLarge {
                what: "the token list".into(),
                size: self.tokens.len() + 1,
                limit: limits::MAX_TOKENS,
            });
        }
        self.token_hashes.insert(hash.clone(), name.clone());
        let entry = TokenEntry { name: name.clone(), role, hash, created_at_ms: now, created_by: actor, queues };
        self.tokens.insert(name.clone(), entry);
        Response::TokenCreated { name, role }
    }

    pub(super) fn revoke_token(&mut self, name: String) -> Response {
        match self.tokens.remove(&name) {
            None => Response::Rejected(Rejection::TokenNotFound(name)),
            Some(entry) => {
                self.token_hashes.remove(&entry.hash);
                Response::TokenRevoked { name }
            }
        }
    }

    /// Stored tokens in name order.
    pub fn tokens(&self) -> impl Iterator<Item = &TokenEntry> {
        self.tokens.values()
    }

    /// The token whose secret hashes to `hash`.
    pub fn token_by_hash(&self, hash: &str) -> Option<&TokenEntry> {
        self.token_hashes.get(hash).and_then(|name| self.tokens.get(name))
    }

    pub(super) fn check_token_index(&self) -> Result<(), String> {
        if self.tokens.len() != self.token_hashes.len() {
            return Err(format!("{} tokens but {} token hashes", self.tokens.len(), self.token_hashes.len()));
        }
        for (hash, name) in &self.token_hashes {
            match self.tokens.get(name) {
                Some(t) if &t.hash == hash && &t.name == name => {}
                _ => return Err(format!("token hash index points {name} at the wrong entry")),
            }
        }
        Ok(())
    }
}
