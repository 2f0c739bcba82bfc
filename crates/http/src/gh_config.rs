//! A configuration directory for gh that is the user's own plus `http_unix_socket`.
//!
//! gh reads its configuration from `GH_CONFIG_DIR`: `config.yml` (settings, aliases) and
//! `hosts.yml` (accounts; tokens too, unless they are in the system keyring, which does not
//! depend on the directory). For one run, ghcache points `GH_CONFIG_DIR` at a directory of its
//! own that holds:
//!
//! ```text
//! config.yml     the user's config.yml, with `http_unix_socket: "<socket>"` (replacing one
//!                the user set)
//! hosts.yml ...  symbolic links to every other file of the user's directory
//! ```
//!
//! so gh behaves as with its own configuration, authentication included, and sends its API
//! requests into the socket. Commands that change gh's configuration run without it (the
//! caller's business): what they would write here would be lost.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// The setting gh reads.
const SETTING: &str = "http_unix_socket";

/// gh's configuration file in a configuration directory.
const CONFIG_YML: &str = "config.yml";

/// A gh configuration directory made for one run.
#[derive(Debug)]
pub struct GhConfig {
    dir: PathBuf,
}

impl GhConfig {
    /// Fills `dir` (new and private) with the user's configuration from `user` (`None`, or a
    /// directory that does not exist: gh's defaults) and `http_unix_socket` set to `socket`.
    ///
    /// # Errors
    /// The user's `config.yml` cannot be read (other than missing), or `dir` cannot be written.
    pub fn create(dir: &Path, user: Option<&Path>, socket: &Path) -> io::Result<GhConfig> {
        let mut config = String::new();
        if let Some(user) = user {
            match fs::read_dir(user) {
                Ok(entries) => {
                    for entry in entries {
                        let entry = entry?;
                        let name = entry.file_name();
                        if name == CONFIG_YML {
                            continue;
                        }
                        symlink(entry.path(), dir.join(&name))?;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
            match fs::read_to_string(user.join(CONFIG_YML)) {
                Ok(text) => config = text,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        let text = with_socket(&config, socket);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join(CONFIG_YML))?;
        io::Write::write_all(&mut file, text.as_bytes())?;
        Ok(GhConfig {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory, for `GH_CONFIG_DIR`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// `config` (YAML, as gh writes it: top-level keys at column 0) with the top-level setting
/// [`SETTING`] set to `socket`, in place of any value it had.
fn with_socket(config: &str, socket: &Path) -> String {
    let mut out = String::with_capacity(config.len() + 64);
    let mut skipping = false;
    for line in config.lines() {
        let top_level = !line.starts_with([' ', '\t']) && !line.trim().is_empty();
        if top_level {
            skipping = line
                .strip_prefix(SETTING)
                .is_some_and(|rest| rest.trim_start().starts_with(':'));
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    let quoted = socket
        .to_string_lossy()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    out.push_str(&format!("{SETTING}: \"{quoted}\"\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_is_added_or_replaced_and_the_rest_kept() {
        let socket = Path::new("/run/x/s");
        assert_eq!(with_socket("", socket), "http_unix_socket: \"/run/x/s\"\n");
        let user = "git_protocol: ssh\nhttp_unix_socket: /old\naliases:\n    co: pr checkout\n\
                    http_unix_socket_other: keep\n";
        let out = with_socket(user, socket);
        assert_eq!(
            out,
            "git_protocol: ssh\naliases:\n    co: pr checkout\nhttp_unix_socket_other: keep\n\
             http_unix_socket: \"/run/x/s\"\n"
        );
        let block = "http_unix_socket: >\n  /old\neditor: vim";
        assert_eq!(
            with_socket(block, socket),
            "editor: vim\nhttp_unix_socket: \"/run/x/s\"\n"
        );
    }

    #[test]
    fn the_users_files_are_linked_and_config_yml_rewritten() -> io::Result<()> {
        let root = tempfile::tempdir()?;
        let user = root.path().join("user");
        let run = root.path().join("run");
        fs::create_dir(&user)?;
        fs::create_dir(&run)?;
        fs::write(user.join("hosts.yml"), "github.com:\n    user: octocat\n")?;
        fs::write(user.join(CONFIG_YML), "editor: vim\n")?;
        let made = GhConfig::create(&run, Some(&user), Path::new("/s"))?;
        assert_eq!(
            fs::read_to_string(made.dir().join("hosts.yml"))?,
            "github.com:\n    user: octocat\n"
        );
        assert_eq!(
            fs::read_to_string(made.dir().join(CONFIG_YML))?,
            "editor: vim\nhttp_unix_socket: \"/s\"\n"
        );
        assert_eq!(fs::read_to_string(user.join(CONFIG_YML))?, "editor: vim\n");
        let none = root.path().join("none");
        fs::create_dir(&none)?;
        GhConfig::create(&none, Some(&root.path().join("missing")), Path::new("/s"))?;
        assert!(none.join(CONFIG_YML).is_file());
        Ok(())
    }
}
