//! `POST /graphql`.

mod parse;
mod resolve;

use serde_json::{json, Value as Json};

use crate::data::World;

/// A GraphQL answer and the type of operation it was (`query`, `mutation`).
pub struct Answer {
    /// The response body.
    pub body: Json,
    /// `query`, `mutation` or `subscription`; `None` if the request could not be read.
    pub operation: Option<String>,
}

/// Answers a GraphQL request body (`{"query": ..., "variables": ..., "operationName": ...}`).
pub fn answer(request: &[u8], world: &mut World) -> Answer {
    let error = |message: String| Answer {
        body: json!({"errors": [{"message": message}]}),
        operation: None,
    };
    let Ok(request) = serde_json::from_slice::<Json>(request) else {
        return error("request body is not JSON".into());
    };
    let Some(query) = request.get("query").and_then(Json::as_str) else {
        return error("no query".into());
    };
    let document = match parse::parse(query) {
        Ok(d) => d,
        Err(e) => return error(format!("cannot parse the query: {e}")),
    };
    let wanted = request.get("operationName").and_then(Json::as_str);
    let index = document
        .operations
        .iter()
        .position(|op| wanted.is_none() || op.name.as_deref() == wanted)
        .unwrap_or(0);
    let Some(kind) = document.operations.get(index).map(|op| op.kind.clone()) else {
        return error("no operation".into());
    };
    let variables = request.get("variables").cloned().unwrap_or_default();
    let data = resolve::Resolver::new(&document, &variables, world).operation(index);
    Answer {
        body: json!({ "data": data }),
        operation: Some(kind),
    }
}
