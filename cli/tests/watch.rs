//! `loom watch` in a real (pseudo-)terminal: it draws the cluster, redraws in place when an
//! execution appears, and quits on `q` with exit code 0.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linkloom_harness::worker::node_binary;
use linkloom_harness::{Cluster, ClusterOptions};
use portable_pty::{native_pty_system, CommandBuilder, PtySize};

const LOOM: &str = env!("CARGO_BIN_EXE_loom");

/// Waits until the screen shows `text`, for at most `timeout`.
fn wait_screen(screen: &Arc<Mutex<vt100::Parser>>, text: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let contents = screen.lock().unwrap().screen().contents();
        if contents.contains(text) {
            return contents;
        }
        assert!(Instant::now() < deadline, "the screen never showed `{text}`:\n{contents}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn watch_draws_updates_in_place_and_quits_on_q() {
    let node = node_binary().expect("loom-node is built");
    let mut cluster = Cluster::start(node, ClusterOptions::new(1)).expect("start");
    let leader = cluster.wait_ready(Duration::from_secs(30)).expect("ready");
    let home = tempfile::tempdir().expect("temp dir");

    let pty = native_pty_system()
        .openpty(PtySize { rows: 30, cols: 120, pixel_width: 0, pixel_height: 0 })
        .expect("a pseudo-terminal");
    let mut command = CommandBuilder::new(LOOM);
    command.args(["watch", "--interval", "200ms"]);
    command.env("LOOM_SERVER", cluster.url(leader));
    command.env("LOOM_CONFIG_DIR", home.path());
    command.env("TERM", "xterm-256color");
    let mut child = pty.slave.spawn_command(command).expect("spawn loom watch");
    drop(pty.slave);
    let mut reader = pty.master.try_clone_reader().expect("reader");
    let mut writer = pty.master.take_writer().expect("writer");
    let screen = Arc::new(Mutex::new(vt100::Parser::new(30, 120, 0)));
    let feed = screen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            feed.lock().unwrap().process(&buf[..n]);
        }
    });

    let first = wait_screen(&screen, "Link Loom", Duration::from_secs(20));
    assert!(first.contains("leader 1") && first.contains("EXECUTION"), "{first}");

    cluster.put_workflow(leader, "id: watched\ntasks:\n  - {id: a, type: shell, command: [\"true\"]}\n").unwrap();
    let execution = cluster.trigger(leader, "watched", serde_json::json!({})).unwrap();
    cluster.wait_execution(leader, &execution, Duration::from_secs(30)).unwrap();
    let updated = wait_screen(&screen, "succeeded", Duration::from_secs(20));
    assert!(updated.contains("watched"), "{updated}");

    writer.write_all(b"q").expect("press q");
    writer.flush().expect("flush");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("loom watch did not quit on q");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
}
