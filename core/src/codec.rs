//! The one place where values become bytes and back: log entries, snapshots and node-to-node
//! messages all go through here, so a change of format is one file.
//!
//! Every encoding starts with a format version byte; decoding refuses versions it does not know
//! rather than misreading them.
//!
//! **Writing the oldest format that holds the value.** A rolling upgrade runs the previous
//! release beside this one: whatever this build writes (log entries, snapshots, messages) must
//! stay readable by it until a feature it lacks is used. So a field added in a newer format is an
//! [`Added`] field: while it holds its default it is not written at all, and the value goes out
//! in the oldest format ([`OLDEST_FORMAT`]), byte for byte what the previous release wrote; only a
//! value that uses the new field is written in [`FORMAT_VERSION`]. Reading an older format gives
//! every added field its default. New enum variants need nothing: the previous release's values
//! never hold them, and a previous release that meets one refuses to decode it (an unknown
//! variant) rather than misreading it.

use std::cell::Cell;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The current format: bincode 2 (standard config) behind a version byte.
/// Version 2 added API tokens, audit trails and `updated_by` to the state; version 3 the tables
/// that apply proposals and client requests exactly once; version 4 per-attempt callback
/// credentials, workers bound to their token, and worker tokens limited to queues (the format of
/// release 0.1.0); version 5 workflow triggers, events, and the event an execution started from
/// (every field of it an [`Added`] field, so version 4 is still written while they are unused).
pub const FORMAT_VERSION: u8 = 5;

/// The oldest format this build reads and writes: release 0.1.0's.
pub const OLDEST_FORMAT: u8 = 4;

thread_local! {
    /// The format being written or read on this thread (encoding and decoding never yield).
    static FORMAT: Cell<u8> = const { Cell::new(FORMAT_VERSION) };
    /// Set when an [`Added`] field could not be written in the format being tried.
    static NEEDS_NEWER: Cell<bool> = const { Cell::new(false) };
}

/// Sets the thread's format for one encoding or decoding, restoring the previous one after (an
/// encoding may nest another).
struct FormatScope {
    previous: u8,
    previous_needs: bool,
}

impl FormatScope {
    fn enter(version: u8) -> FormatScope {
        let scope = FormatScope { previous: FORMAT.get(), previous_needs: NEEDS_NEWER.get() };
        FORMAT.set(version);
        NEEDS_NEWER.set(false);
        scope
    }

    fn needs_newer(&self) -> bool {
        NEEDS_NEWER.get()
    }
}

impl Drop for FormatScope {
    fn drop(&mut self) {
        FORMAT.set(self.previous);
        NEEDS_NEWER.set(self.previous_needs);
    }
}

/// A field added in format 5 (see the module docs): not written, and read as its default, in an
/// older format. Transparent in JSON and YAML. `Deref`s to the value.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Added<T>(pub T);

/// The format [`Added`] fields appeared in.
const ADDED_IN: u8 = 5;

impl<T> std::ops::Deref for Added<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Added<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> From<T> for Added<T> {
    fn from(value: T) -> Self {
        Added(value)
    }
}

impl<T: Serialize + Default + PartialEq> Serialize for Added<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() || FORMAT.get() >= ADDED_IN {
            return self.0.serialize(serializer);
        }
        if self.0 == T::default() {
            // A unit is zero bytes in bincode: the value reads back as the older format wrote it.
            return serializer.serialize_unit();
        }
        NEEDS_NEWER.set(true);
        Err(serde::ser::Error::custom(format!("this value needs format {ADDED_IN}")))
    }
}

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Added<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() && FORMAT.get() < ADDED_IN {
            return Ok(Added(T::default()));
        }
        T::deserialize(deserializer).map(Added)
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Added<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }

    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("encode failed: {0}")]
    Encode(String),
    #[error("decode failed: {0}")]
    Decode(String),
    #[error("unknown format version {0} (this build reads versions {OLDEST_FORMAT} to {FORMAT_VERSION})")]
    Version(u8),
    #[error("empty input")]
    Empty,
    #[error("decoded value is invalid: {0}")]
    Invalid(String),
}

/// Encodes `value` in the oldest format that holds it (see the module docs).
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    match encode_as(value, OLDEST_FORMAT) {
        Err(Retry::Newer) => encode_as(value, FORMAT_VERSION).map_err(Retry::into_error),
        other => other.map_err(Retry::into_error),
    }
}

enum Retry {
    Newer,
    Failed(CodecError),
}

impl Retry {
    fn into_error(self) -> CodecError {
        match self {
            Retry::Newer => CodecError::Encode(format!("a value needs a format newer than {FORMAT_VERSION}")),
            Retry::Failed(e) => e,
        }
    }
}

fn encode_as<T: Serialize>(value: &T, version: u8) -> Result<Vec<u8>, Retry> {
    let scope = FormatScope::enter(version);
    let mut out = vec![version];
    match bincode::serde::encode_into_std_write(value, &mut out, bincode::config::standard()) {
        Ok(_) => Ok(out),
        Err(_) if scope.needs_newer() => Err(Retry::Newer),
        Err(e) => Err(Retry::Failed(CodecError::Encode(e.to_string()))),
    }
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
    if !(OLDEST_FORMAT..=FORMAT_VERSION).contains(&version) {
        return Err(CodecError::Version(version));
    }
    let _scope = FormatScope::enter(version);
    let (value, read) = bincode::serde::decode_from_slice(body, bincode::config::standard())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    Ok((value, body.len() - read))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Before {
        a: u32,
        b: String,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct After {
        a: u32,
        added: Added<Vec<u32>>,
        b: String,
    }

    #[test]
    fn an_unused_added_field_writes_the_older_format_byte_for_byte() {
        let before = encode(&Before { a: 7, b: "x".into() }).unwrap();
        let after = encode(&After { a: 7, added: Added(Vec::new()), b: "x".into() }).unwrap();
        assert_eq!(before[0], OLDEST_FORMAT);
        assert_eq!(after, before, "a previous release reads it as its own");
        // And what the previous release wrote reads with the added field at its default.
        assert_eq!(decode::<After>(&before).unwrap(), After { a: 7, added: Added(Vec::new()), b: "x".into() });
    }

    #[test]
    fn a_used_added_field_writes_the_current_format() {
        let value = After { a: 7, added: Added(vec![1, 2]), b: "x".into() };
        let bytes = encode(&value).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<After>(&bytes).unwrap(), value);
        // Nested encodings keep their own format.
        let outer = (encode(&Before { a: 1, b: String::new() }).unwrap(), value);
        let bytes = encode(&outer).unwrap();
        assert_eq!(decode::<(Vec<u8>, After)>(&bytes).unwrap(), outer);
    }

    #[test]
    fn unknown_formats_are_refused() {
        let mut bytes = encode(&Before { a: 1, b: String::new() }).unwrap();
        bytes[0] = FORMAT_VERSION + 1;
        assert!(matches!(decode::<Before>(&bytes), Err(CodecError::Version(v)) if v == FORMAT_VERSION + 1));
        bytes[0] = OLDEST_FORMAT - 1;
        assert!(matches!(decode::<Before>(&bytes), Err(CodecError::Version(_))));
    }

    #[test]
    fn added_fields_are_transparent_in_json() {
        let value = After { a: 1, added: Added(vec![3]), b: "y".into() };
        let text = serde_json::to_string(&value).unwrap();
        assert_eq!(text, r#"{"a":1,"added":[3],"b":"y"}"#);
        assert_eq!(serde_json::from_str::<After>(&text).unwrap(), value);
    }
}
