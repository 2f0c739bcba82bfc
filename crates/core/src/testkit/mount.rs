//! [`Mount`]: a tmpfs of a chosen size over a directory, for tests of a cache directory that
//! fills up or turns read-only. Mounting needs root: where it is not permitted, a test gets
//! `None` and ends through [`skip`](super::skip).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a directory; unmounted (lazily, so that a file still open in it does not
/// keep it) when dropped.
#[derive(Debug)]
pub struct Mount(PathBuf);

impl Mount {
    /// Mounts a tmpfs with `options` (`size=512k`) on `dir`, made if missing, private to its
    /// owner; `None` where mounting is not permitted.
    pub fn tmpfs(dir: &Path, options: &str) -> Option<Mount> {
        std::fs::create_dir_all(dir).ok()?;
        // A tmpfs root is 1777 by default; a cache dir other users can write is refused.
        let options = format!("{options},mode=0700");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Mount(dir.to_path_buf()))
    }

    /// Mounts it again with `options` (`ro`, `rw`); whether that worked.
    pub fn remount(&self, options: &str) -> bool {
        Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}
