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

/// The executions stored for `workflow`, read through node 1.
fn executions_of(cluster: &Cluster, workflow: &str) -> Vec<serde_json::Value> {
    let (_, v) = cluster.get_json(1, &format!("/api/v1/executions?workflow={workflow}")).expect("list");
    v["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn every_limit_answers_its_status_and_stores_nothing() {
    let mut cluster =
        Cluster::start(BIN, ClusterOptions::new(1).env("LOOM_MAX_BODY_BYTES", 200_000).env("LOOM_MAX_PAGE_SIZE", 50))
            .expect("start");
    cluster.wait_ready(Duration::from_secs(30)).expect("ready");
    cluster
        .put_workflow(1, "id: lim\ntasks:\n  - id: a\n    type: shell\n    command: [\"true\"]\n")
        .expect("valid workflow");
    let before = last_applied(&cluster);

    // Body size: 413 before anything is parsed.
    let huge = format!("{{\"params\": {{\"x\": \"{}\"}}}}", "y".repeat(300_000));
    let (status, answer) = cluster.post(1, "/api/v1/workflows/lim/trigger", "application/json", huge).unwrap();
    assert_eq!((status, answer["error"]["code"].as_str()), (413, Some("too_large")), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("200000"), "{answer}");

    // Params: within the body limit but above what an execution may carry.
    let big_params = format!("{{\"params\": {{\"x\": \"{}\"}}}}", "y".repeat(70 * 1024));
    let (status, answer) = cluster.post(1, "/api/v1/workflows/lim/trigger", "application/json", big_params).unwrap();
    assert_eq!((status, answer["error"]["code"].as_str()), (413, Some("too_large")), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("params"), "{answer}");

    // Tasks per workflow.
    let mut many = String::from("id: many\ntasks:\n");
    for i in 0..501 {
        many.push_str(&format!("  - {{id: t{i}, type: worker, queue: q}}\n"));
    }
    let (status, answer) = cluster.post(1, "/api/v1/workflows", "application/yaml", many).unwrap();
    assert_eq!((status, answer["error"]["code"].as_str()), (422, Some("invalid_spec")), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("500"), "{answer}");

    // Page size.
    let (status, answer) = cluster.get_json(1, "/api/v1/executions?limit=51").unwrap();
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("maximum 50"), "{answer}");

    assert!(executions_of(&cluster, "lim").is_empty(), "a refused trigger created an execution");
    assert_eq!(cluster.get_json(1, "/api/v1/workflows/many").unwrap().0, 404);
    // Proposals refused by the state machine still take a log entry; refusals at the API do not.
    assert!(last_applied(&cluster) <= before + 1, "refusals stored something");

    // Output: a shell task writing more than an output may hold fails, and stores no output.
    cluster
        .put_workflow(
            1,
            r#"
id: bigout
tasks:
  - id: a
    type: shell
    command: |
      v=$(head -c 300000 /dev/zero | tr '\0' x)
      printf '{"v": "%s"}' "$v" > "$LOOM_OUTPUT"
"#,
        )
        .unwrap();
    let id = cluster.trigger(1, "bigout", serde_json::json!({})).unwrap();
    let done = cluster.wait_execution(1, &id, Duration::from_secs(60)).unwrap();
    assert_eq!(done["status"], "failed", "{done}");
    let task = &done["tasks"][0];
    assert!(task["attempts"][0]["error"].as_str().unwrap().contains("the limit is 262144"), "{done}");
    assert!(task["output"].is_null(), "{done}");

    // Tuned limits: an admin lowers them at run time; they apply to what comes after, on every
    // node, and a value outside its range is refused naming it.
    let (status, answer) =
        cluster.put_json(1, "/api/v1/cluster/limits", &serde_json::json!({"max_tasks_per_workflow": 0})).unwrap();
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_limits")), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("max_tasks_per_workflow = 0"), "{answer}");
    let (status, answer) = cluster
        .put_json(
            1,
            "/api/v1/cluster/limits",
            &serde_json::json!({"max_tasks_per_workflow": 2, "max_output_bytes": 64}),
        )
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["max_tasks_per_workflow"].as_u64(), answer["max_output_bytes"].as_u64()), (Some(2), Some(64)));
    assert_eq!(answer["max_params_bytes"], 65536, "unnamed limits keep their value");
    assert_eq!(answer["ceilings"]["max_tasks_per_workflow"], 2000);
    let three = "id: three\ntasks:\n  - {id: a, type: worker, queue: q}\n  - {id: b, type: worker, queue: q}\n  - {id: c, type: worker, queue: q}\n";
    let (status, answer) = cluster.post(1, "/api/v1/workflows", "application/yaml", three).unwrap();
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("at most 2 (max_tasks_per_workflow)"), "{answer}");
    cluster
        .put_workflow(
            1,
            r#"
id: chatty
tasks:
  - id: a
    type: shell
    command: |
      printf '{"v": "%s"}' "$(head -c 100 /dev/zero | tr '\0' a)" > "$LOOM_OUTPUT"
"#,
        )
        .unwrap();
    let id = cluster.trigger(1, "chatty", serde_json::json!({})).unwrap();
    let done = cluster.wait_execution(1, &id, Duration::from_secs(60)).unwrap();
    assert!(done["tasks"][0]["attempts"][0]["error"].as_str().unwrap().contains("the limit is 64"), "{done}");
    let (status, _) = cluster
        .put_json(
            1,
            "/api/v1/cluster/limits",
            &serde_json::json!({"max_tasks_per_workflow": 500, "max_output_bytes": 262144}),
        )
        .unwrap();
    assert_eq!(status, 200);

    // Retention: with 2 kept per workflow, older finished executions go as newer ones finish.
    let (status, _) = cluster
        .put_json(1, "/api/v1/cluster/limits", &serde_json::json!({"max_kept_executions_per_workflow": 2}))
        .unwrap();
    assert_eq!(status, 200);
    for _ in 0..5 {
        let id = cluster.trigger(1, "lim", serde_json::json!({})).unwrap();
        cluster.wait_execution(1, &id, Duration::from_secs(60)).unwrap();
    }
    cluster
        .wait_for("retention to prune to 2", Duration::from_secs(30), |c| executions_of(c, "lim").len() == 2)
        .unwrap();
}
