//! The tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663) of
//! `2026-07-28`: a tool that supports tasks runs in the background when
//! the request's client capabilities name the extension; the call answers
//! at once with a `CreateTaskResult` and the client polls `tasks/get`
//! (which inlines the result or error when done), answers questions with
//! `tasks/update` (`input_required` with `inputRequests`) and may
//! `tasks/cancel`. Without the extension a tool that only runs as a task
//! is `-32021`; one that may, runs inline.
//!
//! Tasks live in this process: a task runs on the instance that created
//! it and is known there only (a `tasks/get` elsewhere is "unknown task",
//! `-32602`). Each belongs to the caller that created it, expires
//! [`TTL_MS`] after its last change, and their number is bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use futures::future::BoxFuture;
use once_cell::sync::Lazy;
use serde_json::{json, Map, Value};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::protocol::{code, RpcError};

/// The extension's identifier in `capabilities.extensions`.
pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// How long a task stays readable after its last change.
pub const TTL_MS: u64 = 3_600_000;

/// How often a client should poll `tasks/get`.
const POLL_INTERVAL_MS: u64 = 500;

/// Most tasks kept in this process (all callers together).
const MAX_TASKS: usize = 1000;

/// Most tasks one caller may have in this process: no caller can take
/// every place for an hour.
const MAX_TASKS_PER_OWNER: usize = 100;

/// Whether a tool runs as a task.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Support {
    /// As a task when the client supports the extension, inline otherwise.
    Optional,
    /// Only as a task: `-32021` for a client without the extension.
    Required,
}

/// One task.
struct Task {
    owner: String,
    status: &'static str,
    created_at: String,
    updated_at: String,
    expires: Instant,
    result: Option<Value>,
    error: Option<Value>,
    /// Questions not answered yet, by key (`inputRequests`).
    pending: Map<String, Value>,
    /// Answers received, by key.
    answers: Map<String, Value>,
    /// Wakes the task's handler when the last pending question is answered.
    wake: Arc<Notify>,
    abort: Option<AbortHandle>,
}

impl Task {
    fn touch(&mut self) {
        self.updated_at = now_text();
        self.expires = Instant::now() + Duration::from_millis(TTL_MS);
    }

    fn terminal(&self) -> bool {
        matches!(self.status, "completed" | "failed" | "cancelled")
    }

    /// The task's fields as `tasks/get` (with `detail`) or `CreateTaskResult` show them.
    fn view(&self, id: &str, detail: bool) -> Value {
        let mut v = json!({
            "taskId": id,
            "status": self.status,
            "createdAt": self.created_at,
            "lastUpdatedAt": self.updated_at,
            "ttlMs": TTL_MS,
            "pollIntervalMs": POLL_INTERVAL_MS,
        });
        if detail {
            if let Some(r) = &self.result {
                v["result"] = r.clone();
            }
            if let Some(e) = &self.error {
                v["error"] = e.clone();
            }
            if self.status == "input_required" {
                v["inputRequests"] = Value::Object(self.pending.clone());
            }
        }
        v
    }
}

static TASKS: Lazy<Mutex<HashMap<String, Task>>> = Lazy::new(|| Mutex::new(HashMap::new()));

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn busy() -> RpcError {
    RpcError::new(StatusCode::OK, code::INTERNAL, "too many tasks; try again later")
}

/// True when client capabilities `caps` name the extension.
pub fn declared(caps: &Value) -> bool {
    caps.get("extensions").and_then(|e| e.get(EXTENSION)).is_some_and(|c| !c.is_null())
}

/// `-32021` naming the extension.
pub fn missing_extension() -> RpcError {
    RpcError::bad(
        code::MISSING_CAPABILITY,
        format!("this request needs the client capability extensions[{EXTENSION:?}]"),
    )
    .with_data(json!({"requiredCapabilities": {"extensions": {EXTENSION: {}}}}))
}

/// What a task's handler uses to ask its client (through `tasks/get` and
/// `tasks/update`).
#[derive(Clone)]
pub struct Handle {
    id: String,
}

impl Handle {
    /// Parks the task in `input_required` with `questions` (key →
    /// `{method, params}`) until every one is answered; the answers by key.
    pub async fn ask(&self, questions: Map<String, Value>) -> Result<Map<String, Value>, RpcError> {
        let wake = {
            let mut tasks = TASKS.lock().map_err(|_| busy())?;
            let task = tasks.get_mut(&self.id).ok_or_else(busy)?;
            // an answer to an earlier question under the same key is not this one's
            for k in questions.keys() {
                task.answers.remove(k);
            }
            task.pending.extend(questions.clone());
            task.status = "input_required";
            task.touch();
            task.wake.clone()
        };
        let waiting = async {
            loop {
                let notified = wake.notified();
                {
                    let mut tasks = TASKS.lock().map_err(|_| busy())?;
                    let task = tasks.get_mut(&self.id).ok_or_else(busy)?;
                    if questions.keys().all(|k| task.answers.contains_key(k)) {
                        task.status = "working";
                        task.touch();
                        return Ok(questions
                            .keys()
                            .filter_map(|k| task.answers.get(k).map(|a| (k.clone(), a.clone())))
                            .collect());
                    }
                }
                notified.await;
            }
        };
        // a client that never answers: the task fails when it would expire
        tokio::time::timeout(Duration::from_millis(TTL_MS), waiting)
            .await
            .map_err(|_| RpcError::new(StatusCode::OK, code::INTERNAL, "no answer came before the task expired"))?
    }
}

/// Forgets the tasks expired at `at`, stopping those that still run (one
/// waiting for answers that never come would otherwise wait forever).
fn forget_expired(tasks: &mut HashMap<String, Task>, at: Instant) {
    tasks.retain(|_, t| {
        let live = t.expires > at;
        if let (false, Some(a)) = (live, &t.abort) {
            a.abort();
        }
        live
    });
}

/// Starts `work` as a task of `owner`; the `CreateTaskResult`. The task
/// is readable before this returns (a `tasks/get` right after finds it).
pub fn spawn(owner: &str, work: impl FnOnce(Handle) -> BoxFuture<'static, Result<Value, RpcError>>) -> Result<Value, RpcError> {
    let id = hex::encode(rand::random::<[u8; 16]>());
    let now = now_text();
    let created = {
        let mut tasks = TASKS.lock().map_err(|_| busy())?;
        let at = Instant::now();
        forget_expired(&mut tasks, at);
        if tasks.len() >= MAX_TASKS || tasks.values().filter(|t| t.owner == owner).count() >= MAX_TASKS_PER_OWNER {
            return Err(busy());
        }
        let task = Task {
            owner: owner.to_string(),
            status: "working",
            created_at: now.clone(),
            updated_at: now,
            expires: at + Duration::from_millis(TTL_MS),
            result: None,
            error: None,
            pending: Map::new(),
            answers: Map::new(),
            wake: Arc::new(Notify::new()),
            abort: None,
        };
        let view = task.view(&id, false);
        tasks.insert(id.clone(), task);
        view
    };
    let running = work(Handle { id: id.clone() });
    let task_id = id.clone();
    let join = tokio::spawn(async move {
        let outcome = running.await;
        if let Ok(mut tasks) = TASKS.lock() {
            if let Some(t) = tasks.get_mut(&task_id).filter(|t| !t.terminal()) {
                match outcome {
                    Ok(result) => {
                        t.status = "completed";
                        t.result = Some(result);
                    }
                    Err(e) => {
                        t.status = "failed";
                        t.error = Some(e.body()["error"].clone());
                    }
                }
                t.pending.clear();
                t.touch();
            }
        }
    });
    if let Ok(mut tasks) = TASKS.lock() {
        if let Some(t) = tasks.get_mut(&id) {
            // a tasks/cancel that came before the handle was kept
            if t.status == "cancelled" {
                join.abort();
            } else {
                t.abort = Some(join.abort_handle());
            }
        }
    }
    let mut result = created;
    result["resultType"] = json!("task");
    Ok(result)
}

/// The task id of a `tasks/*` request.
fn task_id(params: &Map<String, Value>) -> Result<&str, RpcError> {
    params
        .get("taskId")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::new(StatusCode::OK, code::INVALID_PARAMS, "params.taskId is required"))
}

fn unknown(id: &str) -> RpcError {
    RpcError::new(StatusCode::OK, code::INVALID_PARAMS, format!("unknown task {id:?}"))
}

/// Runs `f` on task `params.taskId` of `owner` (another caller's is unknown).
fn with_task<T>(owner: &str, params: &Map<String, Value>, f: impl FnOnce(&str, &mut Task) -> T) -> Result<T, RpcError> {
    let id = task_id(params)?;
    let mut tasks = TASKS.lock().map_err(|_| busy())?;
    let task = tasks
        .get_mut(id)
        .filter(|t| t.owner == owner && t.expires > Instant::now())
        .ok_or_else(|| unknown(id))?;
    Ok(f(id, task))
}

/// `tasks/get`, `tasks/update` and `tasks/cancel` for `owner` whose
/// request declared client capabilities `caps`; `None` for other methods.
pub fn dispatch(method: &str, params: &Map<String, Value>, owner: &str, caps: &Value) -> Option<Result<Value, RpcError>> {
    if !matches!(method, "tasks/get" | "tasks/update" | "tasks/cancel") {
        return None;
    }
    if !declared(caps) {
        return Some(Err(missing_extension()));
    }
    Some(match method {
        "tasks/get" => with_task(owner, params, |id, t| t.view(id, true)),
        "tasks/update" => {
            let given = match params.get("inputResponses") {
                Some(Value::Object(g)) => g.clone(),
                _ => {
                    return Some(Err(RpcError::new(
                        StatusCode::OK,
                        code::INVALID_PARAMS,
                        "params.inputResponses must be an object",
                    )))
                }
            };
            with_task(owner, params, |_, t| {
                // answers to questions asked; anything else is ignored
                for (k, v) in given.into_iter().filter(|(_, v)| v.is_object()) {
                    if t.pending.remove(&k).is_some() {
                        t.answers.insert(k, v);
                    }
                }
                if t.pending.is_empty() && t.status == "input_required" {
                    t.status = "working";
                }
                t.touch();
                t.wake.notify_one();
                json!({})
            })
        }
        _ => with_task(owner, params, |_, t| {
            if !t.terminal() {
                if let Some(a) = t.abort.take() {
                    a.abort();
                }
                t.status = "cancelled";
                t.pending.clear();
                t.touch();
            }
            json!({})
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    /// Polls `tasks/get` until the task's status is `want`.
    async fn wait_for(owner: &str, id: &str, want: &str) -> Value {
        let caps = json!({"extensions": {EXTENSION: {}}});
        for _ in 0..500 {
            let t = dispatch("tasks/get", &params(json!({"taskId": id})), owner, &caps)
                .unwrap()
                .unwrap();
            if t["status"] == want {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {id} never became {want}");
    }

    #[tokio::test]
    async fn a_task_asks_and_finishes_for_its_owner_only() {
        let caps = json!({"extensions": {EXTENSION: {}}});
        let created = spawn("alice", |h| {
            Box::pin(async move {
                let mut q = Map::new();
                q.insert("a".into(), json!({"method": "elicitation/create", "params": {}}));
                q.insert("b".into(), json!({"method": "elicitation/create", "params": {}}));
                let answers = h.ask(q).await?;
                Ok(json!({"content": [{"type": "text", "text": answers.len().to_string()}]}))
            })
        })
        .unwrap();
        assert_eq!(created["resultType"], "task");
        let id = created["taskId"].as_str().unwrap().to_string();
        let get = |o: &str| dispatch("tasks/get", &params(json!({"taskId": id})), o, &caps).unwrap();
        assert_eq!(
            get("bob").unwrap_err().code,
            code::INVALID_PARAMS,
            "another caller's task is unknown"
        );
        wait_for("alice", &id, "input_required").await;
        let update = |r: Value| dispatch("tasks/update", &params(json!({"taskId": id, "inputResponses": r})), "alice", &caps).unwrap();
        update(json!({"a": {"action": "accept"}, "zzz": {}})).unwrap();
        let partial = get("alice").unwrap();
        assert_eq!(
            (partial["status"].as_str(), partial["inputRequests"].as_object().map(|m| m.len())),
            (Some("input_required"), Some(1))
        );
        update(json!({"b": {"action": "accept"}})).unwrap();
        let done = wait_for("alice", &id, "completed").await;
        assert_eq!(
            (done["status"].as_str(), done["result"]["content"][0]["text"].as_str()),
            (Some("completed"), Some("2"))
        );
        assert_eq!(
            dispatch("tasks/cancel", &params(json!({"taskId": id})), "alice", &caps)
                .unwrap()
                .unwrap(),
            json!({})
        );
        assert_eq!(
            get("alice").unwrap()["status"],
            "completed",
            "cancelling a finished task changes nothing"
        );
    }

    #[tokio::test]
    async fn an_expired_task_is_forgotten_and_stopped() {
        let (tx, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let created = spawn("carol", move |_| {
            Box::pin(async move {
                let _dropped_when_stopped = tx;
                std::future::pending::<()>().await;
                Ok(json!({}))
            })
        })
        .unwrap();
        let id = created["taskId"].as_str().unwrap().to_string();
        tokio::task::yield_now().await;
        // on a map of its own: other tests' tasks share the process table
        let task = TASKS.lock().unwrap().remove(&id).unwrap();
        let mut mine = HashMap::from([(id, task)]);
        forget_expired(&mut mine, Instant::now() + Duration::from_millis(TTL_MS + 1));
        assert!(mine.is_empty());
        // the aborted handler dropped its end of the channel
        assert!(tokio::time::timeout(Duration::from_secs(5), &mut stopped)
            .await
            .is_ok_and(|r| r.is_err()));
    }

    #[tokio::test]
    async fn one_caller_cannot_take_every_place() {
        let parked = |_| -> BoxFuture<'static, Result<Value, RpcError>> { Box::pin(std::future::pending()) };
        let ids: Vec<String> = (0..MAX_TASKS_PER_OWNER)
            .map(|_| spawn("dave", parked).unwrap()["taskId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(spawn("dave", parked).unwrap_err().code, code::INTERNAL, "over the caller's share");
        let other = spawn("erin", parked).unwrap();
        let mut tasks = TASKS.lock().unwrap();
        for id in ids.iter().chain([other["taskId"].as_str().unwrap().to_string()].iter()) {
            if let Some(t) = tasks.remove(id) {
                t.abort.inspect(AbortHandle::abort);
            }
        }
    }

    #[tokio::test]
    async fn a_question_asked_again_waits_for_a_new_answer() {
        let caps = json!({"extensions": {EXTENSION: {}}});
        let created = spawn("frank", |h| {
            Box::pin(async move {
                let q = || Map::from_iter([("k".to_string(), json!({"method": "elicitation/create", "params": {}}))]);
                let first = h.ask(q()).await?;
                let second = h.ask(q()).await?;
                Ok(json!({"first": first["k"], "second": second["k"]}))
            })
        })
        .unwrap();
        let id = created["taskId"].as_str().unwrap().to_string();
        let update = |n: u32| {
            dispatch(
                "tasks/update",
                &params(json!({"taskId": id, "inputResponses": {"k": {"n": n}}})),
                "frank",
                &caps,
            )
            .unwrap()
            .unwrap()
        };
        wait_for("frank", &id, "input_required").await;
        update(1);
        // the second question must not be answered by the first answer
        wait_for("frank", &id, "input_required").await;
        update(2);
        let done = wait_for("frank", &id, "completed").await;
        assert_eq!(done["result"], json!({"first": {"n": 1}, "second": {"n": 2}}));
    }

    #[tokio::test]
    async fn tasks_methods_need_the_extension_and_a_known_id() {
        let e = dispatch("tasks/get", &params(json!({"taskId": "x"})), "alice", &json!({}))
            .unwrap()
            .unwrap_err();
        assert_eq!((e.code, e.status), (code::MISSING_CAPABILITY, StatusCode::BAD_REQUEST));
        let caps = json!({"extensions": {EXTENSION: {}}});
        let e = dispatch("tasks/cancel", &params(json!({"taskId": "nope"})), "alice", &caps)
            .unwrap()
            .unwrap_err();
        assert_eq!(e.code, code::INVALID_PARAMS);
        assert!(dispatch("tasks/list", &Map::new(), "alice", &caps).is_none());
        let created = spawn("alice", |_| {
            Box::pin(async { Err(RpcError::new(StatusCode::OK, code::INTERNAL, "boom")) })
        })
        .unwrap();
        let failed = wait_for("alice", created["taskId"].as_str().unwrap(), "failed").await;
        assert_eq!(
            (failed["status"].as_str(), failed["error"]["code"].as_i64()),
            (Some("failed"), Some(code::INTERNAL))
        );
        assert!(failed.get("result").is_none());
    }
}
