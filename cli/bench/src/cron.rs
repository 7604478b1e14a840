//! `cron`: `--workflows` workflows on `--schedule` (every second by default), each one HTTP task
//! to the bench backend that passes its tick in; a sample is the task's arrival minus its tick:
//! tick lateness plus dispatch. Uses this machine's wall clock against the leader's tick times,
//! so run it on a machine of the cluster (clocks in step). The workflows are paused at the end.

use linkloom::Client;

use crate::backend::Backend;
use crate::report::{Measured, Report};
use crate::{BenchError, Plan};

pub(crate) async fn run(client: &Client, name: &str, plan: &Plan) -> Result<Report, BenchError> {
    let backend = Backend::start(false).await?;
    let schedule = plan.options.schedule.replace('"', "");
    for i in 0..plan.options.workflows {
        let yaml = format!(
            "id: {name}-{i}\nschedule: \"{schedule}\"\ncatchup: none\ntasks:\n  - id: t\n    type: http\n    url: \"{}\"\n    input: {{scheduled_at: \"{{{{ execution.scheduled_at }}}}\"}}\n",
            backend.url
        );
        client.put_workflow_yaml(&yaml).await?;
    }
    let window = plan.duration.unwrap_or(std::time::Duration::from_secs(10));
    let started = std::time::Instant::now();
    tokio::time::sleep(window).await;
    for i in 0..plan.options.workflows {
        let _ = client.pause(&format!("{name}-{i}")).await;
    }
    let lateness = std::mem::take(&mut backend.seen().lateness_ms);
    if lateness.is_empty() {
        return Err(BenchError::Failed(format!(
            "no scheduled task arrived in {} s: is `{schedule}` due in that window?",
            window.as_secs()
        )));
    }
    Ok(Report::new(
        plan.scenario,
        plan.options.workflows,
        Measured { samples_ms: lateness, elapsed: started.elapsed(), ..Measured::default() },
    ))
}
