//! Commands that need no cluster: validating a workflow file, settings, shell completions.

use serde_json::{json, Value};

use super::Done;
use crate::output::{cell, Out};
use crate::{args, config, Failure};

/// A workflow file, parsed and validated with the server's own rules.
pub(super) fn read_spec(file: &str) -> Result<linkloom_core::WorkflowSpec, Failure> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| Failure::usage(format!("reading stdin: {e}")))?
    } else {
        std::fs::read_to_string(file).map_err(|e| Failure::usage(format!("reading {file}: {e}")))?
    };
    let parsed = if file.ends_with(".json") {
        linkloom_core::spec::parse_json(&text)
    } else {
        linkloom_core::spec::parse_yaml(&text)
    };
    let spec = parsed.map_err(|e| problems(file, &e))?;
    linkloom_core::spec::validate(&spec).map_err(|e| problems(file, &e))?;
    Ok(spec)
}

fn problems(file: &str, e: &linkloom_core::spec::SpecError) -> Failure {
    let mut text = format!("{file} is not a valid workflow ({} problems):", e.problems.len());
    for p in &e.problems {
        text.push_str(&format!("\n  {}: {}", p.path, p.message));
    }
    Failure::usage(text)
}

pub fn validate(file: &str, out: Out) -> Done {
    let spec = read_spec(file)?;
    let summary = json!({"valid": true, "id": spec.id, "tasks": spec.tasks.len()});
    if !out.document(&summary) {
        println!("{file}: valid workflow `{}` with {} tasks", spec.id, spec.tasks.len());
    }
    Ok(0)
}

pub fn config(command: &args::Config, out: Out) -> Done {
    match command {
        args::Config::Set { key, value } => {
            config::set(key, value)?;
            if !out.document(&json!({key.as_str(): value})) {
                println!("{key} set in {}", config::path()?.display());
            }
        }
        args::Config::Get { key } => {
            config::check_key(key)?;
            let settings = config::load()?;
            match settings.get(key.as_str()) {
                Some(v) => {
                    if !out.document(v) {
                        println!("{v}");
                    }
                }
                None => return Err(Failure { code: 5, message: format!("{key} is not set") }),
            }
        }
        args::Config::List => {
            let settings = config::load()?;
            let shown: serde_json::Map<String, Value> = settings
                .iter()
                .map(|(k, v)| (k.clone(), json!(if k == "token" { "***".to_string() } else { v.clone() })))
                .collect();
            if !out.document(&shown) {
                for (k, v) in &shown {
                    println!("{k} = {}", cell(v));
                }
            }
        }
    }
    Ok(0)
}

pub fn completion(shell: &str) -> Done {
    use clap::CommandFactory;
    let shell = match shell {
        "bash" => clap_complete::Shell::Bash,
        "zsh" => clap_complete::Shell::Zsh,
        _ => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut crate::args::Cli::command(), "loom", &mut std::io::stdout());
    Ok(0)
}
