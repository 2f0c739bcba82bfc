//! `POST /graphql`.

mod parse;
mod resolve;

use serde_json::{json, Value as Json};

use crate::data::World;

/// The operation of a request body (`{"query": ..., "operationName": ...}`) that is answered.
fn pick<'d>(
    document: &'d parse::Document,
    request: &Json,
) -> Option<(usize, &'d parse::Operation)> {
    let wanted = request.get("operationName").and_then(Json::as_str);
    document
        .operations
        .iter()
        .enumerate()
        .find(|(_, op)| wanted.is_none() || op.name.as_deref() == wanted)
        .or_else(|| document.operations.first().map(|op| (0, op)))
}

/// The type (`query`, `mutation`) and name of the operation a request body asks for, without
/// answering it: what the request log records even when a fault answers instead.
pub fn describe(request: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(request) = serde_json::from_slice::<Json>(request) else {
        return (None, None);
    };
    let Some(Ok(document)) = request
        .get("query")
        .and_then(Json::as_str)
        .map(parse::parse)
    else {
        return (None, None);
    };
    pick(&document, &request).map_or((None, None), |(_, op)| {
        (Some(op.kind.clone()), op.name.clone())
    })
}

/// Answers a GraphQL request body (`{"query": ..., "variables": ..., "operationName": ...}`)
/// with the response body, `{"data": ...}` or `{"errors": [...]}`.
pub fn answer(request: &[u8], world: &mut World) -> Json {
    let error = |message: String| json!({"errors": [{"message": message}]});
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
    let Some((index, _)) = pick(&document, &request) else {
        return error("no operation".into());
    };
    let variables = request.get("variables").cloned().unwrap_or_default();
    let data = resolve::Resolver::new(&document, &variables, world).operation(index);
    json!({ "data": data })
}
