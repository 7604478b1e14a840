//! `loom token ...`: create, list and revoke API tokens (admin only).

use chrono::Utc;
use linkloom::{Client, Role};
use serde_json::json;

use super::{print_table, Done};
use crate::args;
use crate::output::{ago, opt, Out, Table};
use crate::Failure;

pub(super) async fn run(client: &Client, command: args::Token, out: Out) -> Done {
    use args::Token as T;
    match command {
        T::Create { name, role, queues } => {
            let parsed = role.parse::<Role>().map_err(|e| Failure::usage(e.to_string()))?;
            let created = client.create_token(&name, parsed, queues.clone()).await?;
            if !out.document(&created) {
                println!("{}", created.token);
                let limited = queues.map(|q| format!(", queues {}", q.join(","))).unwrap_or_default();
                eprintln!("token `{name}` ({role}{limited}) created; this is the only time its secret is shown");
            }
        }
        T::List => {
            let items = client.tokens().await?;
            if out.document(&items) {
                return Ok(0);
            }
            let now = Utc::now();
            let mut table = Table::new(&["NAME", "ROLE", "QUEUES", "CREATED", "BY"]);
            for t in &items {
                table.row(vec![
                    t.name.clone(),
                    t.role.to_string(),
                    t.queues.as_ref().map_or_else(|| "*".to_string(), |q| q.join(",")),
                    ago(Some(&t.created_at), now),
                    opt(t.created_by.as_deref()),
                ]);
            }
            print_table(&table, "no tokens");
        }
        T::Revoke { name } => {
            client.revoke_token(&name).await?;
            if !out.document(&json!({"name": name, "revoked": true})) {
                println!("token {name} revoked");
            }
        }
    }
    Ok(0)
}
