//! Signed task calls: every HTTP task request can carry
//! `X-Loom-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, so a
//! backend can tell a request from the cluster from anything else that reaches its URL, and a
//! replayed old request from a fresh one. docs/signatures.md has the recipe and test vectors for
//! other languages.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "x-loom-signature";

/// How old a signature a verifier accepts by default (and how far in the future).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is malformed: {0}")]
    Malformed(String),
    #[error("the signature is {age_secs} s away from now; at most {tolerance_secs} s is accepted")]
    Stale { age_secs: i64, tolerance_secs: i64 },
    #[error("the signature does not match the body (wrong secret, or the body was changed)")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Checks `header` against `body` at `now` (Unix seconds); answers the signature's timestamp.
/// Several `v1=` values are accepted (one per secret during a rotation); any match passes. The
/// comparison takes the same time whatever the bytes.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> Result<i64, SignatureError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',').map(str::trim) {
        match part.split_once('=') {
            Some(("t", t)) => {
                timestamp =
                    Some(t.parse::<i64>().map_err(|_| SignatureError::Malformed(format!("t=`{t}` is not a number")))?)
            }
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
    if candidates.iter().any(|c| mac(secret, timestamp, body).verify_slice(c).is_ok()) {
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

    /// Computed independently with Python's `hmac` module (see docs/signatures.md).
    const VECTORS: [(&str, i64, &str, &str); 2] = [
        (
            "whsec_test",
            1_798_761_600,
            r#"{"execution_id":"wf:1","task_id":"t","attempt":1}"#,
            "23154397e4ca512bd680fedeb84c6baa36b6a45365c28b600ceed15cae7d6dcb",
        ),
        ("s3cret", 1_700_000_000, "", "21948100f1d7a89f3338f6b1106fc4f7a702fbe1493b833a3382f80193bde3fe"),
    ];

    #[test]
    fn matches_the_published_test_vectors() {
        for (secret, t, body, hex) in VECTORS {
            assert_eq!(sign(secret.as_bytes(), t, body.as_bytes()), format!("t={t},v1={hex}"));
            assert_eq!(verify(secret.as_bytes(), &format!("t={t},v1={hex}"), body.as_bytes(), t, 300), Ok(t));
        }
    }

    #[test]
    fn tampered_stale_wrong_secret_and_malformed_are_refused() {
        let body = br#"{"input":{"amount":10}}"#;
        let header = sign(b"k", 1_000, body);
        assert_eq!(verify(b"k", &header, body, 1_100, 300), Ok(1_000));
        assert_eq!(verify(b"k", &header, br#"{"input":{"amount":99}}"#, 1_100, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"other", &header, body, 1_100, 300), Err(SignatureError::Mismatch));
        assert_eq!(
            verify(b"k", &header, body, 1_301, 300),
            Err(SignatureError::Stale { age_secs: 301, tolerance_secs: 300 })
        );
        assert!(matches!(verify(b"k", "v1=00", body, 1_000, 300), Err(SignatureError::Malformed(_))));
        assert!(matches!(verify(b"k", "t=1000", body, 1_000, 300), Err(SignatureError::Malformed(_))));
        // During a rotation a request may carry one signature per secret: any match passes.
        let rotated = format!("{header},v1={}", "0".repeat(64));
        assert_eq!(verify(b"k", &rotated, body, 1_000, 300), Ok(1_000));
    }
}
