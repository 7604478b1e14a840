//! `loom-fake-node --script transcripts/NAME.json`: serves one transcript on 127.0.0.1 (see
//! sdk/conformance/README.md §2). Prints its base URL as the first line of stdout; exits when
//! stdin closes (so it never outlives the test that started it) or on SIGTERM / Ctrl-C.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use linkloom_conformance::fake::{FakeNode, Script};
use tokio::io::AsyncReadExt;

#[derive(Parser)]
#[command(about = "A scripted Link Loom node for SDK unit tests")]
struct Args {
    /// The transcript to serve.
    #[arg(long)]
    script: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.script).with_context(|| format!("reading {}", args.script.display()))?;
    let script: Script =
        serde_json::from_str(&text).with_context(|| format!("{} is not a transcript", args.script.display()))?;
    let node = FakeNode::start(script).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", node.url)?;
        out.flush()?;
    }
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buffer = [0u8; 256];
        while matches!(stdin.read(&mut buffer).await, Ok(n) if n > 0) {}
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = stdin_closed => {}
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    node.stop();
    Ok(())
}
