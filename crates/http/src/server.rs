//! The socket that gh sends its requests into, for the lifetime of one gh run.
//!
//! ```text
//! <base>/ghcache-<pid>-<n>/       made 0700 with mkdir, which fails if anything is there
//!     s                           the Unix socket gh connects to
//!     gh/                         gh's configuration for the run (see GhConfig)
//! ```
//!
//! The directory is new and private, so nobody else can connect to the socket or change gh's
//! configuration; it is removed when the session ends. A process killed outright leaves it
//! behind in the temporary directory, holding nothing but links and a dead socket.

use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::error::Error;
use crate::gh_config::GhConfig;
use crate::level::Level;
use crate::stats::Counts;

/// Connections served at once; gh opens a few.
const CONNECTIONS_MAX: usize = 64;

/// The longest path a Unix socket address holds (`sun_path` is 108 bytes with its NUL).
const SOCKET_PATH_MAX: usize = 107;

/// The socket's name in the session's directory.
const SOCKET: &str = "s";

/// Names tried before giving up on a base directory: mkdir fails on a name that exists.
const ATTEMPTS: u64 = 16;

/// The HTTP level serving one gh run.
#[derive(Debug)]
pub struct Session {
    dir: PathBuf,
    gh_config: GhConfig,
    level: Arc<Level>,
    accept: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Session {
    /// Serves `level` on a new socket in a private directory under the first of `bases` whose
    /// socket path fits, with a gh configuration that is `user_config`'s (gh's own directory)
    /// plus the socket. Call inside a tokio runtime, which then serves the socket while it runs.
    ///
    /// # Errors
    /// No base directory could hold the socket, or gh's configuration could not be made.
    pub fn start(
        level: Arc<Level>,
        bases: &[&Path],
        user_config: Option<&Path>,
    ) -> Result<Session, Error> {
        let mut last = None;
        for base in bases {
            match Self::start_in(&level, base, user_config) {
                Ok(session) => return Ok(session),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| Error::Dir {
            dir: PathBuf::new(),
            reason: "no directory to make the socket in".into(),
        }))
    }

    fn start_in(
        level: &Arc<Level>,
        base: &Path,
        user_config: Option<&Path>,
    ) -> Result<Session, Error> {
        let dir = private_dir(base)?;
        // From here on, dropping `cleanup` removes the directory if a step fails.
        let mut cleanup = Cleanup(Some(dir.clone()));
        let socket = dir.join(SOCKET);
        if socket.as_os_str().len() > SOCKET_PATH_MAX {
            return Err(Error::PathTooLong { path: socket });
        }
        let listener = UnixListener::bind(&socket).map_err(|e| Error::Bind {
            path: socket.clone(),
            reason: e.to_string(),
        })?;
        let gh_dir = dir.join("gh");
        let gh_config = std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&gh_dir)
            .and_then(|()| GhConfig::create(&gh_dir, user_config, &socket))
            .map_err(|e| Error::GhConfig {
                dir: gh_dir.clone(),
                reason: e.to_string(),
            })?;
        let (stop, stopped) = oneshot::channel();
        let accept = tokio::spawn(accept(listener, level.clone(), stopped));
        cleanup.0 = None;
        Ok(Session {
            dir,
            gh_config,
            level: level.clone(),
            accept: Some((stop, accept)),
        })
    }

    /// The environment that makes gh use the socket (`GH_CONFIG_DIR`).
    pub fn gh_env(&self) -> Vec<(OsString, OsString)> {
        vec![(
            OsString::from("GH_CONFIG_DIR"),
            self.gh_config.dir().as_os_str().to_owned(),
        )]
    }

    /// The socket gh connects to.
    pub fn socket(&self) -> PathBuf {
        self.dir.join(SOCKET)
    }

    /// The level this session serves.
    pub fn level(&self) -> &Arc<Level> {
        &self.level
    }

    /// Stops serving (gh has exited: a request still in flight is dropped), removes the
    /// directory, and returns what the level did. When it returns, no task of the session
    /// holds the level (or the tiers in it) any more.
    pub async fn finish(mut self) -> Counts {
        if let Some((stop, accept)) = self.accept.take() {
            let _ = stop.send(());
            let _ = accept.await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        self.level.take_counts()
    }
}

impl Drop for Session {
    /// A session that was not finished (its runtime is ending) stops at the next chance its
    /// tasks get; its directory goes now.
    fn drop(&mut self) {
        if let Some((_, accept)) = self.accept.take() {
            accept.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes a directory on drop, unless emptied.
struct Cleanup(Option<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A new directory in `base`, 0700, that did not exist before.
fn private_dir(base: &Path) -> Result<PathBuf, Error> {
    static MADE: AtomicU64 = AtomicU64::new(0);
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!("ghcache-{}-{n}-{nanos:x}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => last = err.to_string(),
            Err(err) => {
                return Err(Error::Dir {
                    dir: base.to_path_buf(),
                    reason: err.to_string(),
                })
            }
        }
    }
    Err(Error::Dir {
        dir: base.to_path_buf(),
        reason: last,
    })
}

/// Accepts connections until `stopped`; each is served by a task of its own, at most
/// [`CONNECTIONS_MAX`] at once. Stopped, it ends them all and returns once they are gone.
async fn accept(listener: UnixListener, level: Arc<Level>, mut stopped: oneshot::Receiver<()>) {
    let permits = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => break,
            accepted = accept_one(&listener, &permits) => accepted,
        };
        let Some((stream, permit)) = accepted else {
            continue;
        };
        // Finished connections are reaped here, so the set holds the live ones only.
        while connections.try_join_next().is_some() {}
        let level = level.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let level = level.clone();
                async move { Ok::<_, std::convert::Infallible>(level.handle(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
    connections.shutdown().await;
}

/// The next connection and a permit for it; `None` after a failed accept.
async fn accept_one(
    listener: &UnixListener,
    permits: &Arc<Semaphore>,
) -> Option<(tokio::net::UnixStream, tokio::sync::OwnedSemaphorePermit)> {
    let permit = permits.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => Some((stream, permit)),
        Err(_) => {
            // Out of descriptors, most likely: a moment for some to close, not a busy loop.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            None
        }
    }
}
