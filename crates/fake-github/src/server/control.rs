//! Answers that are not GitHub's API: the test controls (`/_fake/...`), for other processes,
//! and the OIDC issuer of GitHub Actions.

use std::time::Duration;

use serde_json::json;

use super::reply::{json_reply, reply, token_of, Reply};
use crate::{oidc, rest, Fault, Shared};

/// The OIDC issuer's answers, for its three paths; `None` for any other path.
pub(super) fn issuer(
    shared: &Shared,
    path: &str,
    query: &str,
    authorization: &str,
) -> Option<Reply> {
    let issuer = format!("http://127.0.0.1:{}", shared.port);
    let json = |status: u16, value: serde_json::Value| {
        reply(status, "application/json", value.to_string().into_bytes())
    };
    match path {
        oidc::DISCOVERY_PATH => Some(json(200, oidc::discovery(&issuer))),
        oidc::JWKS_PATH => Some(json(200, oidc::jwks())),
        oidc::TOKEN_PATH => {
            // As GitHub: the job's request token as a bearer token, the audience in the query.
            if token_of(authorization).as_deref() != Some(oidc::REQUEST_TOKEN) {
                return Some(json(401, json!({"message": "Bad credentials"})));
            }
            let Some(audience) = rest::param(query, "audience") else {
                return Some(json(400, json!({"message": "audience is required"})));
            };
            let mut claims = shared
                .lock()
                .actions_job
                .clone()
                .unwrap_or_else(|| oidc::Claims::job(&issuer, "o/r", ""));
            claims.aud = audience;
            Some(match oidc::mint(&claims, oidc::Signer::Issuer) {
                Ok(jwt) => json(200, json!({"value": jwt})),
                Err(e) => json(500, json!({"message": e.to_string()})),
            })
        }
        _ => None,
    }
}

pub(super) fn control(shared: &Shared, what: &str, query: &str) -> Reply {
    let param = |name: &str| rest::param(query, name);
    let ok = |value: serde_json::Value| json_reply(200, value);
    // Those that change the world or touch the webhook, without the state lock.
    match what {
        "issue" => {
            let repo = param("repo").unwrap_or_else(|| "o/r".into());
            let title = param("title").unwrap_or_else(|| "new issue".into());
            let number = shared.change(|world| world.add_issue(&repo, &title, ""));
            return ok(json!({"number": number}));
        }
        "webhook" => {
            let url = param("url").filter(|url| !url.is_empty());
            let secret = param("secret").unwrap_or_default();
            shared.hooks.set(url.as_deref(), secret.as_bytes());
            return ok(json!({"url": url}));
        }
        "deliveries" => {
            let listed: Vec<serde_json::Value> = shared
                .hooks
                .deliveries()
                .iter()
                .map(|d| {
                    json!({"id": d.id, "event": d.event, "action": d.payload.get("action"),
                           "redelivery": d.redelivery, "status": d.status, "error": d.error,
                           "answered": d.answered_at.is_some()})
                })
                .collect();
            return ok(json!(listed));
        }
        _ => {}
    }
    let mut state = shared.lock();
    match what {
        "stats" => {
            let charged = state.log.iter().filter(|r| r.charged).count();
            ok(json!({"requests": state.log.len(), "charged": charged}))
        }
        "reset" => {
            state.log.clear();
            ok(json!({"ok": true}))
        }
        "latency" => {
            let ms = param("ms").and_then(|v| v.parse().ok()).unwrap_or(0);
            state.latency = Duration::from_millis(ms);
            ok(json!({"latency_ms": ms}))
        }
        "fault" => {
            state.fault = match param("kind").as_deref() {
                Some("server_error") => Some(Fault::ServerError),
                Some("rate_limited") => Some(Fault::RateLimited),
                _ => None,
            };
            ok(json!({"fault": format!("{:?}", state.fault)}))
        }
        _ => reply(404, "text/plain", b"unknown control\n".to_vec()),
    }
}
