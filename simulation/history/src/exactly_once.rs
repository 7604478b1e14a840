//! Exactly-once effects: each operation carries a unique id, and after the run the effects with
//! that id are counted where they landed (executions created per trigger, audit entries per
//! cancel).
//!
//! - an operation the client was told succeeded must have exactly one effect;
//! - one whose outcome the client never learned may have one or none, never more;
//! - one the client was told failed must have none.

use std::collections::BTreeMap;

/// What the client was told about an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Told {
    Succeeded,
    Failed,
    Unknown,
}

/// One operation whose effect count is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub id: String,
    pub told: Told,
    pub effects: usize,
}

/// Compares what clients were told with the effects counted per id; effects with ids no client
/// sent are reported with [`Told::Failed`] (nothing asked for them).
pub fn check(told: &BTreeMap<String, Told>, effects: &BTreeMap<String, usize>) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (id, told) in told {
        let count = effects.get(id).copied().unwrap_or(0);
        let ok = match told {
            Told::Succeeded => count == 1,
            Told::Unknown => count <= 1,
            Told::Failed => count == 0,
        };
        if !ok {
            violations.push(Violation { id: id.clone(), told: *told, effects: count });
        }
    }
    for (id, count) in effects {
        if !told.contains_key(id) && *count > 0 {
            violations.push(Violation { id: id.clone(), told: Told::Failed, effects: *count });
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map<V: Clone>(pairs: &[(&str, V)]) -> BTreeMap<String, V> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn counts_follow_what_clients_were_told() {
        let told = map(&[("a", Told::Succeeded), ("b", Told::Unknown), ("c", Told::Unknown), ("d", Told::Failed)]);
        let effects = map(&[("a", 1), ("b", 1)]);
        assert!(check(&told, &effects).is_empty());
    }

    #[test]
    fn duplicates_losses_and_strays_are_reported() {
        let told = map(&[
            ("twice", Told::Succeeded),
            ("lost", Told::Succeeded),
            ("maybe", Told::Unknown),
            ("no", Told::Failed),
        ]);
        let effects = map(&[("twice", 2), ("maybe", 2), ("no", 1), ("stray", 1)]);
        let ids: Vec<String> = check(&told, &effects).into_iter().map(|v| v.id).collect();
        assert_eq!(ids, ["lost", "maybe", "no", "twice", "stray"]);
    }
}
