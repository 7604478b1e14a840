//! The node process guards its own secrets before it starts any thread or task.
//!
//! A shell task is someone else's code on this machine. Its own environment is clean (see
//! actors' shell executor), but a process running as the node's user could still read
//! `/proc/<node pid>/environ` (the node's *initial* environment block, which `unsetenv` does not
//! touch) and anyone can read `/proc/<node pid>/cmdline`. So, once the configuration is read:
//!
//! - the values of secret variables (`LOOM_ADMIN_TOKEN`, `LOOM_CLUSTER_SECRET`,
//!   `LOOM_SIGNING_SECRET`, `LOOM_SIGNING_KEYS`, `LOOM_WEBHOOK_SECRETS`, `LOOM_OTLP_HEADERS`) are
//!   overwritten in place in the initial environment block, and secret flags' values on the
//!   command line likewise; the result is checked by reading `/proc/self/environ` and `/proc/self/cmdline` back;
//! - the process is made non-dumpable, so its `/proc` files (environ, mem, maps) belong to root
//!   and another process of the same user can neither read them nor attach a debugger, and no
//!   core dump holds a secret;
//! - the umask becomes 077 and the data directory is made private, so nothing the node writes
//!   (the Raft log, snapshots: every workflow's params and outputs) is readable by the task user.
//!
//! The `*_FILE` settings keep secrets out of the environment altogether. What a task running as
//! the node's own user can still do (read the data directory, signal the node) is in
//! docs/security.md; by default a node running as root runs tasks as `nobody`.

use std::path::Path;

/// Environment variables and flags whose values are secrets.
const SECRET_VARIABLES: [&str; 6] = [
    "LOOM_ADMIN_TOKEN",
    "LOOM_CLUSTER_SECRET",
    "LOOM_SIGNING_SECRET",
    "LOOM_SIGNING_KEYS",
    "LOOM_WEBHOOK_SECRETS",
    "LOOM_OTLP_HEADERS",
];
const SECRET_FLAGS: [&str; 6] =
    ["--admin-token", "--cluster-secret", "--signing-secret", "--signing-keys", "--webhook-secrets", "--otlp-headers"];

/// Shorter values are not searched for in the raw blocks (they could match innocent text); they
/// are still scrubbed where they stand, by variable or flag name.
const MIN_SEARCHED_SECRET: usize = 8;

/// What [`protect`] did, for the start-up log.
#[derive(Debug, Default)]
pub struct Protection {
    pub scrubbed_variables: usize,
    pub scrubbed_arguments: usize,
    /// Where a secret could still be read after scrubbing (empty: nowhere).
    pub leaks: Vec<String>,
    pub not_dumpable: bool,
}

/// Scrubs `secrets` from this process's initial environment and command line, makes it
/// non-dumpable, tightens the umask and makes `data_dir` private (traversable by others only if
/// tasks run as another user, so that user reaches its attempt directory under `work/`).
///
/// Call before starting any thread: nothing may read the environment while it is rewritten.
pub fn protect(secrets: &[&str], data_dir: &Path, tasks_as_other_user: bool) -> anyhow::Result<Protection> {
    let mut report = Protection::default();
    // SAFETY: umask(2) cannot fail; it affects files this process creates from now on.
    unsafe { libc::umask(0o077) };
    let regions = own_regions();
    if let Some((args, env)) = regions {
        // SAFETY: the ranges come from the kernel's record of this process's initial argument and
        // environment blocks, which live in its own writable stack memory for its whole life. No
        // other thread runs yet, and Rust code holds no reference into them: std copies what it
        // reads from them.
        unsafe {
            report.scrubbed_variables = scrub_environment(region(env));
            report.scrubbed_arguments = scrub_arguments(region(args));
        }
    }
    for name in SECRET_VARIABLES {
        // Also out of libc's environ table (children would inherit a scrubbed value otherwise).
        std::env::remove_var(name);
    }
    for file in ["/proc/self/environ", "/proc/self/cmdline"] {
        let bytes = std::fs::read(file).unwrap_or_default();
        for secret in secrets.iter().filter(|s| s.len() >= MIN_SEARCHED_SECRET) {
            if find(&bytes, secret.as_bytes()).is_some() {
                report.leaks.push(file.to_string());
            }
        }
    }
    // SAFETY: prctl(2) changes only this process's dumpable flag.
    report.not_dumpable = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } == 0;
    make_private(data_dir, tasks_as_other_user)?;
    Ok(report)
}

/// (argument block, environment block) address ranges, from `/proc/self/stat` fields 48-51.
fn own_regions() -> Option<((usize, usize), (usize, usize))> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields after the command name start at field 3; arg_start is field 48.
    let fields: Vec<usize> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    let at = |n: usize| fields.get(n - 3).copied().filter(|v| *v != 0);
    Some(((at(48)?, at(49)?), (at(50)?, at(51)?)))
}

/// # Safety
/// `range` must be a live, writable range of this process's memory that nothing else references.
unsafe fn region<'a>((start, end): (usize, usize)) -> &'a mut [u8] {
    if end <= start {
        return &mut [];
    }
    std::slice::from_raw_parts_mut(start as *mut u8, end - start)
}

/// Overwrites the value of every secret variable (`NAME=value\0`) with `*`; answers how many.
fn scrub_environment(block: &mut [u8]) -> usize {
    let mut scrubbed = 0;
    for entry in block.split_mut(|b| *b == 0) {
        let Some(eq) = entry.iter().position(|b| *b == b'=') else { continue };
        let (name, value) = entry.split_at_mut(eq);
        if SECRET_VARIABLES.iter().any(|s| s.as_bytes() == name) && value.len() > 1 {
            value[1..].fill(b'*');
            scrubbed += 1;
        }
    }
    scrubbed
}

/// Overwrites the values of secret flags (`--flag value` or `--flag=value`) with `*`.
fn scrub_arguments(block: &mut [u8]) -> usize {
    let mut scrubbed = 0;
    let mut next_is_secret = false;
    for arg in block.split_mut(|b| *b == 0) {
        if next_is_secret {
            arg.fill(b'*');
            scrubbed += 1;
            next_is_secret = false;
            continue;
        }
        for flag in SECRET_FLAGS {
            if arg == flag.as_bytes() {
                next_is_secret = true;
            } else if arg.len() > flag.len() && arg.starts_with(flag.as_bytes()) && arg[flag.len()] == b'=' {
                arg[flag.len() + 1..].fill(b'*');
                scrubbed += 1;
            }
        }
    }
    scrubbed
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The data directory readable by the node's user only; `work/` (attempt directories) reachable
/// by others when tasks run as another user. What an older version wrote with looser
/// permissions is tightened too.
fn make_private(data_dir: &Path, tasks_as_other_user: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let mode = if tasks_as_other_user { 0o711 } else { 0o700 };
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("making {} private", data_dir.display()))?;
    fn tighten(path: &Path) -> std::io::Result<()> {
        let meta = std::fs::symlink_metadata(path)?;
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        let current = meta.permissions().mode() & 0o7777;
        if current & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & 0o7700))?;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(path)? {
                tighten(&entry?.path())?;
            }
        }
        Ok(())
    }
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        // The attempts' work root is the shell executor's to manage.
        if entry.file_name() != "work" {
            tighten(&entry.path()).with_context(|| format!("making {} private", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Where shell attempts get their directories: `--work-dir` if set, else `<data_dir>/work`, unless
/// tasks run as another user who cannot search the way there (a data directory under a private
/// home, say): then a directory of the node's own under the system's temporary directory. The
/// answer says why, for the start-up log.
pub fn work_root(
    configured: Option<&Path>,
    data_dir: &Path,
    node_id: u64,
    task_user: Option<(u32, u32)>,
) -> anyhow::Result<(std::path::PathBuf, String)> {
    use anyhow::{bail, Context};
    let reachable = |dir: &Path| match task_user {
        None => Ok(()),
        Some(user) => searchable_by(dir, user),
    };
    if let Some(dir) = configured {
        std::fs::create_dir_all(dir).with_context(|| format!("creating work_dir {}", dir.display()))?;
        if let Err(blocker) = reachable(dir) {
            bail!("shell tasks cannot reach work_dir {}: {blocker}", dir.display());
        }
        return Ok((dir.to_path_buf(), "configured (LOOM_WORK_DIR)".into()));
    }
    let inside = data_dir.join("work");
    let Err(blocker) = reachable(data_dir) else {
        return Ok((inside, "in the data directory".into()));
    };
    let canonical = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let tag = linkloom_core::state::secret_hash(&canonical.to_string_lossy());
    let fallback = std::env::temp_dir().join(format!("loom-work-{node_id}-{}", &tag[..12]));
    own_directory(&fallback)?;
    if let Err(why) = reachable(&fallback) {
        bail!(
            "shell tasks cannot reach the data directory ({blocker}) nor {} ({why}): set LOOM_WORK_DIR",
            fallback.display()
        );
    }
    Ok((fallback, format!("the task user cannot reach the data directory ({blocker})")))
}

/// Creates `dir` for this process's user only, or accepts it if it already is exactly that: a
/// real directory (not a symbolic link) owned by this user and writable by no one else. In a
/// shared temporary directory, anything else may have been planted by another user.
fn own_directory(dir: &Path) -> anyhow::Result<()> {
    use anyhow::bail;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => bail!("creating {}: {e}", dir.display()),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    // SAFETY: geteuid(2) cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        bail!("{} exists but is not a private directory of uid {me}: remove it or set LOOM_WORK_DIR", dir.display());
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
    Ok(())
}

/// Whether `user` (uid, gid) may search every directory from `/` down to `dir`; the error names
/// the first that it may not.
fn searchable_by(dir: &Path, (uid, gid): (u32, u32)) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let canonical = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for ancestor in canonical.ancestors() {
        let meta = std::fs::metadata(ancestor).map_err(|e| format!("{}: {e}", ancestor.display()))?;
        let mode = meta.mode();
        let bit = if meta.uid() == uid {
            0o100
        } else if meta.gid() == gid {
            0o010
        } else {
            0o001
        };
        if uid != 0 && mode & bit == 0 {
            return Err(format!("{} is not searchable by uid {uid}", ancestor.display()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_variables_are_overwritten_in_place() {
        let mut block = b"PATH=/bin\0LOOM_ADMIN_TOKEN=abc123secret\0LOOM_ADMIN_TOKENX=keep\0LOOM_SIGNING_KEYS=a=b\0\
                          LOOM_OTLP_HEADERS=authorization=Bearer x\0"
            .to_vec();
        let len = block.len();
        assert_eq!(scrub_environment(&mut block), 3);
        assert_eq!(block.len(), len, "the block keeps its size");
        assert_eq!(
            block,
            b"PATH=/bin\0LOOM_ADMIN_TOKEN=************\0LOOM_ADMIN_TOKENX=keep\0LOOM_SIGNING_KEYS=***\0\
              LOOM_OTLP_HEADERS=**********************\0"
                .to_vec()
        );
    }

    #[test]
    fn secret_flags_are_overwritten_in_place() {
        let mut block =
            b"loom-node\0--admin-token\0hunter22hunter\0--listen\x00127.0.0.1:1\0--cluster-secret=topsecret\0".to_vec();
        assert_eq!(scrub_arguments(&mut block), 2);
        assert_eq!(
            block,
            b"loom-node\0--admin-token\0**************\0--listen\x00127.0.0.1:1\0--cluster-secret=*********\0".to_vec()
        );
    }

    #[test]
    fn search_permission_is_checked_on_every_ancestor() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let closed = dir.path().join("closed");
        let inner = closed.join("data");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        let stranger = (4_000_000, 4_000_000);
        let why = searchable_by(&inner, stranger).unwrap_err();
        assert!(why.contains("closed") && why.contains("not searchable"), "{why}");
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(searchable_by(&inner, stranger), Ok(()));
    }

    #[test]
    fn a_planted_work_directory_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join("mine");
        own_directory(&mine).unwrap();
        own_directory(&mine).expect("again: it is ours");
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(own_directory(&open).is_err(), "writable by others");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&mine, &link).unwrap();
        assert!(own_directory(&link).is_err(), "a symbolic link");
    }

    #[test]
    fn the_data_directory_becomes_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("snap")).unwrap();
        std::fs::create_dir_all(data.join("work")).unwrap();
        std::fs::write(data.join("db"), "state").unwrap();
        std::fs::set_permissions(data.join("db"), std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(data.join("work"), std::fs::Permissions::from_mode(0o711)).unwrap();
        make_private(&data, true).unwrap();
        let mode = |p: &str| std::fs::metadata(data.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o711);
        assert_eq!(mode("db"), 0o600);
        assert_eq!(mode("snap"), 0o700);
        assert_eq!(mode("work"), 0o711, "the work root is the executor's");
        make_private(&data, false).unwrap();
        assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
