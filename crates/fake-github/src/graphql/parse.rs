//! A small GraphQL document parser: enough of the language for the documents gh sends.

use std::collections::BTreeMap;

/// A parsed document: its operations and named fragments.
#[derive(Debug, Default)]
pub struct Document {
    /// Operations in document order.
    pub operations: Vec<Operation>,
    /// Named fragments.
    pub fragments: BTreeMap<String, Fragment>,
}

/// `query`, `mutation` or `subscription`, with its selections.
#[derive(Debug)]
pub struct Operation {
    /// `query`, `mutation` or `subscription`.
    pub kind: String,
    /// The operation name, if any.
    pub name: Option<String>,
    /// Top-level selections.
    pub selections: Vec<Selection>,
}

/// `fragment Name on Type { ... }`.
#[derive(Debug)]
pub struct Fragment {
    /// The type condition.
    pub on: String,
    /// Its selections.
    pub selections: Vec<Selection>,
}

/// One item of a selection set.
#[derive(Debug, Clone)]
pub enum Selection {
    /// A field, possibly aliased, with arguments and sub-selections.
    Field(Field),
    /// `...Name`.
    Spread(String),
    /// `... on Type { ... }` (type optional).
    Inline(Option<String>, Vec<Selection>),
}

/// A field selection.
#[derive(Debug, Clone)]
pub struct Field {
    /// Response key: the alias, else the name.
    pub key: String,
    /// The schema field name.
    pub name: String,
    /// Arguments.
    pub args: BTreeMap<String, Value>,
    /// Sub-selections (empty for scalars).
    pub selections: Vec<Selection>,
}

/// An argument value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `$name`.
    Variable(String),
    /// A literal, as JSON.
    Literal(serde_json::Value),
    /// `{a: ..}`.
    Object(BTreeMap<String, Value>),
    /// `[..]`.
    List(Vec<Value>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Punct(char),
    Spread,
    Str(String),
    Num(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || c == ',' || c == '\u{feff}' {
            i += 1;
        } else if c == '#' {
            // A comment runs to the end of the line, and GraphQL ends lines at CR as at LF.
            while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                i += 1;
            }
        } else if c == '.' {
            if chars.get(i + 1) == Some(&'.') && chars.get(i + 2) == Some(&'.') {
                tokens.push(Token::Spread);
                i += 3;
            } else {
                return Err("stray '.'".into());
            }
        } else if "{}()[]:=@$!|&".contains(c) {
            tokens.push(Token::Punct(c));
            i += 1;
        } else if c == '"' {
            if chars.get(i + 1) == Some(&'"') && chars.get(i + 2) == Some(&'"') {
                let start = i + 3;
                let mut j = start;
                while j + 2 < chars.len() + 2
                    && !(chars.get(j) == Some(&'"')
                        && chars.get(j + 1) == Some(&'"')
                        && chars.get(j + 2) == Some(&'"'))
                {
                    if j >= chars.len() {
                        return Err("unterminated block string".into());
                    }
                    // `\"""` is a quote inside the block string, not its end.
                    j += match chars[j..] {
                        ['\\', '"', '"', '"', ..] => 4,
                        _ => 1,
                    };
                }
                tokens.push(Token::Str(chars[start..j].iter().collect()));
                i = j + 3;
            } else {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err("unterminated string".into());
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let e = chars.get(i).copied().unwrap_or('\\');
                            i += 1;
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                        }
                        other => s.push(other),
                    }
                }
                tokens.push(Token::Str(s));
            }
        } else if c == '-' || c.is_ascii_digit() {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            tokens.push(Token::Num(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Name(chars[start..i].iter().collect()));
        } else {
            return Err(format!("unexpected character {c:?}"));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Token::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{c}', found {:?}", self.peek()))
        }
    }

    fn name(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Name(n)) => Ok(n),
            other => Err(format!("expected a name, found {other:?}")),
        }
    }

    fn document(&mut self) -> Result<Document, String> {
        let mut doc = Document::default();
        while let Some(token) = self.peek().cloned() {
            match token {
                Token::Punct('{') => {
                    let selections = self.selection_set()?;
                    doc.operations.push(Operation {
                        kind: "query".into(),
                        name: None,
                        selections,
                    });
                }
                Token::Name(n) if n == "fragment" => {
                    self.pos += 1;
                    let name = self.name()?;
                    if self.name()? != "on" {
                        return Err("expected 'on'".into());
                    }
                    let on = self.name()?;
                    self.directives()?;
                    let selections = self.selection_set()?;
                    doc.fragments.insert(name, Fragment { on, selections });
                }
                Token::Name(kind) => {
                    self.pos += 1;
                    let name = match self.peek() {
                        Some(Token::Name(_)) => Some(self.name()?),
                        _ => None,
                    };
                    if self.eat('(') {
                        // Variable definitions: skip to the matching ')'.
                        let mut depth = 1;
                        while depth > 0 {
                            match self.next() {
                                Some(Token::Punct('(')) => depth += 1,
                                Some(Token::Punct(')')) => depth -= 1,
                                None => return Err("unterminated variables".into()),
                                _ => {}
                            }
                        }
                    }
                    self.directives()?;
                    let selections = self.selection_set()?;
                    doc.operations.push(Operation {
                        kind,
                        name,
                        selections,
                    });
                }
                other => return Err(format!("unexpected {other:?}")),
            }
        }
        Ok(doc)
    }

    fn directives(&mut self) -> Result<(), String> {
        while self.eat('@') {
            self.name()?;
            if self.peek() == Some(&Token::Punct('(')) {
                self.arguments()?;
            }
        }
        Ok(())
    }

    fn selection_set(&mut self) -> Result<Vec<Selection>, String> {
        self.expect('{')?;
        let mut out = Vec::new();
        while !self.eat('}') {
            match self.peek().cloned() {
                None => return Err("unterminated selection set".into()),
                Some(Token::Spread) => {
                    self.pos += 1;
                    match self.peek().cloned() {
                        Some(Token::Name(n)) if n == "on" => {
                            self.pos += 1;
                            let on = self.name()?;
                            self.directives()?;
                            out.push(Selection::Inline(Some(on), self.selection_set()?));
                        }
                        Some(Token::Name(_)) => {
                            let name = self.name()?;
                            self.directives()?;
                            out.push(Selection::Spread(name));
                        }
                        _ => {
                            self.directives()?;
                            out.push(Selection::Inline(None, self.selection_set()?));
                        }
                    }
                }
                Some(Token::Name(_)) => {
                    let first = self.name()?;
                    let (key, name) = if self.eat(':') {
                        (first, self.name()?)
                    } else {
                        (first.clone(), first)
                    };
                    let args = if self.peek() == Some(&Token::Punct('(')) {
                        self.arguments()?
                    } else {
                        BTreeMap::new()
                    };
                    self.directives()?;
                    let selections = if self.peek() == Some(&Token::Punct('{')) {
                        self.selection_set()?
                    } else {
                        Vec::new()
                    };
                    out.push(Selection::Field(Field {
                        key,
                        name,
                        args,
                        selections,
                    }));
                }
                Some(other) => return Err(format!("unexpected {other:?} in selection set")),
            }
        }
        Ok(out)
    }

    fn arguments(&mut self) -> Result<BTreeMap<String, Value>, String> {
        self.expect('(')?;
        let mut args = BTreeMap::new();
        while !self.eat(')') {
            let name = self.name()?;
            self.expect(':')?;
            args.insert(name, self.value()?);
        }
        Ok(args)
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.next() {
            Some(Token::Punct('$')) => Ok(Value::Variable(self.name()?)),
            Some(Token::Str(s)) => Ok(Value::Literal(serde_json::Value::String(s))),
            Some(Token::Num(n)) => Ok(Value::Literal(
                n.parse::<i64>()
                    .map(serde_json::Value::from)
                    .or_else(|_| n.parse::<f64>().map(serde_json::Value::from))
                    .map_err(|_| format!("bad number {n}"))?,
            )),
            Some(Token::Name(n)) => Ok(Value::Literal(match n.as_str() {
                "true" => serde_json::Value::Bool(true),
                "false" => serde_json::Value::Bool(false),
                "null" => serde_json::Value::Null,
                _ => serde_json::Value::String(n),
            })),
            Some(Token::Punct('[')) => {
                let mut items = Vec::new();
                while !self.eat(']') {
                    items.push(self.value()?);
                }
                Ok(Value::List(items))
            }
            Some(Token::Punct('{')) => {
                let mut fields = BTreeMap::new();
                while !self.eat('}') {
                    let name = self.name()?;
                    self.expect(':')?;
                    fields.insert(name, self.value()?);
                }
                Ok(Value::Object(fields))
            }
            other => Err(format!("unexpected {other:?} as a value")),
        }
    }
}

/// Parses a GraphQL document.
pub fn parse(text: &str) -> Result<Document, String> {
    let tokens = tokenize(text)?;
    Parser { tokens, pos: 0 }.document()
}

impl Value {
    /// The value with variables substituted, as JSON.
    pub fn resolve(&self, variables: &serde_json::Value) -> serde_json::Value {
        match self {
            Value::Variable(name) => variables.get(name).cloned().unwrap_or_default(),
            Value::Literal(v) => v.clone(),
            Value::Object(fields) => serde_json::Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.resolve(variables)))
                    .collect(),
            ),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(|v| v.resolve(variables)).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_gh_sends() {
        let doc = parse(
            r#"query PullRequestList($owner: String!, $repo: String!, $limit: Int!) {
                repository(owner: $owner, name: $repo) {
                    pullRequests(first: $limit, states: [OPEN], orderBy: {field: CREATED_AT, direction: DESC}) {
                        totalCount
                        nodes { ...pr, author { login } ... on PullRequest { isDraft } }
                    }
                }
            }
            fragment pr on PullRequest { number, title, "ignored": __typename }"#
                .replace("\"ignored\": ", "")
                .as_str(),
        );
        let doc = doc.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(doc.operations.len(), 1);
        assert_eq!(doc.operations[0].name.as_deref(), Some("PullRequestList"));
        assert!(doc.fragments.contains_key("pr"));
    }

    #[test]
    fn shorthand_and_mutations() {
        let doc = parse("{viewer{login}}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(doc.operations[0].kind, "query");
        let doc = parse("mutation { addStar(input:{starrableId:\"x\"}) { clientMutationId } }")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(doc.operations[0].kind, "mutation");
    }
}
