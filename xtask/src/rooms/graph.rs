//! The arrows between one crate's modules, and the circles they close.

use std::collections::{BTreeMap, BTreeSet};

use super::source::{expand, parent_of, statements, Module};

/// The arrows between a crate's modules, the root and re-exports left out.
pub(super) fn edges(modules: &BTreeMap<String, Module>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, module) in modules {
        if path.is_empty() || module.test_only {
            continue;
        }
        for target in references(path, module) {
            let Some(to) = resolve(modules, &target, 0) else {
                continue;
            };
            if to.is_empty() || &to == path || modules.get(&to).is_some_and(|m| m.test_only) {
                continue;
            }
            edges.entry(path.clone()).or_default().insert(to);
        }
    }
    edges
}

/// Every path from the crate root that `module`'s code names, re-exports aside.
pub(super) fn references(path: &str, module: &Module) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for stmt in statements(&module.code) {
        let words: Vec<&str> = stmt.split_whitespace().collect();
        let is_reexport = words
            .iter()
            .position(|w| *w == "use")
            .is_some_and(|at| words[..at].iter().any(|w| w.starts_with("pub")));
        let squeezed: String = stmt.split_whitespace().collect::<Vec<_>>().join(" ");
        let chars: Vec<char> = squeezed.chars().collect();
        let is_use = words.contains(&"use");
        let mut i = 0;
        while i < chars.len() {
            let boundary = i == 0
                || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == ':');
            if !boundary {
                i += 1;
                continue;
            }
            let word: String = chars[i..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .collect();
            if word.is_empty() {
                i += 1;
                continue;
            }
            let after = i + word.chars().count();
            let is_path = chars.get(after) == Some(&':') && chars.get(after + 1) == Some(&':');
            let base: Option<Vec<String>> = match word.as_str() {
                _ if !is_path => None,
                "crate" => Some(Vec::new()),
                "super" => Some(split(&parent_of(path))),
                "self" => Some(split(path)),
                w if module.children.contains(w) => {
                    let mut base = split(path);
                    base.push(w.to_string());
                    Some(base)
                }
                _ => None,
            };
            let Some(mut base) = base else {
                i = after.max(i + 1);
                continue;
            };
            if is_reexport {
                i = after;
                continue;
            }
            // The rest of the path, or the `use` tree that follows it.
            let start = if matches!(word.as_str(), "crate" | "super" | "self") {
                after + 2
            } else {
                after
            };
            let rest: String = chars[start..]
                .iter()
                .take_while(|c| {
                    c.is_alphanumeric() || matches!(c, '_' | ':' | '{' | '}' | ',' | ' ' | '*')
                })
                .filter(|c| **c != ' ')
                .collect();
            let rest = if is_use {
                rest
            } else {
                rest.split(['{', ',', '}']).next().unwrap_or("").to_string()
            };
            // `super::super::x`
            let mut rest = rest.as_str();
            while let Some(tail) = rest.strip_prefix("super::") {
                base = split(&parent_of(&base.join("::")));
                rest = tail;
            }
            let trees = expand(rest);
            if trees.is_empty() {
                out.push(base.clone());
            }
            for tail in trees {
                let mut full = base.clone();
                full.extend(tail);
                out.push(full);
            }
            i = start + 1;
        }
    }
    out
}

pub(super) fn split(path: &str) -> Vec<String> {
    if path.is_empty() {
        Vec::new()
    } else {
        path.split("::").map(str::to_string).collect()
    }
}

/// The module a path from the crate root lands in: its longest module prefix, followed through
/// that module's re-exports when the next segment is one.
pub(super) fn resolve(
    modules: &BTreeMap<String, Module>,
    path: &[String],
    hops: usize,
) -> Option<String> {
    let mut found = 0;
    for n in 1..=path.len() {
        if modules.contains_key(&path[..n].join("::")) {
            found = n;
        }
    }
    let module = path[..found].join("::");
    if let (Some(next), Some(m)) = (path.get(found), modules.get(&module)) {
        if let Some(target) = m.reexports.get(next) {
            if hops < 8 {
                let base = if target.first().is_some_and(|s| s == "crate") {
                    target[1..].to_vec()
                } else if target.first().is_some_and(|s| s == "self") {
                    let mut b = split(&module);
                    b.extend(target[1..].iter().cloned());
                    b
                } else if target.first().is_some_and(|s| s == "super") {
                    let mut b = split(&parent_of(&module));
                    b.extend(target[1..].iter().cloned());
                    b
                } else if m.children.contains(&target[0]) {
                    let mut b = split(&module);
                    b.extend(target.iter().cloned());
                    b
                } else {
                    // Re-exported from another crate.
                    return Some(module);
                };
                let mut full = base;
                full.extend(path[found + 1..].iter().cloned());
                return resolve(modules, &full, hops + 1);
            }
        }
    }
    Some(module)
}

/// Strongly connected groups of more than one module (Tarjan's algorithm).
pub(super) fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(tos) = s.edges.get(v) {
            for w in tos {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                group.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                s.out.push(group);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.out
}
