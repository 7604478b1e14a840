//! Signed task calls: the `X-Loom-Signature` scheme, for HTTP-task backends.
//!
//! A node with a signing key sends every HTTP task request with
//! `X-Loom-Signature: t=<unix seconds>,kid=<key name>,v1=<hex HMAC-SHA256>` over the timestamp, the
//! method, the full URL, the `Idempotency-Key` header and the raw body (docs/signatures.md). A
//! [`Verifier`] holds the keys a backend accepts (several during a rotation) and checks a request
//! against them; [`sign`] and [`verify`] are the primitives it is built on.
//!
//! ```
//! use linkloom::signature::{sign, Signed, Verifier};
//! let request = Signed { method: "POST", url: "https://b.example/extract", idempotency_key: "wf:1/t/1", body: b"{}" };
//! let header = sign("2027-01", b"new secret", 1_700_000_000, &request); // what the node sends
//! let verifier = Verifier::new().key("2026-07", "old secret").key("2027-01", "new secret");
//! assert_eq!(verifier.verify_at(Some(&header), &request, 1_700_000_100)?, 1_700_000_000);
//! let moved = Signed { url: "https://b.example/refund", ..request };
//! assert!(verifier.verify_at(Some(&header), &moved, 1_700_000_100).is_err());
//! # Ok::<(), linkloom::Error>(())
//! ```

pub use linkloom_wire::signature::{
    sign, verify, SignatureError, Signed, DEFAULT_KEY_ID, DEFAULT_TOLERANCE_SECS, SIGNATURE_HEADER,
};

use crate::Error;

/// The keys a backend accepts and how old a signature may be.
///
/// Keys are named as on the nodes: `default` for `LOOM_SIGNING_SECRET`, the name before `=` in
/// `LOOM_SIGNING_KEYS`. During a rotation, hold the old and the new key: a request verifies if it
/// matches the key its `kid` names.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<(String, Vec<u8>)>,
    tolerance_secs: i64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key names only: secrets stay out of logs.
        let names: Vec<&str> = self.keys.iter().map(|(kid, _)| kid.as_str()).collect();
        f.debug_struct("Verifier").field("keys", &names).field("tolerance_secs", &self.tolerance_secs).finish()
    }
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier::new()
    }
}

impl Verifier {
    /// No keys yet (it refuses everything) and a tolerance of [`DEFAULT_TOLERANCE_SECS`].
    ///
    /// ```
    /// let verifier = linkloom::signature::Verifier::new();
    /// assert!(verifier.verify(None, &linkloom::signature::Signed { method: "POST", url: "u", idempotency_key: "", body: b"" }).is_err());
    /// ```
    pub fn new() -> Verifier {
        Verifier { keys: Vec::new(), tolerance_secs: DEFAULT_TOLERANCE_SECS }
    }

    /// Accepts signatures made with `secret` under the name `kid`.
    ///
    /// ```
    /// let verifier = linkloom::signature::Verifier::new().key("default", std::env::var("LOOM_SIGNING_SECRET").unwrap_or_default());
    /// ```
    pub fn key(mut self, kid: impl Into<String>, secret: impl AsRef<[u8]>) -> Verifier {
        self.keys.push((kid.into(), secret.as_ref().to_vec()));
        self
    }

    /// How far from now (either way) a signature's time may be, in seconds.
    ///
    /// ```
    /// let verifier = linkloom::signature::Verifier::new().key("default", "s").tolerance_secs(60);
    /// ```
    pub fn tolerance_secs(mut self, secs: i64) -> Verifier {
        self.tolerance_secs = secs.max(0);
        self
    }

    /// Checks the `X-Loom-Signature` header (`None` if the request had none) against `request`,
    /// now; answers the signature's time. Pass the method and full URL the node called (your
    /// public URL, not one rewritten by a proxy), the `Idempotency-Key` header as received (`""`
    /// if none) and the raw body bytes, before any JSON parsing.
    pub fn verify(&self, header: Option<&str>, request: &Signed<'_>) -> Result<i64, Error> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        self.verify_at(header, request, now)
    }

    /// [`Verifier::verify`] at `now` (Unix seconds).
    pub fn verify_at(&self, header: Option<&str>, request: &Signed<'_>, now: i64) -> Result<i64, Error> {
        let header = header.ok_or_else(|| Error::Invalid(format!("no {SIGNATURE_HEADER} header")))?;
        let keys: Vec<(&str, &[u8])> = self.keys.iter().map(|(k, s)| (k.as_str(), s.as_slice())).collect();
        verify(&keys, header, request, now, self.tolerance_secs).map_err(|e| Error::Invalid(e.to_string()))
    }
}
