//! Longer freshness where writes are heard, as a command applies it (see `ghcache_core::heard`):
//! the report this cache dir's daemon keeps of the writes it hears, read only for an entry
//! past its class TTL, so that an ordinary fresh hit costs nothing more.
//!
//! The report extends freshness, so it is read only where only this user could have written
//! it: a file of this user's (or root's) that nobody else can write, in the daemon's directory
//! under the same rule, not followed through a symbolic link. Anything else (no file, another
//! owner, a corrupt or expired report) means "not heard": the TTLs as configured.

use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

use ghcache_core::cache_dir::{HEARD_FILE, NODE_DIR};
use ghcache_core::heard::{Report, MAX_REPORT};
use ghcache_core::policy::TtlClass;
use ghcache_core::{Request, ScopeId};

use crate::config::Config;

/// Gives `request` (of TTL class `class`, in cache dir `dir`) its heard allowance, when the
/// daemon's report says that the writes to what it asks about are heard now; leaves it as it
/// is otherwise. Reads the report once per request.
pub(crate) fn allow(config: &Config, dir: &Path, request: &mut Request, class: TtlClass) {
    if request.heard.is_some() {
        return;
    }
    let Some(report) = read(dir) else {
        return;
    };
    request.heard = report.allowance(
        &ScopeId::of(&request.input.scope),
        &request.repo,
        request.resource,
        config.heard_ttl(class),
        ghcache_core::now_ms(),
    );
}

/// The report of cache dir `dir`'s daemon; `None` when there is none to trust.
pub(crate) fn read(dir: &Path) -> Option<Report> {
    let node_dir = dir.join(NODE_DIR);
    if !private(&std::fs::symlink_metadata(&node_dir).ok()?) {
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(node_dir.join(HEARD_FILE))
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || !private(&meta) {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_REPORT as u64 + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    Report::decode(&bytes).ok()
}

/// Whether only this user (or root) can write what `meta` describes.
fn private(meta: &std::fs::Metadata) -> bool {
    let me = rustix::process::geteuid().as_raw();
    (meta.uid() == me || meta.uid() == 0) && meta.mode() & 0o022 == 0
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use ghcache_core::heard::{Cover, Covered, SourceKind};

    use super::*;

    fn report(valid_until_ms: u64) -> Report {
        Report {
            valid_until_ms,
            scopes: vec![Covered {
                scope: None,
                covers: vec![Cover::everything(SourceKind::Webhook, 1)],
            }],
        }
    }

    #[test]
    fn only_a_private_well_formed_report_is_read() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let node_dir = dir.path().join(NODE_DIR);
        std::fs::create_dir(&node_dir).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&node_dir, std::fs::Permissions::from_mode(0o700)).ok();
        let path = node_dir.join(HEARD_FILE);
        assert_eq!(read(dir.path()), None, "no file");

        std::fs::write(&path, report(42).encode()).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).ok();
        assert_eq!(read(dir.path()), Some(report(42)));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o622)).ok();
        assert_eq!(read(dir.path()), None, "others can write it");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).ok();
        std::fs::set_permissions(&node_dir, std::fs::Permissions::from_mode(0o777)).ok();
        assert_eq!(read(dir.path()), None, "others can write its directory");
        std::fs::set_permissions(&node_dir, std::fs::Permissions::from_mode(0o700)).ok();

        std::fs::write(&path, b"not a report").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(dir.path()), None, "corrupt");
        std::fs::remove_file(&path).ok();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, report(42).encode()).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(dir.path()), None, "a link is not followed");
    }
}
