//! `~/.loom/config.toml` (or `$LOOM_CONFIG_DIR/config.toml`): the defaults `loom config set`
//! writes — `server-url`, `token`, `output` — so daily commands need no flags.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};

/// The keys `loom config` knows.
pub const KEYS: [&str; 3] = ["server-url", "token", "output"];

pub fn path() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("LOOM_CONFIG_DIR") {
        return Ok(PathBuf::from(dir).join("config.toml"));
    }
    let home = std::env::var_os("HOME").context("HOME is not set; set LOOM_CONFIG_DIR")?;
    Ok(PathBuf::from(home).join(".loom").join("config.toml"))
}

/// The stored settings (empty if there is no file).
pub fn load() -> anyhow::Result<BTreeMap<String, String>> {
    let path = path()?;
    match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        Ok(text) => toml::from_str(&text).with_context(|| format!("parsing {}", path.display())),
    }
}

pub fn set(key: &str, value: &str) -> anyhow::Result<()> {
    check_key(key)?;
    if key == "output" && !["table", "json", "yaml"].contains(&value) {
        bail!("output `{value}` is not one of table, json, yaml");
    }
    let mut settings = load()?;
    settings.insert(key.to_string(), value.to_string());
    let path = path()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = toml::to_string(&settings).context("encoding the settings")?;
    write_private(&path, &text).with_context(|| format!("writing {}", path.display()))
}

pub fn check_key(key: &str) -> anyhow::Result<()> {
    if !KEYS.contains(&key) {
        bail!("unknown key `{key}`; keys: {}", KEYS.join(", "));
    }
    Ok(())
}

/// The file may hold a token: readable by its owner only.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())
}
