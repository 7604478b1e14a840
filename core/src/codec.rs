//! The one place where values become bytes and back: log entries, snapshots and node-to-node
//! messages all go through here, so a change of format is one file.
//!
//! Every encoding starts with a format version byte; decoding refuses versions it does not know
//! rather than misreading them.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The current format: bincode 2 (standard config) behind a version byte.
/// Version 2 added API tokens, audit trails and `updated_by` to the state; version 3 the tables
/// that apply proposals and client requests exactly once; version 4 per-attempt callback
/// credentials, workers bound to their token, and worker tokens limited to queues.
pub const FORMAT_VERSION: u8 = 4;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("encode failed: {0}")]
    Encode(String),
    #[error("decode failed: {0}")]
    Decode(String),
    #[error("unknown format version {0} (this build reads version {FORMAT_VERSION})")]
    Version(u8),
    #[error("empty input")]
    Empty,
    #[error("decoded value is invalid: {0}")]
    Invalid(String),
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![FORMAT_VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, bincode::config::standard())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(out)
}

/// Decodes the first fields of a value whose remaining fields this build may not know (a newer
/// peer's message): trailing bytes are left unread.
pub fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_with_rest(bytes).map(|(value, _)| value)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match decode_with_rest(bytes)? {
        (value, 0) => Ok(value),
        (_, rest) => Err(CodecError::Decode(format!("{rest} trailing bytes"))),
    }
}

/// The value, and how many bytes after it were left unread.
fn decode_with_rest<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::Version(version));
    }
    let (value, read) = bincode::serde::decode_from_slice(body, bincode::config::standard())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    Ok((value, body.len() - read))
}
