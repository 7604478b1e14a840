//! A register with versions: the model of a workflow as the Jepsen-style test uses it.
//!
//! Each write stores a new value and answers the version it became (1, 2, ...); a read answers
//! the latest version and value, or nothing before the first write. Versions make duplicates
//! visible: a write applied twice takes two versions, so the next write's answer skips one, which
//! no order of single applications explains.

/// What a client asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Input {
    Write(String),
    Read,
}

/// What it was answered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Output {
    Written {
        version: u64,
    },
    /// The latest (version, value), or `None` if nothing was written yet.
    Read(Option<(u64, String)>),
}

/// The sequential register.
#[derive(Debug, Clone, Copy, Default)]
pub struct Register;

impl crate::Model for Register {
    type State = Option<(u64, String)>;
    type Input = Input;
    type Output = Output;

    fn init(&self) -> Self::State {
        None
    }

    fn step(&self, state: &Self::State, input: &Input, output: Option<&Output>) -> Option<Self::State> {
        let next_version = state.as_ref().map_or(1, |(v, _)| v + 1);
        match (input, output) {
            (Input::Write(value), None) => Some(Some((next_version, value.clone()))),
            (Input::Write(value), Some(Output::Written { version })) if *version == next_version => {
                Some(Some((next_version, value.clone())))
            }
            (Input::Read, None) => Some(state.clone()),
            (Input::Read, Some(Output::Read(seen))) if seen == state => Some(state.clone()),
            _ => None,
        }
    }
}

/// One register operation as a line for reports: `[call, return] client N: write "v" -> version
/// 3`, times in seconds from nanoseconds.
pub fn describe(op: &crate::Op<Input, Output>) -> String {
    let secs = |ns: u64| format!("{:.4}s", ns as f64 / 1e9);
    let what = match (&op.input, &op.output) {
        (Input::Write(v), Some(Output::Written { version })) => format!("write {v:?} -> version {version}"),
        (Input::Write(v), None) => format!("write {v:?} -> unknown (no answer; may take effect any time later)"),
        (Input::Read, Some(Output::Read(Some((version, v))))) => format!("read -> version {version} {v:?}"),
        (Input::Read, Some(Output::Read(None))) => "read -> nothing written yet".to_string(),
        (input, output) => format!("{input:?} -> {output:?}"),
    };
    let ret = if op.output.is_some() { secs(op.ret) } else { "?".into() };
    format!("[{}, {ret}] client {}: {what}", secs(op.call), op.client)
}
