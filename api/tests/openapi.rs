//! `docs/openapi.json` is the committed copy of the description the code serves. This fails when
//! they differ; `LOOM_UPDATE_OPENAPI=1 cargo test -p linkloom-api --test openapi` rewrites it.

use std::path::PathBuf;

#[test]
fn the_committed_description_matches_the_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let generated = linkloom_api::openapi_document();
    let mut text = serde_json::to_string_pretty(generated).expect("serializable");
    text.push('\n');
    if std::env::var_os("LOOM_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &text).expect("writing docs/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let committed_value: serde_json::Value = serde_json::from_str(&committed).unwrap_or_default();
    assert!(
        &committed_value == generated,
        "docs/openapi.json differs from the API the code serves; run \
         `LOOM_UPDATE_OPENAPI=1 cargo test -p linkloom-api --test openapi` and commit the result"
    );
}

/// docs/api.md's table names every error code the node can send.
#[test]
fn docs_api_md_lists_every_error_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    let text = std::fs::read_to_string(&path).expect("reading docs/api.md");
    for code in linkloom_wire::ErrorCode::KNOWN {
        assert!(text.contains(&format!("`{code}`")), "docs/api.md does not list the error code `{code}`");
    }
}
