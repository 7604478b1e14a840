//! Every kind of bad input gets a clear error in the API's shape and changes nothing.

use std::time::Duration;

use linkloom_harness::{Cluster, ClusterOptions};

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");

fn last_applied(cluster: &Cluster) -> u64 {
    let (_, v) = cluster.get_json(1, "/api/v1/cluster").expect("cluster info");
    v["last_applied"].as_u64().unwrap_or(0)
}

#[test]
fn bad_workflows_are_rejected_with_named_problems_and_change_nothing() {
    let options = ClusterOptions::new(1).env("LOOM_MAX_BODY_BYTES", 64 * 1024);
    let mut cluster = Cluster::start(BIN, options).expect("start");
    cluster.wait_ready(Duration::from_secs(30)).expect("ready");
    let valid = "id: ok\ntasks:\n  - {id: a, type: worker, queue: q}\n";
    assert_eq!(cluster.post(1, "/api/v1/workflows", "application/yaml", valid).unwrap().0, 201);

    let oversize = format!("id: big\ndescription: \"{}\"\ntasks: []\n", "x".repeat(70 * 1024));
    let cases: Vec<(&str, &str, String, u16, &str, &str)> = vec![
        ("malformed YAML", "application/yaml", "id: a\ntasks: x: y\n".into(), 422, "invalid_spec", "line 2"),
        ("malformed JSON", "application/json", "{\"id\": ".into(), 422, "invalid_spec", "EOF"),
        ("unknown field", "application/yaml", "id: a\ncolour: red\ntasks: [{id: a, type: worker, queue: q}]\n".into(), 422, "invalid_spec", "unknown field `colour`"),
        ("cycle", "application/yaml", "id: a\ntasks:\n - {id: x, type: worker, queue: q, depends_on: [y]}\n - {id: y, type: worker, queue: q, depends_on: [x]}\n".into(), 422, "invalid_spec", "x -> y -> x"),
        ("unknown dependency", "application/yaml", "id: a\ntasks: [{id: x, type: worker, queue: q, depends_on: [ghost]}]\n".into(), 422, "invalid_spec", "unknown task `ghost`"),
        ("bad cron", "application/yaml", "id: a\nschedule: '0 25 * * *'\ntasks: [{id: x, type: worker, queue: q}]\n".into(), 422, "invalid_spec", "hour field `25`"),
        ("bad time zone", "application/yaml", "id: a\nschedule: '@daily'\ntimezone: Europe/Atlantis\ntasks: [{id: x, type: worker, queue: q}]\n".into(), 422, "invalid_spec", "Europe/Atlantis"),
        ("duplicate task ids", "application/yaml", "id: a\ntasks: [{id: x, type: worker, queue: q}, {id: x, type: worker, queue: q}]\n".into(), 422, "invalid_spec", "duplicate task id `x`"),
        ("oversize body", "application/yaml", oversize, 413, "too_large", "limit is 65536"),
        ("wrong content type", "text/plain", valid.into(), 415, "unsupported_media_type", "application/yaml"),
    ];
    let before = last_applied(&cluster);
    for (what, content_type, body, status, code, needle) in cases {
        let (got, answer) = cluster.post(1, "/api/v1/workflows", content_type, body).unwrap();
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{what}: expected {needle:?} in {message:?}");
    }
    assert_eq!(last_applied(&cluster), before, "a rejected request reached the log");
    let (_, list) = cluster.get_json(1, "/api/v1/workflows").unwrap();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));

    let (status, answer) = cluster.get_json(1, "/api/v1/workflows/ghost").unwrap();
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("not_found")));
    let response = cluster.http().delete(format!("{}/api/v1/workflows/ghost", cluster.url(1))).send().unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let (status, _) = cluster.get_json(1, "/api/v1/nothing-here").unwrap();
    assert_eq!(status, 404);
    let (status, answer) = cluster.get_json(1, "/api/v1/workflows?limit=0").unwrap();
    assert_eq!(status, 400, "{answer}");
}
