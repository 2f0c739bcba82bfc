//! One crate's source as the rooms check reads it: each file lexed (comments and string
//! contents blanked, `#[cfg(test)]` items left out) into a [`Module`] with its declarations.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Result;

/// One source file as the check sees it.
#[derive(Debug, Default)]
pub(super) struct Module {
    pub(super) file: PathBuf,
    /// Lines outside `#[cfg(test)]` items.
    pub(super) lines: usize,
    /// The code with comments, string contents and `#[cfg(test)]` items blanked out.
    pub(super) code: String,
    /// String literals outside tests, with their line.
    pub(super) strings: Vec<(usize, String)>,
    /// Modules it declares with `mod name;` (children in their own files).
    pub(super) children: BTreeSet<String>,
    /// Children declared under `#[cfg(test)]`: their files are tests.
    pub(super) test_children: BTreeSet<String>,
    /// Whether the whole file is test code (a `#[cfg(test)] mod x;` child).
    pub(super) test_only: bool,
    /// `pub use` lines: the name they export and the path it stands for.
    pub(super) reexports: BTreeMap<String, Vec<String>>,
}

/// Every module file of the crate whose `src` is `src`, by module path (`""` for the root).
pub(super) fn read_crate(src: &Path) -> Result<BTreeMap<String, Module>> {
    let mut modules = BTreeMap::new();
    let mut files = Vec::new();
    collect_files(src, &mut files)?;
    for file in files {
        let relative = file.strip_prefix(src).unwrap_or(&file);
        if relative.starts_with("bin") {
            continue;
        }
        let text = std::fs::read_to_string(&file)?;
        let mut module = read_module(&text);
        module.file = file.clone();
        modules.insert(module_path(relative), module);
    }
    // A child declared under #[cfg(test)] is test code, and so is everything below it.
    let tests: Vec<String> = modules
        .iter()
        .flat_map(|(path, m)| m.test_children.iter().map(move |c| join(path, c)))
        .collect();
    for (path, module) in &mut modules {
        if tests
            .iter()
            .any(|t| path == t || path.starts_with(&format!("{t}::")))
        {
            module.test_only = true;
        }
    }
    Ok(modules)
}

pub(super) fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

pub(super) fn module_path(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if !matches!(stem, "lib" | "main" | "mod") {
            parts.push(stem.to_string());
        }
    }
    parts.join("::")
}

pub(super) fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}::{child}")
    }
}

pub(super) fn parent_of(module: &str) -> String {
    module
        .rsplit_once("::")
        .map_or_else(String::new, |(p, _)| p.to_string())
}

/// Lexes one file: blanks comments and string contents (keeping every newline, so line numbers
/// hold), then blanks `#[cfg(test)]` items and reads declarations.
pub(super) fn read_module(text: &str) -> Module {
    let (code, strings) = blank(text);
    let mut module = Module {
        lines: text.lines().count(),
        ..Module::default()
    };
    let mut code: Vec<char> = code.chars().collect();
    let tests = blank_tests(&mut code, &mut module.test_children);
    let test_lines: usize = tests
        .iter()
        .map(|(a, b)| code[*a..*b].iter().filter(|&&c| c == '\n').count())
        .sum();
    module.lines = module.lines.saturating_sub(test_lines);
    module.strings = strings
        .into_iter()
        .filter(|(offset, _, _)| !tests.iter().any(|(a, b)| offset >= a && offset < b))
        .filter(|(offset, _, _)| !after_feature(&code, *offset))
        .map(|(_, line, s)| (line, s))
        .collect();
    module.code = code.into_iter().collect();
    for stmt in statements(&module.code) {
        let words: Vec<&str> = stmt.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "mod" || *w == "use") else {
            continue;
        };
        let public = words[..at].iter().any(|w| w.starts_with("pub"));
        if words[at] == "mod" {
            if let Some(name) = words.get(at + 1) {
                let name = name.trim_end_matches(';');
                if stmt.trim_end().ends_with(';') && !stmt.contains('{') {
                    module.children.insert(name.to_string());
                }
            }
        } else if public {
            let path: String = words[at + 1..].concat();
            for full in expand(path.trim_end_matches(';')) {
                let name = full.last().cloned().unwrap_or_default();
                if name != "*" && !name.is_empty() {
                    module.reexports.insert(name, full);
                }
            }
        }
    }
    module
}

/// Whether the string at `offset` is the value of a `feature = "..."` in an attribute.
pub(super) fn after_feature(code: &[char], offset: usize) -> bool {
    let before: String = code[offset.saturating_sub(16)..offset].iter().collect();
    before
        .trim_end()
        .trim_end_matches('=')
        .trim_end()
        .ends_with("feature")
}

/// Splits code into statements at `;` and at item braces (rough, enough for `mod` and `use`).
pub(super) fn statements(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut depth_in_use = 0usize;
    for c in code.chars() {
        // Leading whitespace is never kept, so that the checks below look at the start only.
        if current.is_empty() && c.is_whitespace() {
            continue;
        }
        current.push(c);
        let trimmed = current.as_str();
        let is_use = trimmed.starts_with("use ")
            || trimmed.starts_with("pub use ")
            || trimmed.starts_with("pub(crate) use ")
            || trimmed.starts_with("pub(super) use ");
        match c {
            '{' if is_use => depth_in_use += 1,
            '}' if is_use && depth_in_use > 0 => depth_in_use -= 1,
            '{' | '}' => {
                out.push(std::mem::take(&mut current));
            }
            ';' if depth_in_use == 0 => out.push(std::mem::take(&mut current)),
            _ => {}
        }
        if c == '\n' && current.starts_with("#[") && current.trim_end().ends_with(']') {
            current.clear();
        }
    }
    out.into_iter()
        .map(|s| {
            // Attributes before the item.
            let mut s = s.trim().to_string();
            while s.starts_with("#[") {
                match s.find(']') {
                    Some(end) => s = s[end + 1..].trim().to_string(),
                    None => break,
                }
            }
            s
        })
        .collect()
}

/// Expands a `use` tree (`a::{b, c::{d, e}}`, no spaces) into its paths.
pub(super) fn expand(tree: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = tree.chars().collect();
    let mut out = Vec::new();
    expand_at(&chars, &mut 0, Vec::new(), &mut out);
    out
}

pub(super) fn expand_at(
    chars: &[char],
    at: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    let mut path = prefix;
    let mut segment = String::new();
    while *at < chars.len() {
        let c = chars[*at];
        match c {
            ':' => {
                if !segment.is_empty() {
                    path.push(std::mem::take(&mut segment));
                }
                *at += 1;
            }
            '{' => {
                *at += 1;
                loop {
                    expand_at(chars, at, path.clone(), out);
                    match chars.get(*at) {
                        Some(',') => *at += 1,
                        Some('}') => {
                            *at += 1;
                            break;
                        }
                        _ => break,
                    }
                }
                return;
            }
            ',' | '}' => break,
            _ => {
                segment.push(c);
                *at += 1;
            }
        }
    }
    if !segment.is_empty() {
        // `x as y`: the path is `x`'s, the name `y`.
        let name = segment.split("as").next().unwrap_or(&segment).to_string();
        path.push(name);
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// Blanks comments and string contents. Returns the blanked code and each string literal with
/// its offset in the code and its line.
pub(super) fn blank(text: &str) -> (String, Vec<(usize, usize, String)>) {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<char> = Vec::with_capacity(text.len());
    let mut strings = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let keep_newlines = |s: &[char], out: &mut Vec<char>, line: &mut usize| {
        for &c in s {
            if c == '\n' {
                out.push('\n');
                *line += 1;
            } else {
                out.push(' ');
            }
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            let end = chars[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(chars.len(), |p| i + p);
            keep_newlines(&chars[i..end], &mut out, &mut line);
            i = end;
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            let start = i;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            keep_newlines(&chars[start..i.min(chars.len())], &mut out, &mut line);
        } else if c == '"'
            || (c == 'r' && matches!(next, Some('"') | Some('#')) && raw_start(&chars, i))
            || (c == 'b' && next == Some('"'))
        {
            let start_line = line;
            let offset = out.len();
            let (body_start, hashes) = if c == 'r' {
                let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
                (i + 1 + hashes + 1, Some(hashes))
            } else if c == 'b' {
                (i + 2, None)
            } else {
                (i + 1, None)
            };
            let mut j = body_start;
            let mut body = String::new();
            while j < chars.len() {
                match (chars[j], hashes) {
                    ('\\', None) => {
                        body.push(chars[j]);
                        if let Some(&e) = chars.get(j + 1) {
                            body.push(e);
                        }
                        j += 2;
                    }
                    ('"', None) => break,
                    ('"', Some(h))
                        if chars[j + 1..].iter().take(h).filter(|&&c| c == '#').count() == h =>
                    {
                        break
                    }
                    (other, _) => {
                        body.push(other);
                        j += 1;
                    }
                }
            }
            let end = (j + 1 + hashes.unwrap_or(0)).min(chars.len());
            out.push('"');
            keep_newlines(
                &chars[(i + 1).min(end)..end.saturating_sub(1).max(i + 1)],
                &mut out,
                &mut line,
            );
            out.push('"');
            strings.push((offset, start_line, body));
            // Keep the blanked text as long as the original so offsets match characters.
            out.resize(out.len().max(offset + (end - i)), ' ');
            i = end;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let len = if next == Some('\\') {
                chars[i + 2..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map_or(1, |p| p + 3)
            } else if chars.get(i + 2) == Some(&'\'') {
                3
            } else {
                1
            };
            out.push('\'');
            out.extend(std::iter::repeat_n(' ', len - 1));
            i += len;
        } else {
            if c == '\n' {
                line += 1;
            }
            out.push(c);
            i += 1;
        }
    }
    (out.into_iter().collect(), strings)
}

/// Whether an `r` at `i` starts a raw string (`r"`, `r#"`) rather than ending an identifier.
pub(super) fn raw_start(chars: &[char], i: usize) -> bool {
    let after_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    if after_ident {
        return false;
    }
    let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
    chars.get(i + 1 + hashes) == Some(&'"')
}

/// Blanks every item under `#[cfg(test)]` (a `mod tests { .. }`, a test-only `use` or `fn`);
/// records test-only child files. Returns the blanked ranges.
pub(super) fn blank_tests(
    code: &mut [char],
    test_children: &mut BTreeSet<String>,
) -> Vec<(usize, usize)> {
    const MARK: &str = "#[cfg(test)]";
    let mark: Vec<char> = MARK.chars().collect();
    let mut ranges = Vec::new();
    let mut i = 0;
    while i + mark.len() <= code.len() {
        if code[i..i + mark.len()] != mark[..] {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i + mark.len();
        // The item: up to a `;` before any brace, or to the brace that closes its first one.
        let mut depth = 0usize;
        let mut opened = false;
        while j < code.len() {
            match code[j] {
                '[' | '(' if !opened => depth += 1,
                ']' | ')' if !opened && depth > 0 => depth -= 1,
                ';' if !opened && depth == 0 => break,
                '{' => {
                    opened = true;
                    depth += 1;
                }
                '}' if opened => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        let end = (j + 1).min(code.len());
        let item: String = code[start + mark.len()..end].iter().collect();
        let words: Vec<&str> = item.split_whitespace().collect();
        if let Some(at) = words.iter().position(|w| *w == "mod") {
            if !opened {
                if let Some(name) = words.get(at + 1) {
                    test_children.insert(name.trim_end_matches(';').to_string());
                }
            }
        }
        for c in &mut code[start..end] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        ranges.push((start, end));
        i = end;
    }
    ranges
}
