//! Embeds the web UI (`ui/web`) in `loom-node`, so every node serves it with no files beside the
//! binary. When `ui/web` exists, its production build is run with npm (only when a source is newer
//! than the last build) and every file of `ui/web/dist` is compiled in; without `ui/web` (or with
//! `LOOM_SKIP_UI=1`) the node is built without a UI and `/` answers 404.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// What the UI's build reads, relative to ui/web.
const INPUTS: [&str; 9] = [
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
    "tsconfig.app.json",
    "tsconfig.node.json",
];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let web = manifest.join("../ui/web");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("ui_assets.rs");
    println!("cargo:rerun-if-env-changed=LOOM_SKIP_UI");
    let skip = std::env::var_os("LOOM_SKIP_UI").is_some_and(|v| v == "1");
    let files = if web.join("package.json").exists() && !skip {
        for input in
            ["src", "public", "index.html", "package.json", "package-lock.json", "vite.config.ts", "tsconfig.json"]
        {
            // Only what exists: cargo treats a missing path as changed, and would rebuild the
            // node (and rerun the UI build) on every build.
            if web.join(input).exists() {
                println!("cargo:rerun-if-changed={}", web.join(input).display());
            }
        }
        build_ui(&web);
        let dist = web.join("dist");
        let mut files = Vec::new();
        collect(&dist, &dist, &mut files);
        files
    } else {
        println!("cargo:rerun-if-changed={}", web.join("package.json").display());
        Vec::new()
    };
    let mut code = String::from(
        "/// The web UI's files, compiled in by build.rs.\npub fn ui_assets() -> linkloom_api::UiAssets {\n",
    );
    code.push_str("    #[allow(unused_mut)]\n    let mut assets = linkloom_api::UiAssets::new();\n");
    for (relative, absolute) in &files {
        let _ = writeln!(
            code,
            "    assets.insert({relative:?}, &include_bytes!({:?})[..]);",
            absolute.display().to_string()
        );
    }
    code.push_str("    assets\n}\n");
    std::fs::write(&out, code).expect("writing ui_assets.rs");
}

/// The newest modification time under `path`.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path).ok()?.flatten().filter_map(|e| newest(&e.path())).max()
}

fn build_ui(web: &Path) {
    let sources = INPUTS.iter().filter_map(|p| newest(&web.join(p))).max();
    let built = newest(&web.join("dist"));
    if let (Some(sources), Some(built)) = (sources, built) {
        if built >= sources {
            return;
        }
    }
    let npm = |args: &[&str]| {
        let status = Command::new("npm").args(args).current_dir(web).status().unwrap_or_else(|e| {
            panic!(
                "cannot run npm ({e}): the web UI needs Node.js 20+ and npm. Install them (Debian: \
                 `apt-get install nodejs npm`; else https://nodejs.org), or build without the UI with LOOM_SKIP_UI=1"
            )
        });
        assert!(status.success(), "`npm {}` in {} failed", args.join(" "), web.display());
    };
    if !web.join("node_modules").exists() {
        npm(&["ci", "--no-audit", "--no-fund"]);
    }
    npm(&["run", "build"]);
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            let relative = relative.to_string_lossy().replace('\\', "/");
            let absolute = path.canonicalize().unwrap_or(path.clone());
            files.push((relative, absolute));
        }
    }
}
