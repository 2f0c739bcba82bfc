//! What a GraphQL request does, read the way GitHub reads it: by a GraphQL parser
//! (`apollo-parser`), not by looking for words.
//!
//! A request is a read only when its document parses, holds only operations and fragments, no
//! mutation or subscription anywhere, and the operation that runs (the one `operationName`
//! names, else the only one) is a query. Anything else is a write: a hand-made scan can be
//! fooled by what GraphQL's lexer treats as a comment or a string (a `#` comment ends at CR as
//! well as LF; `\"""` does not end a block string), and a write taken for a read is a wrong
//! answer later.

use apollo_parser::cst::{self, CstNode};
use apollo_parser::{Parser, SyntaxKind};

/// Deeper than any document gh sends; the parser stops (with an error) past it.
const RECURSION_LIMIT: usize = 256;

/// More tokens than any document gh sends; a longer one is not read (and so is a write).
const TOKEN_LIMIT: usize = 100_000;

/// What running a GraphQL request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// A query: it only reads.
    Query {
        /// It asks for `search(...)`, whose results span repositories.
        searches: bool,
    },
    /// A mutation, the only kind of operation in the document.
    Mutation {
        /// The name of its first top-level field (`createIssue`), past an alias.
        first_field: Option<String>,
    },
    /// A write whose effects cannot be told: a subscription, a query beside a mutation, a
    /// document that does not parse or names an operation it does not hold.
    Unknown,
}

impl Operation {
    /// Whether the request only reads.
    pub fn is_query(&self) -> bool {
        matches!(self, Operation::Query { .. })
    }
}

/// What `document` does when GitHub runs the operation `operation_name` of it (`None`: the
/// request names none, so the document must hold exactly one).
pub fn operation(document: &str, operation_name: Option<&str>) -> Operation {
    let tree = Parser::new(document)
        .recursion_limit(RECURSION_LIMIT)
        .token_limit(TOKEN_LIMIT)
        .parse();
    if tree.errors().next().is_some() {
        return Operation::Unknown;
    }
    let mut operations = Vec::new();
    for definition in tree.document().definitions() {
        match definition {
            cst::Definition::OperationDefinition(op) => operations.push(op),
            cst::Definition::FragmentDefinition(_) => {}
            // Type system definitions are not executable: GitHub refuses the request.
            _ => return Operation::Unknown,
        }
    }
    let kind = |op: &cst::OperationDefinition| match op.operation_type() {
        None => Kind::Query,
        Some(t) if t.query_token().is_some() => Kind::Query,
        Some(t) if t.mutation_token().is_some() => Kind::Mutation,
        Some(_) => Kind::Other,
    };
    let chosen = match operation_name {
        Some(wanted) => operations
            .iter()
            .find(|op| op.name().is_some_and(|n| text(n.syntax()) == wanted)),
        None if operations.len() == 1 => operations.first(),
        None => None,
    };
    let Some(chosen) = chosen else {
        return Operation::Unknown;
    };
    let all_queries = operations.iter().all(|op| kind(op) == Kind::Query);
    match kind(chosen) {
        Kind::Query if all_queries => Operation::Query {
            searches: asks_for_search(tree.document().syntax()),
        },
        Kind::Mutation if operations.len() == 1 => Operation::Mutation {
            first_field: first_field(chosen),
        },
        _ => Operation::Unknown,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Query,
    Mutation,
    Other,
}

/// A node's text without the whitespace the parser keeps around names.
fn text(node: &apollo_parser::SyntaxNode) -> String {
    node.text().to_string().trim().to_owned()
}

/// Whether any field anywhere in the document (its fragments included) is `search`.
fn asks_for_search(root: &apollo_parser::SyntaxNode) -> bool {
    root.descendants()
        .filter(|node| node.kind() == SyntaxKind::FIELD)
        .filter_map(cst::Field::cast)
        .any(|field| field.name().is_some_and(|n| text(n.syntax()) == "search"))
}

/// The first top-level field of an operation (`c: addComment(...)` gives `addComment`).
fn first_field(op: &cst::OperationDefinition) -> Option<String> {
    op.selection_set()?
        .selections()
        .find_map(|selection| match selection {
            cst::Selection::Field(field) => field.name().map(|n| text(n.syntax())),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(document: &str) -> bool {
        operation(document, None).is_query()
    }

    #[test]
    fn queries_and_fragments_read() {
        assert!(query("query { viewer { login } }"));
        assert!(query("  # comment\n{ viewer { login } }"));
        assert!(query(
            "query Q($n: String!) { repository(name: $n) { id } }"
        ));
        assert!(query(
            "fragment f on Repository { name } query R { repository(owner: \"o\", name: \"r\") { ...f } }"
        ));
        assert!(query(
            "query { search(query: \"mutation\") { issueCount } }"
        ));
        assert!(query(
            "query Q($a: String = \"mutation {\") { viewer { login } }"
        ));
        assert!(query("# mutation { x }\nquery { a }"));
        assert!(query("query { a(text: \"\"\"block } mutation {\"\"\") }"));
    }

    #[test]
    fn anything_else_is_a_write() {
        for document in [
            "mutation { addStar(input: {starrableId: \"x\"}) { clientMutationId } }",
            "subscription { x }",
            "query A { x } mutation B { y }",
            "query { viewer { login } } mutation { deleteIssue(input: {}) { clientMutationId } }",
            "fragment f on X { a } mutation M { m { ...f } }",
            "type Query { a: Int }",
            "query { a",
            "",
            "query A { a } query B { b }",
        ] {
            assert!(!query(document), "{document:?} is not a read");
        }
    }

    #[test]
    fn a_comment_ends_at_a_carriage_return_too() {
        let document = "query UserCurrent { viewer { login } }\n#\rmutation M { deleteIssue(input: {}) { clientMutationId } }";
        assert!(!operation(document, Some("M")).is_query());
        assert!(!operation(document, Some("UserCurrent")).is_query());
        assert!(!operation(document, None).is_query());
    }

    #[test]
    fn an_escaped_quote_does_not_end_a_block_string() {
        let document =
            "query Q { a(t: \"\"\" \\\"\"\" } mutation M { deleteIssue { x } } \"\"\") }";
        assert_eq!(
            operation(document, None),
            Operation::Query { searches: false },
            "the mutation is inside the string"
        );
        let escaped_then_closed =
            "query Q { a(t: \"\"\" \\\"\"\" \"\"\") } mutation M { deleteIssue { x } }";
        assert_eq!(
            operation(escaped_then_closed, Some("Q")),
            Operation::Unknown
        );
    }

    #[test]
    fn the_operation_that_runs_is_the_one_named() {
        let two = "query A { a } query B { b }";
        assert!(operation(two, Some("B")).is_query());
        assert!(!operation(two, Some("C")).is_query(), "names none of them");
        assert!(!operation(two, None).is_query(), "which one is not said");
    }

    #[test]
    fn a_mutation_tells_its_first_field() {
        assert_eq!(
            operation(
                "mutation M($a: X!) { c: mergePullRequest(input: $a) { x } other { y } }",
                None
            ),
            Operation::Mutation {
                first_field: Some("mergePullRequest".into())
            }
        );
    }

    #[test]
    fn searches_are_found_in_fragments_too() {
        assert_eq!(
            operation(
                "fragment s on Query { search(query: \"x\", type: ISSUE) { issueCount } } query { ...s }",
                None
            ),
            Operation::Query { searches: true }
        );
        assert_eq!(
            operation(
                "query { repository(owner: \"search\") { searchable } }",
                None
            ),
            Operation::Query { searches: false }
        );
    }

    proptest::proptest! {
        /// Whatever bytes arrive, the answer is a verdict, never a panic.
        #[test]
        fn any_text_gets_a_verdict(document in ".{0,200}") {
            let _ = operation(&document, None);
        }
    }
}
