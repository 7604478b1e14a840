//! Signed task calls: every HTTP task request can carry
//! `X-Loom-Signature: t=<unix seconds>,kid=<key name>,v1=<hex HMAC-SHA256>`, so a backend can tell
//! a request from the cluster from anything else that reaches its URL, a replayed old request from
//! a fresh one, and a request whose method, URL or `Idempotency-Key` was changed on the way from
//! the one the cluster sent.
//!
//! The MAC covers, in this order, each followed by a line break (`\n`): the timestamp, the method
//! in capitals, the full URL as the node called it, and the `Idempotency-Key` header (empty if
//! none); then the raw body bytes:
//!
//! ```text
//! HMAC-SHA256(secret, "<t>\n<METHOD>\n<URL>\n<Idempotency-Key>\n" + body)
//! ```
//!
//! `kid` names the key (a name from `LOOM_SIGNING_KEYS`, or `default` for `LOOM_SIGNING_SECRET`),
//! so a backend that knows several keys during a rotation picks the right one. docs/signatures.md
//! has the recipe and test vectors for other languages.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "x-loom-signature";

/// How old a signature a verifier accepts by default (and how far in the future).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// The key id of the node's unnamed signing secret (`LOOM_SIGNING_SECRET`).
pub const DEFAULT_KEY_ID: &str = "default";

/// What a signature covers besides the time: the request as the node sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed<'a> {
    pub method: &'a str,
    pub url: &'a str,
    /// The `Idempotency-Key` header, or `""` if the request has none.
    pub idempotency_key: &'a str,
    pub body: &'a [u8],
}

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is malformed: {0}")]
    Malformed(String),
    #[error("the signature is {age_secs} s away from now; at most {tolerance_secs} s is accepted")]
    Stale { age_secs: i64, tolerance_secs: i64 },
    #[error("the signature names key `{0}`, which this verifier does not have")]
    UnknownKey(String),
    #[error("the signature does not match the request (wrong secret, or the method, URL, key or body was changed)")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, request: &Signed<'_>) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(request.method.to_ascii_uppercase().as_bytes());
    mac.update(b"\n");
    mac.update(request.url.as_bytes());
    mac.update(b"\n");
    mac.update(request.idempotency_key.as_bytes());
    mac.update(b"\n");
    mac.update(request.body);
    mac
}

/// The header value for `request` signed with key `kid` at `timestamp` (Unix seconds).
pub fn sign(kid: &str, secret: &[u8], timestamp: i64, request: &Signed<'_>) -> String {
    let digest = mac(secret, timestamp, request).finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},kid={kid},v1={hex}")
}

/// Checks `header` against `request` at `now` (Unix seconds) with the verifier's `keys`
/// (key id → secret); answers the signature's timestamp. The key is the one the header's `kid`
/// names; a header without `kid` is tried against every key. Several `v1=` values are accepted
/// (any match passes). The comparison takes the same time whatever the bytes.
pub fn verify(
    keys: &[(&str, &[u8])],
    header: &str,
    request: &Signed<'_>,
    now: i64,
    tolerance_secs: i64,
) -> Result<i64, SignatureError> {
    let mut timestamp = None;
    let mut kid = None;
    let mut candidates = Vec::new();
    for part in header.split(',').map(str::trim) {
        match part.split_once('=') {
            Some(("t", t)) => {
                timestamp =
                    Some(t.parse::<i64>().map_err(|_| SignatureError::Malformed(format!("t=`{t}` is not a number")))?)
            }
            Some(("kid", k)) => kid = Some(k),
            Some(("v1", hex)) => candidates.push(decode_hex(hex)?),
            Some(_) => {} // other schemes, for future versions
            None => return Err(SignatureError::Malformed(format!("`{part}` is not key=value"))),
        }
    }
    let timestamp = timestamp.ok_or_else(|| SignatureError::Malformed("no t= timestamp".into()))?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed("no v1= signature".into()));
    }
    let age_secs = now - timestamp;
    if age_secs.abs() > tolerance_secs {
        return Err(SignatureError::Stale { age_secs, tolerance_secs });
    }
    let secrets: Vec<&[u8]> = match kid {
        Some(kid) => {
            let named: Vec<&[u8]> = keys.iter().filter(|(k, _)| *k == kid).map(|(_, s)| *s).collect();
            if named.is_empty() {
                return Err(SignatureError::UnknownKey(kid.to_string()));
            }
            named
        }
        None => keys.iter().map(|(_, s)| *s).collect(),
    };
    let matched =
        secrets.iter().any(|secret| candidates.iter().any(|c| mac(secret, timestamp, request).verify_slice(c).is_ok()));
    if matched {
        Ok(timestamp)
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, SignatureError> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SignatureError::Malformed("v1= must be 64 hex digits".into()));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| SignatureError::Malformed(e.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A published vector: computed independently with Python's `hmac` module
    /// (docs/signatures.md shows how).
    struct Vector {
        kid: &'static str,
        secret: &'static str,
        t: i64,
        method: &'static str,
        url: &'static str,
        idempotency_key: &'static str,
        body: &'static str,
        hex: &'static str,
    }

    const VECTORS: [Vector; 3] = [
        Vector {
            kid: "default",
            secret: "whsec_test",
            t: 1_798_761_600,
            method: "POST",
            url: "https://reports.internal:9000/api/tasks/extract",
            idempotency_key: "daily-report:20270101T000000Z/extract/1",
            body: r#"{"execution_id":"daily-report:20270101T000000Z","task_id":"extract","attempt":1}"#,
            hex: "5afabefdd1b5f56068d95784468e09d530e07360ca8280a45f0248059511921d",
        },
        Vector {
            kid: "billing-2027",
            secret: "s3cret",
            t: 1_700_000_000,
            method: "PUT",
            url: "http://127.0.0.1:8099/x?y=1",
            idempotency_key: "",
            body: "",
            hex: "123d5254389d357d4a40d9f4e9098e7deed522140317eab1b70a1b5e5aecd899",
        },
        Vector {
            kid: "default",
            secret: "k",
            t: 0,
            method: "DELETE",
            url: "http://h/",
            idempotency_key: "wf:1/t/2",
            body: "ünïcode",
            hex: "1b7aa0630e2e7946d088ad7329f33ae27cd6b646eccc33434fa6c043bf9a9a04",
        },
    ];

    fn request(v: &Vector) -> Signed<'_> {
        Signed { method: v.method, url: v.url, idempotency_key: v.idempotency_key, body: v.body.as_bytes() }
    }

    #[test]
    fn matches_the_published_test_vectors() {
        for v in &VECTORS {
            let header = sign(v.kid, v.secret.as_bytes(), v.t, &request(v));
            assert_eq!(header, format!("t={},kid={},v1={}", v.t, v.kid, v.hex), "vector {}", v.kid);
            assert_eq!(verify(&[(v.kid, v.secret.as_bytes())], &header, &request(v), v.t, 300), Ok(v.t));
        }
    }

    #[test]
    fn every_signed_part_matters_and_the_rest_is_refused_by_name() {
        let body = br#"{"input":{"amount":10}}"#;
        let sent = Signed { method: "POST", url: "https://b/pay", idempotency_key: "wf:1/t/1", body };
        let header = sign("k1", b"secret", 1_000, &sent);
        let keys: [(&str, &[u8]); 2] = [("k0", b"old"), ("k1", b"secret")];
        assert_eq!(verify(&keys, &header, &sent, 1_100, 300), Ok(1_000));
        for changed in [
            Signed { method: "PUT", ..sent },
            Signed { url: "https://b/pay?to=mallory", ..sent },
            Signed { idempotency_key: "wf:1/t/2", ..sent },
            Signed { body: br#"{"input":{"amount":99}}"#, ..sent },
        ] {
            assert_eq!(verify(&keys, &header, &changed, 1_100, 300), Err(SignatureError::Mismatch), "{changed:?}");
        }
        assert_eq!(verify(&[("k1", b"other")], &header, &sent, 1_100, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify(&[("k0", b"old")], &header, &sent, 1_100, 300), Err(SignatureError::UnknownKey("k1".into())));
        assert_eq!(
            verify(&keys, &header, &sent, 1_301, 300),
            Err(SignatureError::Stale { age_secs: 301, tolerance_secs: 300 })
        );
        assert!(matches!(verify(&keys, "v1=00", &sent, 1_000, 300), Err(SignatureError::Malformed(_))));
        assert!(matches!(verify(&keys, "t=1000,kid=k1", &sent, 1_000, 300), Err(SignatureError::Malformed(_))));
        // Without kid, every key is tried; several v1= values may ride along in a rotation.
        let no_kid = header.replace(",kid=k1", "");
        assert_eq!(verify(&keys, &no_kid, &sent, 1_000, 300), Ok(1_000));
        let rotated = format!("{header},v1={}", "0".repeat(64));
        assert_eq!(verify(&keys, &rotated, &sent, 1_000, 300), Ok(1_000));
    }
}
