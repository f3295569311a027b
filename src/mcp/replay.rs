//! Resumability of a request's SSE stream (2025-11-25 Streamable HTTP,
//! "Resumability and Redelivery", SEP-1699): every event of a session's
//! POST stream gets an id `{stream}-{n}` (`stream` is 128 random bits, so
//! ids cannot be guessed; `n` counts from the priming event's 0), and the
//! events are kept here so that a client whose stream was closed (by the
//! server, as `test_reconnection` does, or by the network) can `GET /mcp`
//! with `Last-Event-ID` and receive what followed, the result included.
//!
//! The buffer is in this process: a stream resumes on the instance that
//! ran its request (the one the client was connected to). It is bounded:
//! [`MAX_STREAMS`] streams, [`MAX_EVENTS`] events and [`MAX_BYTES`] per
//! stream (the oldest go first), [`MAX_TOTAL_BYTES`] in all (the least
//! recently active streams go first), each kept [`KEEP`] after its last event;
//! events up to the id a client resumes from are delivered and dropped.
//! Only the session and owner that opened a stream may resume it, once at
//! a time.

use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::watch;

/// Streams kept on this instance, at most (the least recently active go first).
const MAX_STREAMS: usize = 1024;

/// Events kept per stream, at most: a request's progress, logs and
/// questions are a handful; the result is the last.
const MAX_EVENTS: usize = 256;

/// Bytes of events kept per stream, at most.
const MAX_BYTES: usize = 1024 * 1024;

/// Bytes of events kept for all streams together, at most: without it,
/// [`MAX_STREAMS`] full streams would hold a gigabyte. Over it, the least
/// recently active streams go first.
const MAX_TOTAL_BYTES: usize = 64 * 1024 * 1024;

/// How long a stream is kept after its last event: a client reconnects
/// within seconds ([`RETRY_MS`]); a few minutes covers a slow network.
pub const KEEP: Duration = Duration::from_secs(300);

/// The `retry:` the priming event gives: how soon a client reconnects
/// after the stream closes.
pub const RETRY_MS: u64 = 1000;

/// Who may resume a stream: the session it belongs to and the session's owner.
#[derive(Clone, Debug, PartialEq)]
pub struct Owner {
    /// `Mcp-Session-Id`.
    pub session: String,
    /// The caller's owner id (`Caller::hash`).
    pub owner: String,
}

/// One stream's kept events.
struct Kept {
    owner: Owner,
    /// `(n, event)`, oldest first.
    events: VecDeque<(u64, Bytes)>,
    bytes: usize,
    /// False once nothing more will be added (result sent or work stopped).
    live: bool,
    /// A resumption is reading this stream now.
    resuming: bool,
    touched: Instant,
    /// Signals a new event or the end of the stream to its resumption.
    changed: watch::Sender<()>,
}

static STREAMS: LazyLock<Mutex<HashMap<String, Kept>>> = LazyLock::new(Mutex::default);

fn streams() -> MutexGuard<'static, HashMap<String, Kept>> {
    STREAMS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The id of event `n` of `stream`.
fn event_id(stream: &str, n: u64) -> String {
    format!("{stream}-{n}")
}

/// `(stream, n)` of an event id of ours; `None` for anything else.
fn parse_id(id: &str) -> Option<(&str, u64)> {
    let (stream, n) = id.trim().rsplit_once('-')?;
    let ours = stream.len() == 32 && stream.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    ours.then_some(())?;
    Some((stream, n.parse().ok()?))
}

/// Drops the least recently active streams other than `keep` until all
/// together hold at most `limit` bytes of events.
fn evict_over(all: &mut HashMap<String, Kept>, keep: &str, limit: usize) {
    let mut total: usize = all.values().map(|k| k.bytes).sum();
    while total > limit {
        let Some(oldest) = all
            .iter()
            .filter(|(s, _)| s.as_str() != keep)
            .min_by_key(|(_, k)| k.touched)
            .map(|(s, _)| s.clone())
        else {
            break;
        };
        if let Some(gone) = all.remove(&oldest) {
            total -= gone.bytes;
            gone.changed.send_replace(());
        }
    }
}

/// Writes a stream's events, as the request's handler produces them, both
/// to the client and to the buffer; dropping it ends the stream.
pub struct Recorder {
    stream: String,
    next: u64,
}

impl Recorder {
    /// Starts a stream `owner` may resume (making room under [`MAX_STREAMS`]).
    pub fn open(owner: Owner) -> Recorder {
        let stream = hex::encode(rand::random::<[u8; 16]>());
        let now = Instant::now();
        let mut all = streams();
        all.retain(|_, k| now.duration_since(k.touched) < KEEP);
        while all.len() >= MAX_STREAMS {
            let Some(oldest) = all.iter().min_by_key(|(_, k)| k.touched).map(|(s, _)| s.clone()) else {
                break;
            };
            all.remove(&oldest);
        }
        all.insert(
            stream.clone(),
            Kept {
                owner,
                events: VecDeque::new(),
                bytes: 0,
                live: true,
                resuming: false,
                touched: now,
                changed: watch::channel(()).0,
            },
        );
        Recorder { stream, next: 1 }
    }

    /// The priming event that opens the stream: its id (so that a client
    /// can resume before any message) and the `retry:` delay, no data.
    pub fn priming(&self) -> Bytes {
        Bytes::from(format!("id: {}\nretry: {RETRY_MS}\ndata: \n\n", event_id(&self.stream, 0)))
    }

    /// The next event, carrying `message`, kept for a resumption.
    pub fn push(&mut self, message: &Value) -> Bytes {
        let event = Bytes::from(format!(
            "id: {}\nevent: message\ndata: {message}\n\n",
            event_id(&self.stream, self.next)
        ));
        let mut all = streams();
        if let Some(k) = all.get_mut(&self.stream) {
            k.events.push_back((self.next, event.clone()));
            k.bytes += event.len();
            while k.events.len() > MAX_EVENTS || k.bytes > MAX_BYTES {
                let Some((_, old)) = k.events.pop_front() else {
                    break;
                };
                k.bytes -= old.len();
            }
            k.touched = Instant::now();
            k.changed.send_replace(());
        }
        evict_over(&mut all, &self.stream, MAX_TOTAL_BYTES);
        self.next += 1;
        event
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(k) = streams().get_mut(&self.stream) {
            k.live = false;
            k.changed.send_replace(());
        }
    }
}

/// A client reading a stream again from after the event it last received.
pub struct Resumption {
    stream: String,
    after: u64,
    changed: watch::Receiver<()>,
}

/// Resumes the stream of event id `last` for `owner`; `None` when the id
/// is not one of ours, the stream is gone, belongs to another session or
/// owner, or is being resumed already.
pub fn resume(last: &str, owner: &Owner) -> Option<Resumption> {
    let (stream, after) = parse_id(last)?;
    let mut all = streams();
    let k = all.get_mut(stream)?;
    if k.owner != *owner || k.resuming {
        return None;
    }
    k.resuming = true;
    // the client has what it names: those are not needed again
    while k.events.front().is_some_and(|(n, _)| *n <= after) {
        if let Some((_, old)) = k.events.pop_front() {
            k.bytes -= old.len();
        }
    }
    Some(Resumption {
        stream: stream.to_string(),
        after,
        changed: k.changed.subscribe(),
    })
}

impl Resumption {
    /// The events after those already given (waiting for new ones while
    /// the stream is live); `None` once the stream has ended and all were
    /// given, or it is gone.
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            {
                let all = streams();
                let k = all.get(&self.stream)?;
                let due: Vec<&(u64, Bytes)> = k.events.iter().filter(|(n, _)| *n > self.after).collect();
                if let Some((last, _)) = due.last() {
                    self.after = *last;
                    return Some(due.iter().flat_map(|(_, e)| e.iter().copied()).collect::<Vec<u8>>().into());
                }
                if !k.live {
                    return None;
                }
            }
            self.changed.changed().await.ok()?;
        }
    }
}

impl Drop for Resumption {
    fn drop(&mut self) {
        if let Some(k) = streams().get_mut(&self.stream) {
            k.resuming = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn owner(session: &str) -> Owner {
        Owner {
            session: session.into(),
            owner: "replay-test-owner".into(),
        }
    }

    /// The id of an event as written on the wire.
    fn id_of(event: &Bytes) -> String {
        let text = String::from_utf8_lossy(event);
        text.lines().find_map(|l| l.strip_prefix("id: ")).expect("an id line").to_string()
    }

    #[test]
    fn ids_are_unguessable_and_only_ours_parse() {
        let a = Recorder::open(owner("replay-ids"));
        let b = Recorder::open(owner("replay-ids"));
        assert_ne!(a.stream, b.stream);
        let priming = String::from_utf8_lossy(&a.priming()).to_string();
        assert_eq!(priming, format!("id: {}-0\nretry: {RETRY_MS}\ndata: \n\n", a.stream));
        assert_eq!(parse_id(&format!("{}-7", a.stream)), Some((a.stream.as_str(), 7)));
        for bad in [
            "",
            "7",
            "abc-1",
            &format!("{}-x", a.stream),
            &format!("{}-1", a.stream.to_uppercase()),
        ] {
            assert_eq!(parse_id(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_resumption_gets_what_followed_the_last_id_then_ends() {
        let mut rec = Recorder::open(owner("replay-resume"));
        let first = rec.push(&json!({"n": 1}));
        rec.push(&json!({"n": 2}));
        let other = Owner {
            owner: "someone-else".into(),
            ..owner("replay-resume")
        };
        assert!(resume(&id_of(&first), &other).is_none(), "another owner cannot resume");
        assert!(resume(&id_of(&first), &owner("replay-other-session")).is_none());
        let mut r = resume(&id_of(&first), &owner("replay-resume")).expect("the owner resumes");
        assert!(resume(&id_of(&first), &owner("replay-resume")).is_none(), "once at a time");
        let got = r.next().await.expect("the second event");
        assert!(String::from_utf8_lossy(&got).contains(r#"{"n":2}"#));
        assert!(!String::from_utf8_lossy(&got).contains(r#"{"n":1}"#), "the first was delivered");
        let waiting = tokio::spawn(async move {
            let later = r.next().await;
            (later, r.next().await)
        });
        rec.push(&json!({"n": 3}));
        drop(rec);
        let (later, end) = waiting.await.expect("the resumption");
        assert!(String::from_utf8_lossy(&later.expect("the third event")).contains(r#"{"n":3}"#));
        assert!(end.is_none(), "the stream ended");
    }

    #[test]
    fn all_streams_together_keep_a_bounded_number_of_bytes() {
        let kept = |touched: Instant, bytes: usize| Kept {
            owner: owner("replay-total"),
            events: VecDeque::from([(1, Bytes::from(vec![b'x'; bytes]))]),
            bytes,
            live: true,
            resuming: false,
            touched,
            changed: watch::channel(()).0,
        };
        let t = Instant::now();
        // on a map of its own: other tests' streams share the process table
        let mut all: HashMap<String, Kept> = (0..5).map(|i| (format!("s{i}"), kept(t + Duration::from_millis(i), 100))).collect();
        all.insert("new".into(), kept(t, 150));
        evict_over(&mut all, "new", 400);
        let mut left: Vec<&String> = all.keys().collect();
        left.sort();
        assert_eq!(
            left,
            ["new", "s3", "s4"],
            "the least recently active went first, never the one written"
        );
        evict_over(&mut all, "new", 10);
        assert_eq!(all.keys().collect::<Vec<_>>(), ["new"]);
    }

    #[test]
    fn a_stream_keeps_a_bounded_number_of_events() {
        let mut rec = Recorder::open(owner("replay-bound"));
        for n in 0..MAX_EVENTS + 10 {
            rec.push(&json!(n));
        }
        let all = streams();
        let k = all.get(&rec.stream).expect("kept");
        assert_eq!(k.events.len(), MAX_EVENTS);
        assert_eq!(k.events.front().map(|(n, _)| *n), Some(11), "the oldest went first");
        assert_eq!(k.bytes, k.events.iter().map(|(_, e)| e.len()).sum::<usize>());
    }
}
