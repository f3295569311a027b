//! The `requestState` of `InputRequiredResult` (SEP-2322, `2026-07-28`):
//! the answers a client gave in earlier rounds, sealed (AES-GCM with the
//! instance key, so every instance on the same `SECRET_KEY` opens it) and
//! bound to the caller, the request (method and tool, prompt or URI) and an
//! expiry. The client only echoes it; a changed, foreign or stale state is
//! refused, so a handler can trust what it finds inside.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::secrets::{SealError, Sealer};

/// How long a client has to answer a round.
const LIFETIME_SECS: u64 = 600;

/// What a sealed state holds.
#[derive(Serialize, Deserialize)]
struct State {
    /// [`Binding::subject`] of the request that issued it.
    sub: String,
    /// Expiry, Unix seconds.
    exp: u64,
    /// Answers so far, by the handler's key.
    answers: Map<String, Value>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// What a request's state belongs to.
#[derive(Clone)]
pub struct Binding {
    sealer: Sealer,
    subject: String,
}

impl Binding {
    /// The binding of request `method` on `name` (tool, prompt or URI) by
    /// the caller whose owner id is `owner`.
    pub fn new(sealer: Sealer, owner: &str, method: &str, name: &str) -> Self {
        Self {
            sealer,
            subject: format!("{owner}\n{method}\n{name}"),
        }
    }

    /// Seals `answers` for the next round.
    pub fn seal(&self, answers: &Map<String, Value>) -> Result<String, SealError> {
        let state = State {
            sub: self.subject.clone(),
            exp: now() + LIFETIME_SECS,
            answers: answers.clone(),
        };
        self.sealer.seal(&serde_json::to_string(&state).unwrap_or_default())
    }

    /// The answers inside `sealed`, if we sealed it for this very request
    /// and it has not expired.
    pub fn open(&self, sealed: &str) -> Option<Map<String, Value>> {
        let plain = self.sealer.open(sealed).ok()?;
        let state: State = serde_json::from_str(&plain).ok()?;
        (state.sub == self.subject && state.exp >= now()).then_some(state.answers)
    }
}

/// The `InputRequiredResult` asking for `requests` (key → `{method, params}`).
pub fn input_required(requests: Map<String, Value>, state: String) -> Value {
    json!({"resultType": "input_required", "inputRequests": requests, "requestState": state})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(owner: &str, name: &str) -> Binding {
        Binding::new(Sealer::new([7; 32]), owner, "tools/call", name)
    }

    #[test]
    fn a_state_opens_only_for_the_request_that_issued_it() {
        let mut answers = Map::new();
        answers.insert("step1".into(), json!({"action": "accept"}));
        let sealed = binding("alice", "t").seal(&answers).unwrap();
        assert_eq!(binding("alice", "t").open(&sealed), Some(answers));
        assert!(binding("bob", "t").open(&sealed).is_none(), "another caller");
        assert!(binding("alice", "other").open(&sealed).is_none(), "another tool");
        let mut tampered = sealed.clone().into_bytes();
        let i = tampered.len() - 3;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        assert!(binding("alice", "t").open(&String::from_utf8(tampered).unwrap()).is_none());
        assert!(binding("alice", "t").open("not a state").is_none());
    }
}
