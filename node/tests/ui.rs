//! The web UI compiled into loom-node: every node serves the app at `/`, deep links load the same
//! app, its assets come with their types, and API paths stay the API's.

use std::time::Duration;

use linkloom_harness::{Cluster, ClusterOptions};

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");

#[test]
fn every_node_serves_the_app_and_deep_links() {
    let mut cluster = Cluster::start(BIN, ClusterOptions::new(3)).expect("start");
    cluster.wait_ready(Duration::from_secs(30)).expect("ready");
    let http = cluster.http();
    for id in cluster.ids() {
        let url = cluster.url(id);
        let mut pages = Vec::new();
        for path in ["/", "/workflows/nightly", "/executions/nightly:20261126T010203.000Z-ab", "/cluster"] {
            let response = http.get(format!("{url}{path}")).send().expect("GET a page");
            assert_eq!(response.status().as_u16(), 200, "{path} on node {id}");
            assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8", "{path}");
            pages.push(response.text().expect("html"));
        }
        assert!(pages.windows(2).all(|w| w[0] == w[1]), "deep links load the same app");
        let html = &pages[0];
        assert!(html.contains("id=\"root\""), "{html}");
        // Every script and stylesheet the page names is served, with its type.
        let assets: Vec<&str> = html.split('"').filter(|s| s.starts_with("/assets/")).collect();
        assert!(!assets.is_empty(), "{html}");
        for asset in assets {
            let response = http.get(format!("{url}{asset}")).send().expect("GET an asset");
            assert_eq!(response.status().as_u16(), 200, "{asset}");
            let kind = response.headers()["content-type"].to_str().unwrap().to_string();
            assert!(kind.starts_with("text/javascript") || kind.starts_with("text/css"), "{asset}: {kind}");
        }
        let (status, body) = cluster.get_json(id, "/api/v1/no-such-thing").unwrap();
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    }
}
