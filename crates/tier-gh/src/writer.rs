//! Writing to the user's stdout, stderr or pager from a thread of its own.
//!
//! A reader that is slow (a pipe into a slow program, a pager the user is reading) then holds
//! up only that thread, and through the bounded queue, the reading of gh's output: never the
//! task that forwards signals to gh. tokio's own stdout is not used because a write it has
//! started keeps the runtime from shutting down until the reader takes it, and a process that
//! is told to stop must be able to.

use tokio::sync::{mpsc, oneshot};

/// How many chunks (of up to [`crate::stream::CHUNK`] bytes) may wait for the thread.
const QUEUE: usize = 16;

/// Where a [`Writer`] writes.
pub(crate) enum Target {
    /// This process's stdout.
    Stdout,
    /// This process's stderr.
    Stderr,
    /// A pipe into a pager.
    File(std::fs::File),
}

/// A thread that writes what it is sent, in order.
pub(crate) struct Writer {
    queue: mpsc::Sender<Vec<u8>>,
    done: oneshot::Receiver<()>,
}

impl Writer {
    /// Starts the thread.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn start(target: Target) -> std::io::Result<Writer> {
        let (queue, mut chunks) = mpsc::channel::<Vec<u8>>(QUEUE);
        let (finished, done) = oneshot::channel();
        std::thread::Builder::new()
            .name("ghcache-output".into())
            .spawn(move || {
                let mut write = |out: &mut dyn std::io::Write| {
                    while let Some(chunk) = chunks.blocking_recv() {
                        // Flushed at once: stdout holds back a line until it ends, and the end
                        // of what gh printed so far (a prompt, a progress line) is the user's
                        // to see now. A reader that went away (`| head`, a pager the user quit)
                        // is their choice: stop writing; gh's answer is still read to its end.
                        if out.write_all(&chunk).and_then(|()| out.flush()).is_err() {
                            return;
                        }
                    }
                };
                match target {
                    Target::Stdout => write(&mut std::io::stdout().lock()),
                    Target::Stderr => write(&mut std::io::stderr().lock()),
                    Target::File(mut file) => write(&mut file),
                }
                let _ = finished.send(());
            })?;
        Ok(Writer { queue, done })
    }

    /// Queues `chunk`, waiting while the queue is full. Returns false once the target failed:
    /// later chunks are not written.
    pub async fn write(&self, chunk: Vec<u8>) -> bool {
        self.queue.send(chunk).await.is_ok()
    }

    /// Waits until everything queued is written (or the target failed).
    pub async fn finish(self) {
        drop(self.queue);
        let _ = self.done.await;
    }
}
