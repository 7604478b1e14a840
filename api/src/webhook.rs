//! Webhook callers proving a shared secret, in the styles the big senders use: GitHub's
//! `X-Hub-Signature-256` and Stripe's `Stripe-Signature` (an HMAC-SHA256 of the exact body bytes,
//! Stripe's with a timestamp against replays), or a plain bearer secret.
//!
//! Secrets live only in the nodes' configuration (`LOOM_WEBHOOK_SECRETS=name=secret,...`); a
//! workflow names one. Every comparison takes the same time wherever the inputs differ.

use std::collections::BTreeMap;

use axum::http::{header, HeaderMap};
use hmac::{Hmac, Mac};
use linkloom_core::archive::hex;
use linkloom_core::spec::WebhookAuth;
use sha2::Sha256;

use crate::auth::constant_time_eq;

/// How far a Stripe-style timestamp may be from the node's clock.
pub const STRIPE_TOLERANCE_SECS: i64 = 300;

/// The named webhook secrets of this node.
#[derive(Default, Clone)]
pub struct WebhookSecrets(BTreeMap<String, String>);

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl WebhookSecrets {
    pub fn new(secrets: BTreeMap<String, String>) -> Self {
        WebhookSecrets(secrets)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// Checks that `headers` prove `secret` for `body` as `auth` says; the error says what is
/// missing or wrong, never anything about the secret.
pub fn verify(auth: WebhookAuth, secret: &str, headers: &HeaderMap, body: &[u8], now_s: i64) -> Result<(), String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    match auth {
        WebhookAuth::Bearer => {
            let presented = text(header::AUTHORIZATION.as_str())
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or("send `Authorization: Bearer <secret>`")?;
            if constant_time_eq(presented.trim().as_bytes(), secret.as_bytes()) {
                Ok(())
            } else {
                Err("the bearer secret does not match".into())
            }
        }
        WebhookAuth::Github => {
            let presented = text("x-hub-signature-256")
                .and_then(|v| v.strip_prefix("sha256="))
                .ok_or("send `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`")?;
            let expected = hex(&mac(secret, &[body]));
            if constant_time_eq(presented.to_ascii_lowercase().as_bytes(), expected.as_bytes()) {
                Ok(())
            } else {
                Err("X-Hub-Signature-256 does not match the body".into())
            }
        }
        WebhookAuth::Stripe => {
            let presented = text("stripe-signature")
                .ok_or("send `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">`")?;
            let mut timestamp = None;
            let mut signatures = Vec::new();
            for part in presented.split(',') {
                match part.trim().split_once('=') {
                    Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
                    Some(("v1", s)) => signatures.push(s.to_ascii_lowercase()),
                    _ => {}
                }
            }
            let t = timestamp.ok_or("Stripe-Signature has no `t=<unix seconds>`")?;
            if (now_s - t).abs() > STRIPE_TOLERANCE_SECS {
                return Err(format!(
                    "Stripe-Signature's timestamp is {}s from this node's clock (at most {STRIPE_TOLERANCE_SECS}s)",
                    now_s - t
                ));
            }
            let expected = hex(&mac(secret, &[t.to_string().as_bytes(), b".", body]));
            // Every candidate is compared, so the time taken does not say which one matched.
            let matched = signatures.iter().fold(false, |m, s| constant_time_eq(s.as_bytes(), expected.as_bytes()) | m);
            if matched {
                Ok(())
            } else if signatures.is_empty() {
                Err("Stripe-Signature has no `v1=` signature".into())
            } else {
                Err("no v1 signature in Stripe-Signature matches the body".into())
            }
        }
    }
}

fn mac(secret: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("any key length"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// A GitHub-style signature header value for `body` (for tests and tools that send webhooks).
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex(&mac(secret, &[body])))
}

/// A Stripe-style signature header value for `body` at `t` (unix seconds).
pub fn stripe_signature(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex(&mac(secret, &[t.to_string().as_bytes(), b".", body])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn github_signatures_verify_and_tampering_does_not() {
        let body = br#"{"ref":"main"}"#;
        let good = headers(&[("x-hub-signature-256", github_signature("s3cret", body))]);
        assert_eq!(verify(WebhookAuth::Github, "s3cret", &good, body, 0), Ok(()));
        assert!(verify(WebhookAuth::Github, "other", &good, body, 0).is_err());
        assert!(verify(WebhookAuth::Github, "s3cret", &good, br#"{"ref":"evil"}"#, 0).is_err());
        let missing = verify(WebhookAuth::Github, "s3cret", &HeaderMap::new(), body, 0).unwrap_err();
        assert!(missing.contains("X-Hub-Signature-256"), "{missing}");
    }

    #[test]
    fn stripe_signatures_verify_within_the_tolerance() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_800_000_000;
        let good = headers(&[("stripe-signature", format!("{},v0=zz", stripe_signature("whsec", now - 10, body)))]);
        assert_eq!(verify(WebhookAuth::Stripe, "whsec", &good, body, now), Ok(()));
        let old = headers(&[("stripe-signature", stripe_signature("whsec", now - 301, body))]);
        assert!(verify(WebhookAuth::Stripe, "whsec", &old, body, now).unwrap_err().contains("timestamp"));
        // A valid signature moved to another timestamp no longer matches.
        let sig = stripe_signature("whsec", now - 10, body);
        let moved = headers(&[("stripe-signature", sig.replace(&format!("t={}", now - 10), &format!("t={now}")))]);
        assert!(verify(WebhookAuth::Stripe, "whsec", &moved, body, now).is_err());
    }

    #[test]
    fn bearer_secrets_compare_whole() {
        let good = headers(&[("authorization", "Bearer tok".to_string())]);
        assert_eq!(verify(WebhookAuth::Bearer, "tok", &good, b"", 0), Ok(()));
        assert!(verify(WebhookAuth::Bearer, "tok2", &good, b"", 0).is_err());
        assert!(verify(WebhookAuth::Bearer, "tok", &HeaderMap::new(), b"", 0).is_err());
    }
}
