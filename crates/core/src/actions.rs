//! The scope that jobs of one repository share in GitHub Actions: the one place of its rule.
//!
//! A job's `GITHUB_TOKEN` reads what the job's `permissions:` block lets it read, and nothing in
//! the token tells which that is. Jobs of one repository may declare different blocks (a
//! release job with `contents: write`, a lint job with `contents: read` only), so a shared
//! `actions:<owner/repo>` would hand the narrower job answers that only the broader token could
//! fetch. The rule, for the job's declared own token (see [`crate::context::scope`]):
//!
//! - a job that declares its permissions (the Action's `permissions` input, or
//!   `ghcache actions declare --permissions`, which put their canonical form in
//!   [`PERMISSIONS_VAR`]) shares with the jobs that declare exactly the same set:
//!   `actions:<owner/repo>#perms=contents:read,issues:read`. What the user keeps true: the
//!   declaration is the job's `permissions:` block;
//! - a job that declares nothing shares only with runs of the same job (`GITHUB_JOB`) of the
//!   same workflow file (`GITHUB_WORKFLOW_REF`) at the same commit (`GITHUB_WORKFLOW_SHA`):
//!   those read with the same `permissions:` block, whatever it says, so this needs nothing of
//!   the user. The commit is part of it because a commit may narrow the block, and the answers
//!   of the runs before it must not reach the runs after;
//! - anything it cannot tell (a declaration that does not parse, a job without those
//!   variables) shares nothing: [`scope`] says `None`, and the token keeps a scope of its own.
//!
//! Every name is `actions:<owner/repo>#<suffix>`, the repository lowercase as
//! `GITHUB_REPOSITORY` says it, and the suffix holds no `#` (nor `:` or `,` inside a part):
//! what a producer's repository is can be read back from the name alone.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Where a job's canonical permissions are declared ([`Permissions::as_str`]), for the rest of
/// the job: `ghcache actions declare --permissions` prints it for `$GITHUB_ENV`.
pub const PERMISSIONS_VAR: &str = "GH_CACHE_ACTIONS_PERMISSIONS";

/// A job's declared permissions in canonical form: `name:level` pairs sorted by name and joined
/// by commas (`contents:read,issues:read`), or `read-all`, `write-all`, or `none`.
///
/// Canonical so that two jobs that declare the same block share, however it was written:
/// names and levels lowercase, order and spacing dropped, and the entries that give the token
/// nothing to read left out: `none`, and `id-token` (it lets a job ask for an OIDC token, and
/// reads nothing of the API). `{}` and a block of only such entries are `none`. A `write`
/// stays a `write`: it reads what `read` does, but a set that differs is another set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions(String);

/// Why a permissions declaration was refused: each names the part to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionsError {
    /// An entry is not `name: level`.
    #[error("{0:?} is not `name: read|write|none` (as in the job's `permissions:` block)")]
    Entry(String),
    /// A name that no permission has the shape of.
    #[error("{0:?} is not a permission name (lowercase letters and dashes, as `pull-requests`)")]
    Name(String),
    /// A level other than read, write or none.
    #[error("{name}: {level:?} is not read, write or none")]
    Level {
        /// The permission.
        name: String,
        /// What was given.
        level: String,
    },
    /// One name twice (YAML refuses the block too).
    #[error("{0} is given twice")]
    Twice(String),
    /// `read-all`/`write-all` with other entries.
    #[error("{0} stands alone: it is the whole `permissions:` value")]
    NotAlone(String),
}

impl Permissions {
    /// Parses a declaration: a `permissions:` block's body as the workflow writes it, one entry
    /// a line or separated by commas, with or without `{ }` (`contents: read, issues: read`),
    /// or `read-all`, `write-all`, `{}`. YAML comments and quotes are allowed.
    ///
    /// `Ok(None)` for an empty declaration: the job declared nothing.
    ///
    /// # Errors
    /// An entry that is not `name: read|write|none`, a name twice, or `read-all`/`write-all`
    /// beside other entries.
    pub fn parse(text: &str) -> Result<Option<Permissions>, PermissionsError> {
        let uncommented: Vec<&str> = text
            .lines()
            .map(|line| line.split_once('#').map_or(line, |(before, _)| before))
            .collect();
        let joined = uncommented.join("\n");
        let trimmed = joined.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let braced = trimmed
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'));
        let body = braced.unwrap_or(trimmed);
        let entries: Vec<&str> = body
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if braced.is_none() {
            if let [whole] = entries.as_slice() {
                let whole = unquote(whole).to_ascii_lowercase();
                if whole == "read-all" || whole == "write-all" {
                    return Ok(Some(Permissions(whole)));
                }
            }
        }
        let mut levels = BTreeMap::new();
        for entry in entries {
            let Some((name, level)) = entry.split_once(':') else {
                let word = unquote(entry).to_ascii_lowercase();
                if word == "read-all" || word == "write-all" {
                    return Err(PermissionsError::NotAlone(word));
                }
                return Err(PermissionsError::Entry(entry.to_owned()));
            };
            let name = unquote(name.trim()).to_ascii_lowercase();
            let level = unquote(level.trim()).to_ascii_lowercase();
            let shaped = name.starts_with(|c: char| c.is_ascii_lowercase())
                && name.chars().all(|c| c.is_ascii_lowercase() || c == '-');
            if !shaped {
                return Err(PermissionsError::Name(name));
            }
            if !matches!(level.as_str(), "read" | "write" | "none") {
                return Err(PermissionsError::Level { name, level });
            }
            if levels.insert(name.clone(), level).is_some() {
                return Err(PermissionsError::Twice(name));
            }
        }
        let kept: Vec<String> = levels
            .into_iter()
            .filter(|(name, level)| level != "none" && name != "id-token")
            .map(|(name, level)| format!("{name}:{level}"))
            .collect();
        if kept.is_empty() {
            return Ok(Some(Permissions("none".to_owned())));
        }
        Ok(Some(Permissions(kept.join(","))))
    }

    /// The canonical form, as [`PERMISSIONS_VAR`] and the scope name carry it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn unquote(text: &str) -> &str {
    let text = text.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = text
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner.trim();
        }
    }
    text
}

/// What a job's environment says about it, for [`scope`]; each as the runner sets it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Job {
    /// [`PERMISSIONS_VAR`]: what the job declared.
    pub permissions: Option<String>,
    /// `GITHUB_WORKFLOW_REF`: `owner/repo/.github/workflows/ci.yml@refs/heads/main`.
    pub workflow_ref: Option<String>,
    /// `GITHUB_WORKFLOW_SHA`: the commit of the workflow file.
    pub workflow_sha: Option<String>,
    /// `GITHUB_JOB`: the job's id in the workflow.
    pub job: Option<String>,
}

/// The scope that the declared own token of `job`, a job of `repository`, shares (see the
/// module doc): `actions:<repository>#perms=<permissions>` or
/// `actions:<repository>#job=<workflow>:<job>:<commit>`.
///
/// `None` when it may share nothing: the declared permissions do not parse, or nothing is
/// declared and the job's workflow, commit or id is not known.
pub fn scope(repository: &str, job: &Job) -> Option<String> {
    let repository = repository.trim().to_ascii_lowercase();
    if repository.is_empty() {
        return None;
    }
    match job.permissions.as_deref().map(Permissions::parse) {
        Some(Err(_)) => return None,
        Some(Ok(Some(permissions))) => {
            return Some(format!(
                "actions:{repository}#perms={}",
                permissions.as_str()
            ));
        }
        // Empty: the job declared nothing.
        None | Some(Ok(None)) => {}
    }
    let (workflow, sha, id) = (
        nonempty(&job.workflow_ref)?,
        nonempty(&job.workflow_sha)?,
        nonempty(&job.job)?,
    );
    // The workflow ref begins with the repository, as the runner spells it; the name has it.
    let prefix = format!("{repository}/");
    let workflow = match workflow.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(&prefix) => &workflow[prefix.len()..],
        _ => workflow,
    };
    Some(format!(
        "actions:{repository}#job={}:{}:{}",
        escape(workflow),
        escape(id),
        escape(&sha.to_ascii_lowercase())
    ))
}

/// Percent-escapes what would make a name ambiguous (`#`, `:`, `,`, `%`) or unreadable
/// (controls, spaces, non-ASCII): distinct parts stay distinct names.
fn escape(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for byte in part.bytes() {
        if byte.is_ascii_graphic() && !matches!(byte, b'#' | b':' | b',' | b'%') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn nonempty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests;
