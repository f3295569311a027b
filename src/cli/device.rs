//! The device authorization grant (RFC 8628) from the client's side, as
//! pure parts: reading the authorization and token endpoint answers, and
//! the polling state machine (interval, `slow_down`, expiry, back-off).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::credentials::TokenResponse;

/// Default polling interval when the server sends none (RFC 8628 §3.2).
pub const DEFAULT_INTERVAL_SECS: u64 = 5;
/// `slow_down` adds this to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_SECS: u64 = 5;
/// Back-off cap after connection failures.
pub const MAX_BACKOFF_SECS: u64 = 60;

/// The device authorization response (RFC 8628 §3.2).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct DeviceAuthorization {
    /// Secret the CLI polls with.
    pub device_code: String,
    /// What the person types.
    pub user_code: String,
    /// Where the person goes.
    pub verification_uri: String,
    /// The same, with the code filled in.
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    /// Seconds the codes stay valid.
    pub expires_in: u64,
    /// Minimum seconds between polls.
    #[serde(default)]
    pub interval: Option<u64>,
}

/// What one poll of the token endpoint said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PollAnswer {
    /// Approved: the tokens.
    Tokens(TokenResponse),
    /// `authorization_pending`.
    Pending,
    /// `slow_down`.
    SlowDown,
    /// `expired_token`.
    Expired,
    /// `access_denied`, with the server's description.
    Denied(String),
    /// No usable answer this time (connection failure, 5xx, 429): back off and retry.
    Transient(String),
    /// Any other error: stop.
    Error(String),
}

/// An OAuth error body's `error` and `error_description`.
pub fn oauth_error(body: &str) -> Option<(String, Option<String>)> {
    let v: Value = serde_json::from_str(body).ok()?;
    let code = v.get("error")?.as_str()?.to_string();
    let description = v.get("error_description").and_then(Value::as_str).map(str::to_string);
    Some((code, description))
}

/// "code: description", or whichever of the two there is.
pub fn describe(code: &str, description: Option<&str>) -> String {
    match description.filter(|d| !d.is_empty()) {
        Some(d) => format!("{code}: {d}"),
        None => code.to_string(),
    }
}

/// A short text for a non-JSON error body.
pub fn raw_body(status: u16, body: &str) -> String {
    let text: String = body.trim().chars().take(200).collect();
    if text.is_empty() {
        format!("HTTP {status} with an empty body")
    } else {
        format!("HTTP {status}: {text}")
    }
}

/// Classifies a token endpoint answer to a device_code poll.
pub fn classify(status: u16, body: &str) -> PollAnswer {
    if (200..300).contains(&status) {
        return match serde_json::from_str::<TokenResponse>(body) {
            Ok(t) if !t.access_token.is_empty() => PollAnswer::Tokens(t),
            Ok(_) => PollAnswer::Error("the token response has an empty access_token".into()),
            Err(e) => PollAnswer::Error(format!("the token response is not usable ({e})")),
        };
    }
    match oauth_error(body) {
        Some((code, description)) => match code.as_str() {
            "authorization_pending" => PollAnswer::Pending,
            "slow_down" => PollAnswer::SlowDown,
            "expired_token" => PollAnswer::Expired,
            "access_denied" => PollAnswer::Denied(description.unwrap_or_else(|| "the request was denied".into())),
            _ if status >= 500 || status == 429 => PollAnswer::Transient(describe(&code, description.as_deref())),
            _ => PollAnswer::Error(describe(&code, description.as_deref())),
        },
        None if status >= 500 || status == 429 => PollAnswer::Transient(raw_body(status, body)),
        None => PollAnswer::Error(raw_body(status, body)),
    }
}

/// What to do after a poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Wait this long, then poll again.
    Wait(Duration),
    /// Logged in.
    Done(TokenResponse),
    /// Give up with this reason.
    Fail(String),
}

/// The polling state: the current interval and the codes' lifetime.
#[derive(Clone, Debug)]
pub struct Poller {
    interval: Duration,
    backoff: Option<Duration>,
    expires_in: Duration,
    last_transient: Option<String>,
}

impl Poller {
    /// Starts from the authorization response's `interval` and `expires_in`.
    pub fn new(auth: &DeviceAuthorization) -> Self {
        Self {
            interval: Duration::from_secs(auth.interval.filter(|i| *i > 0).unwrap_or(DEFAULT_INTERVAL_SECS)),
            backoff: None,
            expires_in: Duration::from_secs(auth.expires_in),
            last_transient: None,
        }
    }

    /// The current polling interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    fn wait(&self, elapsed: Duration) -> Step {
        let next = self.backoff.unwrap_or(self.interval);
        if elapsed + next >= self.expires_in {
            let mut reason = "the code expired before it was approved".to_string();
            if let Some(t) = &self.last_transient {
                reason.push_str(&format!(" (last error: {t})"));
            }
            return Step::Fail(reason);
        }
        Step::Wait(next)
    }

    /// The step after `answer`, `elapsed` after the codes were issued.
    pub fn step(&mut self, answer: PollAnswer, elapsed: Duration) -> Step {
        if !matches!(answer, PollAnswer::Transient(_)) {
            self.backoff = None;
        }
        match answer {
            PollAnswer::Tokens(t) => Step::Done(t),
            PollAnswer::Pending => self.wait(elapsed),
            PollAnswer::SlowDown => {
                self.interval += Duration::from_secs(SLOW_DOWN_SECS);
                self.wait(elapsed)
            }
            PollAnswer::Transient(reason) => {
                // RFC 8628 §3.5: reduce the polling frequency after a failed request.
                let doubled = self.backoff.unwrap_or(self.interval) * 2;
                self.backoff = Some(doubled.min(Duration::from_secs(MAX_BACKOFF_SECS)).max(self.interval));
                self.last_transient = Some(reason);
                self.wait(elapsed)
            }
            PollAnswer::Expired => Step::Fail("the code expired before it was approved".into()),
            PollAnswer::Denied(reason) => Step::Fail(format!("access denied: {reason}")),
            PollAnswer::Error(reason) => Step::Fail(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(interval: Option<u64>, expires_in: u64) -> DeviceAuthorization {
        DeviceAuthorization {
            device_code: "d".into(),
            user_code: "BCDF-GHJK".into(),
            verification_uri: "https://auth.example.com/device".into(),
            verification_uri_complete: None,
            expires_in,
            interval,
        }
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn token_endpoint_answers_are_classified() {
        let ok = classify(
            200,
            r#"{"access_token":"a","token_type":"Bearer","expires_in":1800,"refresh_token":"r","scope":"admin"}"#,
        );
        assert!(matches!(ok, PollAnswer::Tokens(t) if t.refresh_token.as_deref() == Some("r") && t.expires_in == Some(1800)));
        assert_eq!(
            classify(400, r#"{"error":"authorization_pending","error_description":"waiting"}"#),
            PollAnswer::Pending
        );
        assert_eq!(classify(400, r#"{"error":"slow_down"}"#), PollAnswer::SlowDown);
        assert_eq!(classify(400, r#"{"error":"expired_token"}"#), PollAnswer::Expired);
        assert_eq!(
            classify(400, r#"{"error":"access_denied","error_description":"not on the list"}"#),
            PollAnswer::Denied("not on the list".into())
        );
        assert_eq!(
            classify(400, r#"{"error":"invalid_grant","error_description":"used"}"#),
            PollAnswer::Error("invalid_grant: used".into())
        );
        assert_eq!(
            classify(401, r#"{"error":"invalid_client"}"#),
            PollAnswer::Error("invalid_client".into())
        );
        assert_eq!(classify(502, "Bad Gateway"), PollAnswer::Transient("HTTP 502: Bad Gateway".into()));
        assert_eq!(classify(429, r#"{"error":"slow"}"#), PollAnswer::Transient("slow".into()));
        assert_eq!(classify(404, ""), PollAnswer::Error("HTTP 404 with an empty body".into()));
        assert!(matches!(classify(200, "{}"), PollAnswer::Error(_)));
    }

    #[test]
    fn pending_waits_the_interval_and_slow_down_adds_five_seconds() {
        let mut p = Poller::new(&auth(Some(5), 600));
        assert_eq!(p.step(PollAnswer::Pending, S(5)), Step::Wait(S(5)));
        assert_eq!(p.step(PollAnswer::SlowDown, S(10)), Step::Wait(S(10)));
        assert_eq!(p.step(PollAnswer::Pending, S(20)), Step::Wait(S(10)), "slow_down is permanent");
        assert_eq!(p.step(PollAnswer::SlowDown, S(30)), Step::Wait(S(15)));
        assert_eq!(p.interval(), S(15));
    }

    #[test]
    fn a_missing_interval_defaults_to_five_seconds() {
        let mut p = Poller::new(&auth(None, 600));
        assert_eq!(p.step(PollAnswer::Pending, S(0)), Step::Wait(S(5)));
        let mut p = Poller::new(&auth(Some(0), 600));
        assert_eq!(p.step(PollAnswer::Pending, S(0)), Step::Wait(S(5)));
    }

    #[test]
    fn terminal_answers_stop_polling() {
        let mut p = Poller::new(&auth(Some(5), 600));
        let t = TokenResponse {
            access_token: "a".into(),
            ..Default::default()
        };
        assert_eq!(p.step(PollAnswer::Tokens(t.clone()), S(5)), Step::Done(t));
        assert!(matches!(p.step(PollAnswer::Expired, S(5)), Step::Fail(r) if r.contains("expired")));
        assert!(matches!(p.step(PollAnswer::Denied("no".into()), S(5)), Step::Fail(r) if r == "access denied: no"));
        assert!(matches!(p.step(PollAnswer::Error("invalid_client".into()), S(5)), Step::Fail(r) if r == "invalid_client"));
    }

    #[test]
    fn polling_stops_when_the_codes_expire() {
        let mut p = Poller::new(&auth(Some(5), 30));
        assert_eq!(p.step(PollAnswer::Pending, S(20)), Step::Wait(S(5)));
        assert!(matches!(p.step(PollAnswer::Pending, S(25)), Step::Fail(r) if r.contains("expired")));
    }

    #[test]
    fn transient_failures_back_off_then_recover() {
        let mut p = Poller::new(&auth(Some(5), 600));
        assert_eq!(p.step(PollAnswer::Transient("refused".into()), S(5)), Step::Wait(S(10)));
        assert_eq!(p.step(PollAnswer::Transient("refused".into()), S(15)), Step::Wait(S(20)));
        assert_eq!(p.step(PollAnswer::Transient("refused".into()), S(35)), Step::Wait(S(40)));
        assert_eq!(p.step(PollAnswer::Transient("refused".into()), S(75)), Step::Wait(S(60)), "capped");
        assert_eq!(
            p.step(PollAnswer::Pending, S(135)),
            Step::Wait(S(5)),
            "an answer resets the back-off"
        );
        let mut p = Poller::new(&auth(Some(5), 20));
        assert!(matches!(p.step(PollAnswer::Transient("refused".into()), S(12)), Step::Fail(r) if r.contains("last error: refused")));
    }
}
