//! What a node lets tasks do. Shell tasks are code execution on the node by design, and HTTP
//! tasks make the node call URLs its users chose; the node's own configuration (never a
//! workflow) decides how far either may go. docs/security.md says what to set in production.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A node's rules for tasks. The default is convenient for development: shell tasks on with no
/// allow-list, HTTP tasks to any host; open files and output are bounded.
#[derive(Debug, Clone)]
pub struct TaskPolicy {
    pub shell_enabled: bool,
    /// Programs a shell task may start (its first argv word). Empty: any. An entry with a `/` is
    /// an exact path; a bare name is looked up on the node's own `PATH` (never the task's `env`),
    /// and the path found is what runs.
    pub shell_allow: Vec<String>,
    pub shell_limits: ShellLimits,
    /// Run shell tasks as this user and group (the node must be able to switch to them, i.e.
    /// run as root). The node's configuration defaults it to `nobody` when the node is root.
    pub shell_run_as: Option<(u32, u32)>,
    /// Variables of the node's environment passed to shell tasks besides the fixed safe set
    /// (`PATH`, `HOME`, `LANG`, `TZ`, `TMPDIR`, the `LOOM_*` task variables).
    pub shell_pass_env: Vec<String>,
    /// Give each shell attempt its own cgroup when the node can (else track descendants).
    pub shell_cgroups: bool,
    /// Hosts and networks HTTP tasks may call. `None`: any.
    pub http_allow: Option<Vec<HostRule>>,
}

impl Default for TaskPolicy {
    fn default() -> Self {
        TaskPolicy {
            shell_enabled: true,
            shell_allow: Vec::new(),
            shell_limits: ShellLimits::default(),
            shell_run_as: None,
            shell_pass_env: Vec::new(),
            shell_cgroups: true,
            http_allow: None,
        }
    }
}

/// The default process limit: room for any reasonable build or script, not for a fork bomb.
pub const DEFAULT_MAX_PROCESSES: u64 = 4096;

/// Resource limits of one shell attempt's process (set with `setrlimit` before it starts; its
/// children inherit them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellLimits {
    /// CPU seconds (`RLIMIT_CPU`; the process gets SIGXCPU, then SIGKILL).
    pub cpu_secs: Option<u64>,
    /// Address space in bytes (`RLIMIT_AS`).
    pub memory_bytes: Option<u64>,
    /// Open file descriptors (`RLIMIT_NOFILE`).
    pub open_files: Option<u64>,
    /// Processes (`RLIMIT_NPROC`, which counts every process of the user the task runs as, and
    /// `pids.max` of the attempt's cgroup where the pids controller is delegated).
    pub processes: Option<u64>,
    /// stdout and stderr together; beyond it the process group is killed and the attempt fails.
    pub output_bytes: u64,
    /// Output of all shell attempts on this node appended to their logs per second (through
    /// Raft); beyond it lines are dropped and counted (see `log_rate`).
    pub log_bytes_per_sec: u64,
}

impl Default for ShellLimits {
    fn default() -> Self {
        ShellLimits {
            cpu_secs: None,
            memory_bytes: None,
            open_files: Some(1024),
            processes: Some(DEFAULT_MAX_PROCESSES),
            output_bytes: 16 * 1024 * 1024,
            log_bytes_per_sec: 256 * 1024,
        }
    }
}

/// One entry of an HTTP allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRule {
    /// A host name, optionally with a port (`api.example.com`, `api.example.com:8443`).
    Host { name: String, port: Option<u16> },
    /// Every subdomain of a name (`*.example.com`; not `example.com` itself).
    Suffix(String),
    /// An address or network (`10.0.0.5`, `10.0.0.0/8`, `fd00::/8`).
    Network { addr: IpAddr, prefix: u8 },
}

impl HostRule {
    /// Parses one entry; the error names it.
    pub fn parse(text: &str) -> Result<HostRule, String> {
        let text = text.trim();
        let bad = |why: &str| format!("HTTP allow-list entry `{text}`: {why}");
        if text.is_empty() {
            return Err(bad("empty"));
        }
        if let Some((addr, prefix)) = text.split_once('/') {
            let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP network"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix.parse().ok().filter(|p| *p <= max).ok_or_else(|| bad("bad prefix length"))?;
            return Ok(HostRule::Network { addr, prefix });
        }
        if let Ok(addr) = text.parse::<IpAddr>() {
            return Ok(HostRule::Network { addr, prefix: if addr.is_ipv4() { 32 } else { 128 } });
        }
        if let Some(suffix) = text.strip_prefix("*.") {
            if !valid_name(suffix) {
                return Err(bad("not a host name"));
            }
            return Ok(HostRule::Suffix(suffix.to_ascii_lowercase()));
        }
        let (name, port) = match text.rsplit_once(':') {
            Some((name, port)) => (name, Some(port.parse::<u16>().map_err(|_| bad("bad port"))?)),
            None => (text, None),
        };
        if !valid_name(name) {
            return Err(bad("not a host name, IP address or network"));
        }
        Ok(HostRule::Host { name: name.to_ascii_lowercase(), port })
    }

    fn prefix(&self) -> u8 {
        match self {
            HostRule::Network { prefix, .. } => *prefix,
            _ => 0,
        }
    }

    fn matches_name_any_port(&self, host: &str) -> bool {
        match self {
            HostRule::Host { name, .. } => name == host,
            HostRule::Suffix(_) => self.matches_name(host, 0),
            HostRule::Network { .. } => false,
        }
    }

    fn matches_name(&self, host: &str, port: u16) -> bool {
        match self {
            HostRule::Host { name, port: p } => name == host && p.is_none_or(|p| p == port),
            HostRule::Suffix(suffix) => host.strip_suffix(suffix.as_str()).is_some_and(|rest| rest.ends_with('.')),
            HostRule::Network { .. } => false,
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let HostRule::Network { addr, prefix } = self else { return false };
        match (addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if *prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(*prefix)) };
                u32::from(*net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if *prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(*prefix)) };
                u128::from(*net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Parses a comma-separated allow-list.
pub fn parse_host_rules(text: &str) -> Result<Vec<HostRule>, String> {
    text.split(',').filter(|e| !e.trim().is_empty()).map(HostRule::parse).collect()
}

/// Addresses no HTTP task reaches unless an allow-list network names them: link-local ones
/// (where clouds serve instance metadata and credentials), the cloud metadata services that
/// live elsewhere, and "this host" addresses (which reach the node's own loopback services).
const FORBIDDEN: &[(&str, &str)] = &[
    ("169.254.0.0/16", "link-local (cloud metadata lives at 169.254.169.254)"),
    ("fe80::/10", "link-local"),
    ("fd00:ec2::254/128", "the AWS metadata service"),
    ("100.100.100.200/32", "the Alibaba Cloud metadata service"),
    ("168.63.129.16/32", "the Azure host service"),
    ("0.0.0.0/8", "\"this host\""),
    ("::/128", "\"this host\""),
];

/// Why `ip` is forbidden by default, if it is, and the prefix length of the forbidden network.
fn forbidden(ip: IpAddr) -> Option<(&'static str, u8)> {
    // `::ffff:169.254.169.254` is the same host as `169.254.169.254`.
    let ip = ip.to_canonical();
    FORBIDDEN.iter().find_map(|(net, why)| {
        let rule = HostRule::parse(net).unwrap_or_else(|_| unreachable!("the built-in list parses"));
        rule.contains(ip).then_some((*why, rule.prefix()))
    })
}

/// Where a node's HTTP tasks may connect: its allow-list (if any) and the forbidden addresses.
#[derive(Debug, Clone, Default)]
pub struct TargetRules {
    allow: Option<Vec<HostRule>>,
}

impl TargetRules {
    pub fn new(allow: Option<Vec<HostRule>>) -> TargetRules {
        TargetRules { allow }
    }

    /// Whether the task may connect to `ip`; `by_name`: the URL's host matched a name rule of
    /// the allow-list, so only the forbidden list applies. The error says why not.
    pub fn vet(&self, ip: IpAddr, by_name: bool) -> Result<(), String> {
        let ip = ip.to_canonical();
        let networks = || self.allow.iter().flatten().filter(|r| matches!(r, HostRule::Network { .. }));
        let listed = networks().any(|r| r.contains(ip));
        if let Some((why, prefix)) = forbidden(ip) {
            // An operator who lists such a network (or a part of it) by hand means it; a wider
            // rule that happens to contain it (`0.0.0.0/0`) does not.
            let explicit = networks().any(|r| r.contains(ip) && r.prefix() >= prefix);
            if !explicit {
                return Err(format!(
                    "{ip} is {why}; HTTP tasks may not call it unless LOOM_HTTP_ALLOW lists its network"
                ));
            }
        }
        match &self.allow {
            Some(_) if !by_name && !listed => {
                Err(format!("{ip} is not in the networks HTTP tasks on this node may call (LOOM_HTTP_ALLOW)"))
            }
            _ => Ok(()),
        }
    }

    /// Whether `host` matches a name rule (so its addresses are not held to network rules);
    /// `port: None` ignores the rules' ports (the resolver does not see the port).
    pub fn allows_name(&self, host: &str, port: Option<u16>) -> bool {
        match &self.allow {
            None => true,
            Some(rules) => rules.iter().any(|r| match port {
                Some(port) => r.matches_name(host, port),
                None => r.matches_name_any_port(host),
            }),
        }
    }

    /// Checked before a call: the URL's host against the allow-list by name, and an address
    /// (a literal, or with network rules, every address the name resolves to now) against the
    /// rules. The connection itself goes only to addresses the resolver of
    /// [`HyperTaskHttp::tcp`](super::HyperTaskHttp::tcp) vetted, so a name that resolves
    /// differently later still reaches nothing forbidden. The error says what was refused.
    pub(crate) async fn check(&self, url: &str) -> Result<(), String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("task URL `{url}` is invalid: {e}"))?;
        let host = uri.host().ok_or_else(|| format!("task URL `{url}` has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
        let refused = |why: String| format!("HTTP task to `{host}:{port}` refused: {why}");
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.vet(ip, false).map_err(refused);
        }
        let Some(rules) = &self.allow else { return Ok(()) };
        if self.allows_name(&host, Some(port)) {
            return Ok(());
        }
        if !rules.iter().any(|r| matches!(r, HostRule::Network { .. })) {
            return Err(refused("the host is not in LOOM_HTTP_ALLOW".into()));
        }
        let addresses: Vec<IpAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| refused(format!("it does not resolve: {e}")))?
            .map(|a| a.ip())
            .collect();
        if addresses.is_empty() {
            return Err(refused("it resolves to no address".into()));
        }
        for ip in addresses {
            self.vet(ip, false).map_err(&refused)?;
        }
        Ok(())
    }
}

/// The program a shell task may run, as an absolute path when an allow-list applies: the error
/// names the program and the list.
pub(crate) fn allowed_program(policy: &TaskPolicy, program: &str) -> Result<PathBuf, String> {
    if policy.shell_allow.is_empty() {
        return Ok(PathBuf::from(program));
    }
    let refused = || {
        format!(
            "`{program}` is not in this node's shell allow-list (LOOM_SHELL_ALLOW={})",
            policy.shell_allow.join(",")
        )
    };
    if program.contains('/') {
        return policy.shell_allow.iter().any(|a| a == program).then(|| PathBuf::from(program)).ok_or_else(refused);
    }
    if !policy.shell_allow.iter().any(|a| a == program) {
        return Err(refused());
    }
    // The node's PATH, not the task's: a task's `env: {PATH: ...}` cannot swap the program.
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| format!("`{program}` is allowed but not found on this node's PATH"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<HostRule> {
        parse_host_rules(text).expect("valid")
    }

    async fn check_http_target(rules: &[HostRule], url: &str) -> Result<(), String> {
        TargetRules::new(Some(rules.to_vec())).check(url).await
    }

    #[tokio::test]
    async fn names_ports_suffixes_and_networks() {
        let r = rules("api.example.com, hooks.example.org:8443, *.internal.test, 10.1.0.0/16, 127.0.0.1");
        for ok in [
            "http://api.example.com/x",
            "https://api.example.com:9000/",
            "https://hooks.example.org:8443/y",
            "http://a.internal.test/",
            "http://b.c.internal.test:81/",
            "http://10.1.200.3:8080/",
            "http://127.0.0.1:9/",
        ] {
            assert_eq!(check_http_target(&r, ok).await, Ok(()), "{ok}");
        }
        for refused in [
            "http://hooks.example.org/y",
            "http://internal.test/",
            "http://evilinternal.test/",
            "http://10.2.0.1/",
            "http://127.0.0.2/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:80/",
        ] {
            let e = check_http_target(&r, refused).await.expect_err(refused);
            assert!(e.contains("refused"), "{e}");
        }
    }

    #[tokio::test]
    async fn names_are_checked_by_what_they_resolve_to() {
        // `localhost` is not listed by name, but resolves only into the allowed loopback network.
        let loopback = rules("127.0.0.0/8, ::1/128");
        assert_eq!(check_http_target(&loopback, "http://localhost:8080/").await, Ok(()));
        let elsewhere = rules("10.0.0.0/8");
        let e = check_http_target(&elsewhere, "http://localhost:8080/").await.expect_err("outside");
        assert!(e.contains("is not in the networks"), "{e}");
    }

    #[tokio::test]
    async fn metadata_and_link_local_addresses_are_refused_by_default() {
        let open = TargetRules::default();
        for url in [
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://169.254.170.2/v2/credentials",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://100.100.100.200/latest/meta-data",
            "http://0.0.0.0:8080/api/v1/tokens",
            "http://[::ffff:169.254.169.254]/",
        ] {
            let e = open.check(url).await.expect_err(url);
            assert!(e.contains("may not call it"), "{url}: {e}");
        }
        for url in ["http://127.0.0.1:8080/", "http://10.0.0.1/", "https://[2001:db8::1]/", "http://backend.internal/"]
        {
            assert_eq!(open.check(url).await, Ok(()), "{url}");
        }
        // An operator who lists the network by hand may call it.
        let listed = TargetRules::new(Some(rules("169.254.169.254/32")));
        assert_eq!(listed.check("http://169.254.169.254/").await, Ok(()));
        assert!(TargetRules::new(Some(rules("0.0.0.0/0"))).vet("169.254.169.254".parse().unwrap(), false).is_err());
    }

    #[test]
    fn bad_entries_are_named() {
        for (bad, why) in [("10.0.0.0/40", "prefix"), ("a b", "host name"), ("x:port", "port"), ("*.", "host name")] {
            let e = HostRule::parse(bad).expect_err(bad);
            assert!(e.contains(bad) && e.contains(why), "{e}");
        }
    }

    #[test]
    fn allow_lists_pin_programs_to_the_nodes_path() {
        let open = TaskPolicy::default();
        assert_eq!(allowed_program(&open, "anything"), Ok(PathBuf::from("anything")));
        let policy = TaskPolicy { shell_allow: vec!["sh".into(), "/bin/echo".into()], ..TaskPolicy::default() };
        let sh = allowed_program(&policy, "sh").expect("sh is allowed");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{sh:?}");
        assert_eq!(allowed_program(&policy, "/bin/echo"), Ok(PathBuf::from("/bin/echo")));
        let e = allowed_program(&policy, "python3").expect_err("not listed");
        assert!(e.contains("`python3`") && e.contains("LOOM_SHELL_ALLOW=sh,/bin/echo"), "{e}");
        assert!(allowed_program(&policy, "/tmp/sh").is_err(), "a path is matched exactly, not by its name");
    }
}
