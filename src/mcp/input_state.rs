//! The `requestState` of `InputRequiredResult` (SEP-2322, `2026-07-28`):
//! the answers a client gave in earlier rounds, sealed (AES-GCM with the
//! instance key, so every instance on the same `SECRET_KEY` opens it, and
//! its own associated data, so it never opens as a secret at rest) and
//! bound to the caller, the request (method, tool, prompt or URI, and a
//! hash of its arguments) and an expiry. The client only echoes it; a
//! changed, foreign or stale state is refused, and so is one replayed with
//! other arguments. What it proves is only that we asked these questions
//! for this very call: the client's `inputResponses` of the round still
//! override the sealed answers (`Peer::stateless`), so a handler must
//! treat every answer as the client's word, never as checked by us.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::secrets::{SealError, Sealer};

/// The associated data of a sealed state: a state must not open as an
/// OAuth signing key or any other secret sealed at rest, nor the reverse.
const PURPOSE: &[u8] = b"portcullis mcp request state";

/// Request parameters that change between rounds of one call, so they are
/// not part of what a state is bound to.
const PER_ROUND: [&str; 3] = ["_meta", "requestState", "inputResponses"];

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
    /// The binding of request `method` on `name` (tool, prompt or URI) with
    /// `params` by the caller whose owner id is `owner`. The parameters
    /// (less the per-round ones) are hashed in, so answers given to one
    /// call cannot be replayed to the same tool with other arguments.
    pub fn new(sealer: &Sealer, owner: &str, method: &str, name: &str, params: &Map<String, Value>) -> Self {
        Self {
            sealer: sealer.for_purpose(PURPOSE),
            subject: format!("{owner}\n{method}\n{name}\n{}", params_hash(params)),
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

/// Hex SHA-256 of `params` without [`PER_ROUND`], as JSON with every
/// object's keys sorted: a client may reorder keys between rounds.
fn params_hash(params: &Map<String, Value>) -> String {
    let call: Map<String, Value> = params
        .iter()
        .filter(|(k, _)| !PER_ROUND.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let canonical = serde_json::to_vec(&canonical(Value::Object(call))).unwrap_or_default();
    hex::encode(Sha256::digest(canonical))
}

/// `value` with every object's keys in sorted order (whatever order
/// serde_json's map keeps).
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: std::collections::BTreeMap<String, Value> = map.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
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
        with_args(owner, name, json!({"name": name, "arguments": {"a": 1}}))
    }

    fn with_args(owner: &str, name: &str, params: Value) -> Binding {
        let params = params.as_object().cloned().unwrap();
        Binding::new(&Sealer::new([7; 32]), owner, "tools/call", name, &params)
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

    #[test]
    fn a_state_does_not_open_for_other_arguments() {
        let params = json!({"name": "t", "arguments": {"path": "/a", "opts": {"x": 1, "y": [1, 2]}}});
        let sealed = with_args("alice", "t", params).seal(&Map::new()).unwrap();
        let other = json!({"name": "t", "arguments": {"path": "/b", "opts": {"x": 1, "y": [1, 2]}}});
        assert!(with_args("alice", "t", other).open(&sealed).is_none(), "other arguments");
        let no_args = json!({"name": "t"});
        assert!(with_args("alice", "t", no_args).open(&sealed).is_none(), "no arguments");
        // the next round: same call, keys reordered, per-round fields added
        let next = json!({
            "requestState": "v1:x", "inputResponses": {"k": {}}, "_meta": {"progressToken": 3},
            "arguments": {"opts": {"y": [1, 2], "x": 1}, "path": "/a"}, "name": "t",
        });
        assert_eq!(with_args("alice", "t", next).open(&sealed), Some(Map::new()));
    }

    #[test]
    fn a_state_is_not_a_secret_at_rest_nor_the_reverse() {
        let at_rest = Sealer::new([7; 32]);
        let sealed = binding("alice", "t").seal(&Map::new()).unwrap();
        assert!(at_rest.open(&sealed).is_err(), "a state opened as a secret at rest");
        let state = serde_json::to_string(&State {
            sub: binding("alice", "t").subject,
            exp: now() + 60,
            answers: Map::new(),
        })
        .unwrap();
        let forged = at_rest.seal(&state).unwrap();
        assert!(binding("alice", "t").open(&forged).is_none(), "a secret at rest opened as a state");
    }
}
