//! A stand-in for GitHub's OAuth app endpoints and REST API, serving exactly
//! the documented shapes (GitHub cannot be reached from here).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::json;

/// The person the next login will be.
#[derive(Clone)]
pub struct GhUser {
    pub login: String,
    pub id: u64,
    pub email: Option<String>,
}

#[derive(Clone, Default)]
struct Fx {
    next: Arc<Mutex<Option<GhUser>>>,
    codes: Arc<Mutex<HashMap<String, GhUser>>>,
    tokens: Arc<Mutex<HashMap<String, GhUser>>>,
}

pub struct GithubFixture {
    pub port: u16,
    fx: Fx,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GithubFixture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn authorize(State(fx): State<Fx>, Query(q): Query<HashMap<String, String>>) -> Response {
    let user = fx.next.lock().unwrap().clone().expect("set the next user first");
    let code = format!("ghcode{}", rand::random::<u64>());
    fx.codes.lock().unwrap().insert(code.clone(), user);
    let mut u = url::Url::parse(&q["redirect_uri"]).unwrap();
    u.query_pairs_mut().append_pair("code", &code).append_pair("state", &q["state"]);
    Redirect::to(u.as_str()).into_response()
}

async fn access_token(State(fx): State<Fx>, headers: HeaderMap, Form(f): Form<HashMap<String, String>>) -> Response {
    assert_eq!(f.get("client_secret").map(String::as_str), Some("gh-secret"));
    let user = fx.codes.lock().unwrap().remove(&f["code"]);
    let Some(user) = user else {
        return Json(json!({"error": "bad_verification_code"})).into_response();
    };
    let token = format!("gho_{}", rand::random::<u64>());
    fx.tokens.lock().unwrap().insert(token.clone(), user);
    if headers.get("accept").is_some_and(|a| a.to_str().unwrap_or("").contains("json")) {
        Json(json!({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"})).into_response()
    } else {
        format!("access_token={token}&scope=read%3Auser&token_type=bearer").into_response()
    }
}

fn who(fx: &Fx, headers: &HeaderMap) -> Option<GhUser> {
    let t = headers.get("authorization")?.to_str().ok()?.split_once(' ')?.1.to_string();
    fx.tokens.lock().unwrap().get(&t).cloned()
}

async fn user(State(fx): State<Fx>, headers: HeaderMap) -> Response {
    match who(&fx, &headers) {
        Some(u) => Json(json!({"login": u.login, "id": u.id, "email": u.email, "name": u.login})).into_response(),
        None => (axum::http::StatusCode::UNAUTHORIZED, Json(json!({"message": "Bad credentials"}))).into_response(),
    }
}

async fn emails(State(fx): State<Fx>, headers: HeaderMap) -> Response {
    match who(&fx, &headers) {
        Some(u) => {
            Json(json!([{"email": format!("{}@users.example", u.login), "primary": true, "verified": true, "visibility": "private"}]))
                .into_response()
        }
        None => axum::http::StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn orgs(State(fx): State<Fx>, headers: HeaderMap) -> Response {
    match who(&fx, &headers) {
        Some(_) => Json(json!([{"login": "acme", "id": 1}])).into_response(),
        None => axum::http::StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn teams(State(fx): State<Fx>, headers: HeaderMap) -> Response {
    match who(&fx, &headers) {
        Some(_) => Json(json!([{"slug": "ops", "organization": {"login": "acme"}}])).into_response(),
        None => axum::http::StatusCode::UNAUTHORIZED.into_response(),
    }
}

impl GithubFixture {
    pub async fn start() -> GithubFixture {
        let fx = Fx::default();
        let app = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .route("/api/user", get(user))
            .route("/api/user/emails", get(emails))
            .route("/api/user/orgs", get(orgs))
            .route("/api/user/teams", get(teams))
            .with_state(fx.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            axum::serve(l, app).await.unwrap();
        });
        GithubFixture { port, fx, task }
    }

    /// Who logs in next.
    pub fn next_user(&self, login: &str, email: Option<&str>) {
        *self.fx.next.lock().unwrap() = Some(GhUser {
            login: login.into(),
            id: 1000 + login.len() as u64,
            email: email.map(String::from),
        });
    }

    /// Env for portcullis to log in through this fixture.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let base = format!("http://127.0.0.1:{}", self.port);
        vec![
            ("OAUTH_LOGIN_PROVIDER", "github".into()),
            ("GITHUB_CLIENT_ID", "gh-client".into()),
            ("GITHUB_CLIENT_SECRET", "gh-secret".into()),
            ("GITHUB_AUTHORIZE_URL", format!("{base}/login/oauth/authorize")),
            ("GITHUB_TOKEN_URL", format!("{base}/login/oauth/access_token")),
            ("GITHUB_API_URL", format!("{base}/api")),
        ]
    }
}
