//! The daemon's control socket as a client reaches it: only one that this user's own process
//! listens on, in a directory that only this user can write.
//!
//! Whoever answers on the socket answers the lookups of every command and of gh's HTTP level,
//! and hears what they ask. A socket in a cache dir that another user owns or can write, or one
//! that another user's process listens on, would let that user choose what ghcache prints. So
//! every connection to a socket this process did not bind goes through [`connect`], which
//! checks, before a byte is sent:
//!
//! - the directory the socket is in: owned by this user (or root, as the local tier allows for
//!   the cache dir) and not writable by group or others, the local tier's rule for the cache
//!   dir and `p2p/` (this crate cannot call that tier, so the rule is restated here);
//! - the process on the other end: the kernel records the credentials of the process that
//!   listened (`SO_PEERCRED` on Linux, `getpeereid` elsewhere, read through tokio), and its uid
//!   must be this process's effective uid. Root's daemon is not this user's either.
//!
//! A socket that fails either check is not used: [`Error::Untrusted`] says why, in one line.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use tokio::net::UnixStream;

use crate::error::Error;

use ghcache_core::cache_dir::NODE_DIR as DAEMON_DIR;

/// Path of the control socket of the daemon for cache dir `dir`.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(DAEMON_DIR).join("daemon.sock")
}

/// Connects to the control socket at `socket` if it passes the checks of this module.
///
/// # Errors
/// [`Error::Untrusted`] when its directory is another user's or writable by others, or the
/// process listening on it runs as another user (the connection is closed before anything is
/// sent); [`Error::Socket`] with the I/O error when the directory or socket cannot be reached
/// (`NotFound` and `ConnectionRefused` when no daemon runs).
pub(crate) async fn connect(socket: &Path) -> Result<UnixStream, Error> {
    let io = |source| Error::Socket {
        path: socket.to_owned(),
        source,
    };
    let untrusted = |reason: String| Error::Untrusted {
        socket: socket.to_owned(),
        reason,
    };
    let me = rustix::process::geteuid().as_raw();
    let dir = match socket.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let meta = std::fs::metadata(dir).map_err(io)?;
    if meta.uid() != me && meta.uid() != 0 {
        return Err(untrusted(format!(
            "{} belongs to uid {}, not to you (uid {me})",
            dir.display(),
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(untrusted(format!(
            "{} is writable by other users (mode {mode:o})",
            dir.display()
        )));
    }
    let stream = UnixStream::connect(socket).await.map_err(io)?;
    let peer = stream.peer_cred().map_err(io)?.uid();
    if peer != me {
        return Err(untrusted(format!(
            "the process listening on it runs as uid {peer}, not as you (uid {me})"
        )));
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::mpsc;

    use super::*;

    /// The uid that "another user" is in these tests (nobody).
    const NOBODY: u32 = 65_534;

    /// A thread that listens on a socket as uid [`NOBODY`] until it is told to stop (a send or
    /// a dropped sender), then is gone. On Linux a thread's credentials are its own (the
    /// kernel's `setresuid`, which rustix calls for this thread alone): the rest of the test
    /// keeps root's, and the kernel records nobody's for the socket when it listens. Returns
    /// the socket's path, in a scratch directory nobody owns under `scratch`.
    fn listen_as_nobody(scratch: &Path) -> (std::path::PathBuf, mpsc::Sender<()>) {
        let theirs = scratch.join("theirs");
        std::fs::create_dir(&theirs).unwrap_or_else(|e| panic!("mkdir: {e}"));
        std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY))
            .unwrap_or_else(|e| panic!("chown: {e}"));
        let path = theirs.join("s");
        let (listening, ready) = mpsc::channel();
        let (stop, stopped) = mpsc::channel::<()>();
        let at = path.clone();
        std::thread::spawn(move || {
            let nobody = rustix::process::Uid::from_raw(NOBODY);
            let bound = rustix::thread::set_thread_res_uid(nobody, nobody, nobody)
                .map_err(std::io::Error::from)
                .and_then(|()| std::os::unix::net::UnixListener::bind(&at));
            match bound {
                Ok(listener) => {
                    let _ = listening.send(Ok(()));
                    // Held (and listening) until the test is done with it.
                    let _ = stopped.recv();
                    drop(listener);
                }
                Err(e) => {
                    let _ = listening.send(Err(e.to_string()));
                }
            }
        });
        let bound = ready
            .recv()
            .unwrap_or_else(|e| panic!("listener thread: {e}"));
        bound.unwrap_or_else(|e| panic!("listen as uid {NOBODY}: {e}"));
        (path, stop)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_socket_that_another_user_listens_on_is_refused() {
        if !rustix::process::geteuid().is_root() {
            ghcache_core::testkit::skip("listening as another user needs root");
            return;
        }
        let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        // Nobody may pass through (not list or write) the scratch dir to reach theirs.
        std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o711))
            .unwrap_or_else(|e| panic!("chmod: {e}"));
        let (theirs, _stop) = listen_as_nobody(scratch.path());
        // Moved into a directory of this user's, as a private p2p/ dir: only the peer differs.
        let ours = scratch.path().join(DAEMON_DIR);
        std::fs::create_dir(&ours).unwrap_or_else(|e| panic!("mkdir: {e}"));
        let socket = ours.join("daemon.sock");
        std::fs::rename(&theirs, &socket).unwrap_or_else(|e| panic!("rename: {e}"));
        let refused = connect(&socket).await.err().map(|e| e.to_string());
        let refused = refused.unwrap_or_else(|| panic!("connected to uid {NOBODY}'s socket"));
        assert!(
            refused.contains(&format!("runs as uid {NOBODY}, not as you (uid 0)")),
            "{refused}"
        );
        assert!(refused.contains(&socket.display().to_string()), "{refused}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_socket_of_this_user_in_a_private_dir_is_used() {
        let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let socket = scratch.path().join("daemon.sock");
        let _listener =
            tokio::net::UnixListener::bind(&socket).unwrap_or_else(|e| panic!("bind: {e}"));
        assert!(connect(&socket).await.is_ok());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_socket_in_a_dir_that_others_can_write_is_refused_before_connecting() {
        let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let socket = scratch.path().join("daemon.sock");
        let listener =
            std::os::unix::net::UnixListener::bind(&socket).unwrap_or_else(|e| panic!("bind: {e}"));
        std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o777))
            .unwrap_or_else(|e| panic!("chmod: {e}"));
        let refused = connect(&socket).await.err().map(|e| e.to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|e| e.contains("is writable by other users (mode 777)")),
            "{refused:?}"
        );
        // A connection would be waiting in the backlog by now: there is none.
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("nonblocking: {e}"));
        let waiting = listener.accept().map(|_| ());
        assert!(
            waiting
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
            "a connection was made: {waiting:?}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn no_socket_is_an_io_error_not_a_refusal() {
        let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let missing = connect(&scratch.path().join("daemon.sock")).await;
        assert!(
            matches!(&missing, Err(Error::Socket { source, .. }) if source.kind() == std::io::ErrorKind::NotFound),
            "{missing:?}"
        );
        let no_dir = connect(&scratch.path().join("p2p/daemon.sock")).await;
        assert!(
            matches!(&no_dir, Err(Error::Socket { source, .. }) if source.kind() == std::io::ErrorKind::NotFound),
            "{no_dir:?}"
        );
    }
}
