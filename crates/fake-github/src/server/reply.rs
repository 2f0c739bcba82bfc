//! The fake's answers as hyper builds them, and what it reads of a request's token: shared by
//! the API and the `/_fake/` controls.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::Response;
use serde_json::Value as Json;

pub(super) type Reply = Response<Full<Bytes>>;

pub(super) fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert("content-type", value);
    }
    response
}

pub(super) fn json_reply(status: u16, value: Json) -> Reply {
    reply(status, "application/json", value.to_string().into_bytes())
}

/// The token of an `Authorization: token T` or `Bearer T` header, if any.
pub(super) fn token_of(authorization: &str) -> Option<String> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (["token", "bearer"].contains(&scheme.to_ascii_lowercase().as_str()) && !token.is_empty())
        .then(|| token.to_owned())
}
