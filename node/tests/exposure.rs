//! Hostile clients against a real node: a web page in the operator's browser, a client that
//! sends its headers one byte at a time or opens connection after connection, a follower of logs
//! that never lets go, and an HTTP task whose harmless-looking name resolves somewhere it may
//! not go. Each attack is sent as such a client would send it, over a raw socket where it must be.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use linkloom_harness::backend::Backend;
use linkloom_harness::{Cluster, ClusterOptions};
use reqwest::blocking::Client;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");
const READY: Duration = Duration::from_secs(30);
const RUN: Duration = Duration::from_secs(60);

fn open_node(extra: &[(&str, &str)]) -> (Cluster, u64) {
    let mut options = ClusterOptions::new(1);
    for (k, v) in extra {
        options = options.env(k, v);
    }
    let mut cluster = Cluster::start(BIN, options).expect("start cluster");
    let node = cluster.wait_ready(READY).expect("ready");
    (cluster, node)
}

fn executions(cluster: &Cluster, node: u64) -> usize {
    let (status, list) = cluster.get_json(node, "/api/v1/executions").expect("listed");
    assert_eq!(status, 200, "{list}");
    list["items"].as_array().map_or(0, Vec::len)
}

fn code_of(response: reqwest::blocking::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    (status, body["error"]["code"].as_str().unwrap_or_default().to_string())
}

/// What an attack is, its headers, and the status and error code it must get.
type Attack = (&'static str, Vec<(&'static str, &'static str)>, u16, &'static str);

#[test]
fn a_web_page_cannot_make_an_open_node_run_anything() {
    let (cluster, node) = open_node(&[]);
    cluster.put_workflow(node, "id: target\ntasks:\n  - id: a\n    type: shell\n    command: [\"true\"]\n").unwrap();
    let url = cluster.url(node);
    let trigger = format!("{url}/api/v1/workflows/target/trigger");
    let http = Client::new();

    // What a form post or a `no-cors` fetch from another site looks like.
    let attacks: [Attack; 5] = [
        ("a form post", vec![("content-type", "application/x-www-form-urlencoded")], 415, "unsupported_media_type"),
        ("a text/plain fetch", vec![("content-type", "text/plain")], 415, "unsupported_media_type"),
        (
            "a cross-site JSON fetch",
            vec![("content-type", "application/json"), ("origin", "https://evil.example")],
            403,
            "cross_origin",
        ),
        (
            "a fetch the browser marks cross-site",
            vec![("content-type", "application/json"), ("sec-fetch-site", "cross-site")],
            403,
            "cross_origin",
        ),
        ("a page from an opaque origin", vec![("content-type", "text/plain"), ("origin", "null")], 403, "cross_origin"),
    ];
    for (what, headers, status, code) in attacks {
        let mut request = http.post(&trigger).body("{}");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        assert_eq!(code_of(request.send().unwrap()), (status, code.to_string()), "{what}");
    }
    // A DNS-rebinding page: same-origin to the browser, but it names its own host.
    let rebound = http.get(format!("{url}/api/v1/workflows")).header("host", "evil.example:8080").send().unwrap();
    assert_eq!(code_of(rebound), (403, "host_not_allowed".to_string()));
    let rebound = http
        .post(&trigger)
        .header("host", "evil.example")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(code_of(rebound), (403, "host_not_allowed".to_string()));
    // Membership changes are writes like any other.
    let learner = http
        .post(format!("{url}/api/v1/cluster/members"))
        .header("content-type", "text/plain")
        .body(r#"{"node_id": 9, "address": "127.0.0.9:1"}"#)
        .send()
        .unwrap();
    assert_eq!(learner.status().as_u16(), 415);
    // Probes address nodes by IP and any name.
    let probe = http.get(format!("{url}/healthz")).header("host", "10.1.2.3:8080").send().unwrap();
    assert_eq!(probe.status().as_u16(), 200);
    assert_eq!(executions(&cluster, node), 0, "nothing ran");
    let (_, membership) = cluster.get_json(node, "/api/v1/cluster").unwrap();
    assert!(!membership.to_string().contains("127.0.0.9"), "no learner was added: {membership}");

    // The UI's own requests, and the CLI's, go through.
    let own = http
        .post(&trigger)
        .header("content-type", "application/json")
        .header("origin", url.clone())
        .header("sec-fetch-site", "same-origin")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(own.status().as_u16(), 202, "{}", own.text().unwrap_or_default());
    let cli = http.post(&trigger).header("content-type", "application/json").body("{}").send().unwrap();
    assert_eq!(cli.status().as_u16(), 202);
    assert_eq!(executions(&cluster, node), 2);
    // The type is asked of writes to routes that exist: a wrong method is still a 405, an
    // unknown path a 404.
    let wrong_method = http.put(format!("{url}/api/v1/cluster")).send().unwrap();
    assert_eq!(code_of(wrong_method), (405, "method_not_allowed".to_string()));
    let unknown = http.post(format!("{url}/api/v1/nothing")).send().unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
}

#[test]
fn allowed_origins_and_hosts_are_the_operators_to_add() {
    let (cluster, node) =
        open_node(&[("LOOM_ALLOWED_ORIGINS", "tauri://localhost"), ("LOOM_ALLOWED_HOSTS", "loom.internal")]);
    cluster.put_workflow(node, "id: target\ntasks:\n  - id: a\n    type: shell\n    command: [\"true\"]\n").unwrap();
    let http = Client::new();
    let trigger = format!("{}/api/v1/workflows/target/trigger", cluster.url(node));
    let desktop = http
        .post(&trigger)
        .header("content-type", "application/json")
        .header("origin", "tauri://localhost")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(desktop.status().as_u16(), 202);
    let named = http.get(format!("{}/api/v1/workflows", cluster.url(node))).header("host", "loom.internal:8080");
    assert_eq!(named.send().unwrap().status().as_u16(), 200);
}

#[test]
fn a_node_reachable_from_other_machines_needs_tokens() {
    let data = tempfile::tempdir().unwrap();
    let child = Command::new(BIN)
        .args(["--node-id", "1", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(data.path())
        .env_remove("LOOM_ADMIN_TOKEN")
        .env_remove("LOOM_INSECURE_OPEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait_exit(child, READY);
    assert!(!output.status.success(), "an open node listening on 0.0.0.0 started");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without LOOM_ADMIN_TOKEN") && stderr.contains("--insecure-open"), "{stderr}");
}

fn wait_exit(mut child: std::process::Child, timeout: Duration) -> std::process::Output {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().unwrap(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                panic!("loom-node did not exit within {timeout:?}");
            }
        }
    }
}

fn metric(cluster: &Cluster, node: u64, line_start: &str) -> f64 {
    let text = cluster.http().get(format!("{}/metrics", cluster.url(node))).send().unwrap().text().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line_start).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no `{line_start}` in the metrics"))
}

/// Connects from 127.0.0.2: the node's own address, 127.0.0.1, is a member's, and members are
/// exempt from the per-address cap.
fn connect(cluster: &Cluster, node: u64) -> TcpStream {
    let address: std::net::SocketAddr = cluster.url(node).trim_start_matches("http://").parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&std::net::SocketAddr::from(([127, 0, 0, 2], 0)).into()).unwrap();
    socket.connect(&address.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream
}

/// Sends one `GET /healthz`, reads the whole answer and returns its status (0 when the node
/// closed the connection instead).
fn healthz(stream: &mut TcpStream) -> u16 {
    if stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").is_err() {
        return 0;
    }
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return 0,
        }
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length];
    if stream.read_exact(&mut body).is_err() {
        return 0;
    }
    head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn a_slow_client_is_cut_off_and_a_greedy_one_capped() {
    let (cluster, node) =
        open_node(&[("LOOM_HEADER_READ_TIMEOUT_MS", "500"), ("LOOM_MAX_CONNECTIONS_PER_ADDRESS", "8")]);

    // Slowloris: half a request head, then nothing. The node closes the connection.
    let mut slow = connect(&cluster, node);
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0").unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = slow.read_to_end(&mut rest);
    assert!(closed.is_ok(), "the node closed the connection (not our read timeout): {closed:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "closed after {:?}", started.elapsed());
    drop(slow);
    assert!(metric(&cluster, node, "loom_connections_timed_out_total{reason=\"header_timeout\"}") >= 1.0);

    // Connection after connection from one address: at the cap, the next is answered 503 and
    // closed; the ones already open keep working.
    let mut held: Vec<TcpStream> = Vec::new();
    let mut refused = 0;
    for _ in 0..12 {
        let mut stream = connect(&cluster, node);
        match healthz(&mut stream) {
            200 => held.push(stream),
            503 => refused += 1,
            other => panic!("unexpected answer {other}"),
        }
    }
    assert!(held.len() <= 8, "{} connections open from one address", held.len());
    assert!(refused >= 4, "only {refused} refused");
    for stream in &mut held {
        assert_eq!(healthz(stream), 200, "an admitted connection keeps working");
    }
    drop(held);
    cluster
        .wait_for("slots to be freed", READY, |c| c.http().get(format!("{}/healthz", c.url(node))).send().is_ok())
        .unwrap();
    assert!(metric(&cluster, node, "loom_connections_refused_total{reason=\"per_address\"}") >= 4.0);
}

#[test]
fn one_caller_follows_only_so_many_logs() {
    let (cluster, node) = open_node(&[("LOOM_MAX_LOG_STREAMS", "1")]);
    cluster
        .put_workflow(node, "id: long\ntasks:\n  - id: a\n    type: shell\n    command: \"echo started; sleep 30\"\n")
        .unwrap();
    let execution = cluster.trigger(node, "long", json!({})).unwrap();
    let follow = format!("{}/api/v1/executions/{execution}/logs?task=a&follow=true", cluster.url(node));
    cluster
        .wait_for("the task to start", READY, |c| {
            c.execution(node, &execution).is_ok_and(|e| e["tasks"][0]["status"] == "running")
        })
        .unwrap();
    let http = Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let first = http.get(&follow).send().unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let second = http.get(&follow).send().unwrap();
    assert_eq!(code_of(second), (429, "too_many_streams".to_string()));
    assert_eq!(metric(&cluster, node, "loom_log_streams_open"), 1.0);
    assert!(metric(&cluster, node, "loom_log_streams_refused_total") >= 1.0);
    drop(first);
    // Closing the stream frees the slot.
    cluster
        .wait_for("the slot to be freed", READY, |_| http.get(&follow).send().is_ok_and(|r| r.status().as_u16() == 200))
        .unwrap();
    let (status, _) =
        cluster.post(node, &format!("/api/v1/executions/{execution}/cancel"), "application/json", "{}").unwrap();
    assert_eq!(status, 200);
}

#[test]
fn http_tasks_are_held_to_where_names_resolve() {
    let backend = Backend::start().unwrap();
    let port = backend.url.rsplit(':').next().unwrap().to_string();
    // Only 127.0.0.2 may be called: `localhost` is a name, and what it resolves to is not listed.
    let (cluster, node) = open_node(&[("LOOM_HTTP_ALLOW", "127.0.0.2/32")]);
    let yaml = format!(
        r#"id: ssrf
tasks:
  - id: by_name
    type: http
    url: http://localhost:{port}/echo
    retry: {{max_attempts: 1}}
  - id: mapped_metadata
    type: http
    url: http://[::ffff:169.254.169.254]/latest/meta-data
    retry: {{max_attempts: 1}}
  - id: this_host
    type: http
    url: http://0.0.0.0:{port}/echo
    retry: {{max_attempts: 1}}
"#
    );
    cluster.put_workflow(node, &yaml).unwrap();
    let execution = cluster.trigger(node, "ssrf", json!({})).unwrap();
    let done = cluster.wait_execution(node, &execution, RUN).unwrap();
    let error = |task: &str| -> String {
        let task = done["tasks"].as_array().and_then(|t| t.iter().find(|t| t["id"] == task)).unwrap();
        assert_eq!(task["status"], "failed", "{done}");
        task["attempts"][0]["error"].as_str().unwrap_or_default().to_string()
    };
    let by_name = error("by_name");
    assert!(by_name.contains("refused") && by_name.contains("LOOM_HTTP_ALLOW"), "{by_name}");
    assert!(error("mapped_metadata").contains("link-local"), "{done}");
    assert!(error("this_host").contains("\"this host\""), "{done}");
    assert!(backend.received().is_empty(), "the backend was reached: {:?}", backend.received());
}

#[test]
fn a_failed_backend_leaves_only_a_short_clean_excerpt() {
    let backend = Backend::start().unwrap();
    let (cluster, node) = open_node(&[]);
    let yaml = format!("id: noisy\ntasks:\n  - id: a\n    type: http\n    url: {}/garbage\n", backend.url);
    cluster.put_workflow(node, &yaml).unwrap();
    let execution = cluster.trigger(node, "noisy", json!({})).unwrap();
    let done = cluster.wait_execution(node, &execution, RUN).unwrap();
    assert_eq!(backend.received().len(), 1, "{done}");
    let error = done["tasks"][0]["attempts"][0]["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("500") && error.contains("FAKE"), "{error}");
    assert!(!error.chars().any(char::is_control), "control characters kept: {error:?}");
    assert!(error.len() < 1024, "{} bytes of the answer kept", error.len());
}

/// Sends `head` and `body_len` bytes of body; returns the answer's status and head (lowercase).
fn send_with_body(stream: &mut TcpStream, head: &str, body_len: usize) -> (u16, String) {
    let head = format!("{head}content-length: {body_len}\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let body = vec![b'x'; body_len];
    // A refusal may come while the body is still being written; the writer must not block it.
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&body).is_ok());
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => answer.push(byte[0]),
            other => panic!("no answer: {other:?}"),
        }
    }
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    let length: usize =
        answer.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut rest = vec![0u8; length];
    stream.read_exact(&mut rest).unwrap();
    let _ = sender.join();
    (answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0), answer)
}

#[test]
fn a_refused_request_leaves_its_connection_usable() {
    let (cluster, node) = open_node(&[]);
    let address = cluster.url(node).trim_start_matches("http://").to_string();
    let refusals = [
        (
            "an unknown path",
            "POST /api/v1/nothing HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n",
            404,
        ),
        (
            "a bad path parameter",
            "POST /api/v1/executions/%FF/cancel HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n",
            400,
        ),
        ("a write without a type", "POST /api/v1/workflows HTTP/1.1\r\nhost: 127.0.0.1\r\n", 415),
        (
            "a wrong method",
            "PATCH /api/v1/workflows HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n",
            405,
        ),
    ];
    for (what, head, status) in refusals {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let (got, answer) = send_with_body(&mut stream, head, 200_000);
        assert_eq!(got, status, "{what}: {answer}");
        assert!(!answer.contains("connection: close"), "{what}: {answer}");
        assert_eq!(healthz(&mut stream), 200, "{what}: the connection is still good for the next request");
    }
    // Past what the node will read for nothing, it says it closes.
    let mut stream = TcpStream::connect(&address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (got, answer) = send_with_body(
        &mut stream,
        "POST /api/v1/nothing HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n",
        9 * 1024 * 1024,
    );
    assert_eq!(got, 404);
    assert!(answer.contains("connection: close"), "{answer}");
}
