//! The committed vectors are what the Rust SDK computes today. `LOOM_BLESS=1` rewrites them;
//! without it, a difference fails with the file to regenerate.

use std::path::PathBuf;

#[test]
fn committed_vectors_match_the_rust_implementation() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors");
    let bless = std::env::var_os("LOOM_BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, value) in linkloom_conformance::vectors::all() {
        let text = serde_json::to_string_pretty(&value).expect("vectors serialize") + "\n";
        let path = dir.join(name);
        if bless {
            std::fs::write(&path, &text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == text => {}
            Ok(_) => stale.push(format!("{name} differs")),
            Err(e) => stale.push(format!("{name}: {e}")),
        }
    }
    assert!(
        stale.is_empty(),
        "stale vectors ({}); if the change in behaviour is intended, run \
         `LOOM_BLESS=1 cargo test -p linkloom-conformance --test vectors` and commit the result",
        stale.join(", ")
    );
}

#[test]
fn every_case_name_is_unique_within_its_file() {
    for (name, value) in linkloom_conformance::vectors::all() {
        let cases = value["cases"].as_array().expect("cases");
        let mut names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().expect("a name")).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "{name} repeats a case name");
    }
}

#[test]
fn base64_matches_rfc_4648_test_vectors() {
    use linkloom_conformance::vectors::base64;
    for (input, output) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(input.as_bytes()), output);
    }
}
