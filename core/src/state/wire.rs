//! The state's enums as the wire names them. Exhaustive matches: a variant added to the state
//! does not compile until the wire (and so the API document and every SDK) knows it too.

use linkloom_wire as wire;

use super::{AttemptStatus, AuditAction, ExecutionStatus, Role, TaskStatus, Trigger};

impl From<ExecutionStatus> for wire::ExecutionStatus {
    fn from(s: ExecutionStatus) -> Self {
        match s {
            ExecutionStatus::Queued => Self::Queued,
            ExecutionStatus::Running => Self::Running,
            ExecutionStatus::Succeeded => Self::Succeeded,
            ExecutionStatus::Failed => Self::Failed,
            ExecutionStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl From<TaskStatus> for wire::TaskStatus {
    fn from(s: TaskStatus) -> Self {
        match s {
            TaskStatus::Pending => Self::Pending,
            TaskStatus::Running => Self::Running,
            TaskStatus::Retrying => Self::Retrying,
            TaskStatus::Succeeded => Self::Succeeded,
            TaskStatus::Failed => Self::Failed,
            TaskStatus::Skipped => Self::Skipped,
            TaskStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl From<AttemptStatus> for wire::AttemptStatus {
    fn from(s: AttemptStatus) -> Self {
        match s {
            AttemptStatus::Running => Self::Running,
            AttemptStatus::Succeeded => Self::Succeeded,
            AttemptStatus::Failed => Self::Failed,
            AttemptStatus::TimedOut => Self::TimedOut,
            AttemptStatus::Lost => Self::Lost,
            AttemptStatus::Cancelled => Self::Cancelled,
            AttemptStatus::Released => Self::Released,
        }
    }
}

impl From<Trigger> for wire::Trigger {
    fn from(t: Trigger) -> Self {
        match t {
            Trigger::Manual => Self::Manual,
            Trigger::Schedule => Self::Schedule,
            Trigger::Backfill => Self::Backfill,
            Trigger::Event => Self::Event,
            Trigger::Webhook => Self::Webhook,
            Trigger::Workflow => Self::Workflow,
        }
    }
}

impl From<AuditAction> for wire::AuditAction {
    fn from(a: AuditAction) -> Self {
        match a {
            AuditAction::Cancelled => Self::Cancelled,
            AuditAction::Retried => Self::Retried,
        }
    }
}

impl From<Role> for wire::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => Self::Admin,
            Role::Operator => Self::Operator,
            Role::Viewer => Self::Viewer,
            Role::Worker => Self::Worker,
            Role::Publisher => Self::Publisher,
        }
    }
}

/// A wire status a filter names, as the state's (none for `Unknown`).
pub fn execution_status(s: wire::ExecutionStatus) -> Option<ExecutionStatus> {
    Some(match s {
        wire::ExecutionStatus::Queued => ExecutionStatus::Queued,
        wire::ExecutionStatus::Running => ExecutionStatus::Running,
        wire::ExecutionStatus::Succeeded => ExecutionStatus::Succeeded,
        wire::ExecutionStatus::Failed => ExecutionStatus::Failed,
        wire::ExecutionStatus::Cancelled => ExecutionStatus::Cancelled,
        _ => return None,
    })
}

/// A wire trigger a filter names, as the state's (none for `Unknown`).
pub fn trigger(t: wire::Trigger) -> Option<Trigger> {
    Some(match t {
        wire::Trigger::Manual => Trigger::Manual,
        wire::Trigger::Schedule => Trigger::Schedule,
        wire::Trigger::Backfill => Trigger::Backfill,
        wire::Trigger::Event => Trigger::Event,
        wire::Trigger::Webhook => Trigger::Webhook,
        wire::Trigger::Workflow => Trigger::Workflow,
        _ => return None,
    })
}

/// A wire role, as the state's (none for `Unknown`).
pub fn role(r: wire::Role) -> Option<Role> {
    Some(match r {
        wire::Role::Admin => Role::Admin,
        wire::Role::Operator => Role::Operator,
        wire::Role::Viewer => Role::Viewer,
        wire::Role::Worker => Role::Worker,
        wire::Role::Publisher => Role::Publisher,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_and_the_wire_spell_every_value_alike() {
        fn same<A: serde::Serialize, B: serde::Serialize>(a: A, b: B) {
            assert_eq!(serde_json::to_value(a).ok(), serde_json::to_value(b).ok());
        }
        for s in [
            ExecutionStatus::Queued,
            ExecutionStatus::Running,
            ExecutionStatus::Succeeded,
            ExecutionStatus::Failed,
            ExecutionStatus::Cancelled,
        ] {
            same(s, wire::ExecutionStatus::from(s));
            assert_eq!(execution_status(s.into()), Some(s));
        }
        for t in
            [Trigger::Manual, Trigger::Schedule, Trigger::Backfill, Trigger::Event, Trigger::Webhook, Trigger::Workflow]
        {
            same(t, wire::Trigger::from(t));
            assert_eq!(trigger(t.into()), Some(t));
        }
        for r in Role::ALL {
            same(r, wire::Role::from(r));
            assert_eq!(role(r.into()), Some(r));
        }
        for a in [
            AttemptStatus::Running,
            AttemptStatus::Succeeded,
            AttemptStatus::Failed,
            AttemptStatus::TimedOut,
            AttemptStatus::Lost,
            AttemptStatus::Cancelled,
            AttemptStatus::Released,
        ] {
            same(a, wire::AttemptStatus::from(a));
        }
        for t in [
            TaskStatus::Pending,
            TaskStatus::Running,
            TaskStatus::Retrying,
            TaskStatus::Succeeded,
            TaskStatus::Failed,
            TaskStatus::Skipped,
            TaskStatus::Cancelled,
        ] {
            same(t, wire::TaskStatus::from(t));
        }
        for a in [AuditAction::Cancelled, AuditAction::Retried] {
            same(a, wire::AuditAction::from(a));
        }
    }
}
