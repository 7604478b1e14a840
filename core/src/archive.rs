//! The envelope of a backup file: a magic string, a layout version and a SHA-256 checksum in
//! front of the contents, so a damaged or foreign file is refused before anything decodes it.
//! The contents are the replication layer's business (`linkloom_raft::backup`); the envelope
//! lives here so that `loom` can check a backup it downloads without knowing them.
//!
//! ```text
//! "LOOMSNAP"  8 bytes
//! version     1 byte (ARCHIVE_VERSION)
//! sha256      32 bytes, of everything after it
//! contents
//! ```

use sha2::{Digest, Sha256};

/// The first bytes of every backup file.
pub const MAGIC: &[u8; 8] = b"LOOMSNAP";

/// The envelope layout this build writes and reads.
pub const ARCHIVE_VERSION: u8 = 1;

const HEADER_LEN: usize = MAGIC.len() + 1 + 32;

/// Why bytes are not an intact backup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    #[error("not a Link Loom backup (it does not start with {MAGIC:?})")]
    NotABackup,
    #[error("the file ends inside its header ({0} bytes)")]
    Truncated(usize),
    #[error("backup archive version {0} is not one this build reads (it reads version {ARCHIVE_VERSION}): use the release that wrote it")]
    Version(u8),
    #[error("the backup is damaged: its contents hash to {found}, its header says {expected} (copy it again)")]
    Checksum { expected: String, found: String },
}

/// Puts `contents` in an envelope; answers the file and the hex checksum.
pub fn seal(contents: &[u8]) -> (Vec<u8>, String) {
    let digest = Sha256::digest(contents);
    let mut out = Vec::with_capacity(HEADER_LEN + contents.len());
    out.extend_from_slice(MAGIC);
    out.push(ARCHIVE_VERSION);
    out.extend_from_slice(&digest);
    out.extend_from_slice(contents);
    (out, hex(&digest))
}

/// Checks an envelope; answers the contents and the hex checksum.
pub fn open(bytes: &[u8]) -> Result<(&[u8], String), ArchiveError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(ArchiveError::NotABackup);
    }
    if bytes.len() < HEADER_LEN {
        return Err(ArchiveError::Truncated(bytes.len()));
    }
    let version = bytes[MAGIC.len()];
    if version != ARCHIVE_VERSION {
        return Err(ArchiveError::Version(version));
    }
    let expected = hex(&bytes[MAGIC.len() + 1..HEADER_LEN]);
    let contents = &bytes[HEADER_LEN..];
    let found = hex(&Sha256::digest(contents));
    if found != expected {
        return Err(ArchiveError::Checksum { expected, found });
    }
    Ok((contents, found))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_file_opens_and_any_damage_is_named() {
        let (file, sum) = seal(b"state");
        assert_eq!(open(&file).unwrap(), (&b"state"[..], sum.clone()));
        let mut flipped = file.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(open(&flipped), Err(ArchiveError::Checksum { expected, .. }) if expected == sum));
        assert_eq!(open(b"PK\x03\x04 zip"), Err(ArchiveError::NotABackup));
        assert_eq!(open(&file[..20]), Err(ArchiveError::Truncated(20)));
        let mut future = file.clone();
        future[8] = ARCHIVE_VERSION + 1;
        assert_eq!(open(&future), Err(ArchiveError::Version(ARCHIVE_VERSION + 1)));
    }
}
