//! The baseline of the `writes` benchmark: a 3-member etcd cluster (Debian's `etcd-server`) on
//! 127.0.0.1, loaded by the same driver as Link Loom through its JSON gateway's `kv/put`.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use linkloom_bench::{BenchError, Writer};

/// A 3-member etcd cluster on loopback, killed on drop.
pub struct Etcd {
    children: Vec<Child>,
    _dir: tempfile::TempDir,
    client_ports: Vec<u16>,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Etcd {
    pub fn start(binary: &Path) -> anyhow::Result<Etcd> {
        let dir = tempfile::Builder::new().prefix("etcd-bench-").tempdir()?;
        let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect::<Result<_, _>>()?;
        let peer_ports: Vec<u16> = (0..3).map(|_| free_port()).collect::<Result<_, _>>()?;
        let initial: Vec<String> =
            peer_ports.iter().enumerate().map(|(i, p)| format!("e{i}=http://127.0.0.1:{p}")).collect();
        let mut children = Vec::new();
        for i in 0..3 {
            let log = std::fs::File::create(dir.path().join(format!("e{i}.log")))?;
            let (client, peer) =
                (format!("http://127.0.0.1:{}", client_ports[i]), format!("http://127.0.0.1:{}", peer_ports[i]));
            children.push(
                Command::new(binary)
                    .args(["--name", &format!("e{i}")])
                    .arg("--data-dir")
                    .arg(dir.path().join(format!("e{i}")))
                    .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
                    .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
                    .args(["--initial-cluster", &initial.join(",")])
                    .args(["--initial-cluster-state", "new", "--log-level", "error"])
                    .stdin(Stdio::null())
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .spawn()
                    .context("starting etcd")?,
            );
        }
        Ok(Etcd { children, _dir: dir, client_ports })
    }

    /// The client URL of a member that is not the leader, once there is a leader (bounded).
    pub async fn follower(&self) -> anyhow::Result<String> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            for port in &self.client_ports {
                let url = format!("http://127.0.0.1:{port}");
                let Ok(r) = client.post(format!("{url}/v3/maintenance/status")).body("{}").send().await else {
                    continue;
                };
                let Ok(v) = r.json::<serde_json::Value>().await else { continue };
                let (leader, me) = (v["leader"].as_str(), v["header"]["member_id"].as_str());
                if leader.is_some() && leader != Some("0") && leader != me {
                    return Ok(url);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("etcd elected no leader within 30 s")
    }
}

/// etcd puts of `value_bytes` over the same 1,000 keys the Link Loom writes use.
pub struct EtcdWriter {
    pub url: String,
    pub value_b64: String,
    pub http: reqwest::Client,
}

impl EtcdWriter {
    pub fn new(url: String, value_bytes: usize) -> anyhow::Result<EtcdWriter> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).tcp_nodelay(true).build()?;
        Ok(EtcdWriter { url, value_b64: base64(&vec![b'x'; value_bytes]), http })
    }
}

impl Writer for EtcdWriter {
    fn write(&self, i: usize) -> Pin<Box<dyn Future<Output = Result<(), BenchError>> + Send + 'static>> {
        let key = base64(format!("bench/{}", i % linkloom_bench::KEYS).as_bytes());
        let body = format!("{{\"key\":\"{key}\",\"value\":\"{}\"}}", self.value_b64);
        let request =
            self.http.post(format!("{}/v3/kv/put", self.url)).header("content-type", "application/json").body(body);
        Box::pin(async move {
            let answer = request.send().await.map_err(|e| BenchError::Failed(format!("etcd put: {e}")))?;
            if !answer.status().is_success() {
                return Err(BenchError::Failed(format!("etcd put answered {}", answer.status())));
            }
            let _ = answer.bytes().await;
            Ok(())
        })
    }
}

/// Standard base64 with padding (what etcd's JSON gateway takes for keys and values).
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_pads_like_the_standard() {
        assert_eq!(super::base64(b"bench/7"), "YmVuY2gvNw==");
        assert_eq!(super::base64(b"xyz"), "eHl6");
        assert_eq!(super::base64(b"xy"), "eHk=");
    }
}
