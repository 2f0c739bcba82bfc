//! Fetching from GitHub by running gh: what it printed becomes an answer, a 304 or a failure.

use async_trait::async_trait;
use ghcache_core::{Body, Entry, Fetched, OriginError, Output, Request};

use crate::capture::Reading;
use crate::config::Config;
use crate::etag::{self, Plan};
use crate::failure;
use crate::stream::{Ran, Run};

/// The origin: GitHub, through the real gh.
#[derive(Debug, Clone)]
pub struct Origin {
    config: Config,
}

impl Origin {
    /// An origin that runs `config.program`.
    pub fn new(config: Config) -> Self {
        Origin { config }
    }

    async fn run(&self, plan: &Plan, request: &Request) -> Result<Ran, OriginError> {
        let limit = match self.config.sink {
            Some(_) => usize::try_from(self.config.max_entry_size).unwrap_or(usize::MAX),
            // Held whole for the caller, who prints it.
            None => usize::MAX,
        };
        Run {
            program: &self.config.program,
            argv: &plan.argv,
            env: &self.config.env,
            output: request.input.output,
            reading: Reading {
                reads_head: plan.reads_head,
                strip_head: plan.added_include,
                conditional: plan.conditional,
                limit,
            },
            sink: self.config.sink.as_ref(),
        }
        .run()
        .await
    }

    /// What a finished run of gh means.
    fn answer(&self, plan: &Plan, request: &Request, ran: Ran) -> Result<Fetched, OriginError> {
        let Ran {
            exit_code,
            interrupted,
            capture,
            stdout_printed,
            mut stderr,
            stderr_printed,
            error,
        } = ran;
        let printed = stdout_printed || stderr_printed;
        let mut exit_code = exit_code;
        if let Some(reason) = error {
            if !printed {
                return Err(OriginError::Io {
                    program: self.config.program.to_string_lossy().into_owned(),
                    reason,
                });
            }
            // Part of the answer is on the user's screen: finish it as a failure, not an
            // error that a stale answer could be printed after.
            stderr.extend_from_slice(format!("reading gh's output failed: {reason}\n").as_bytes());
            exit_code = if exit_code == 0 { 1 } else { exit_code };
        }
        let head = capture.head();
        let etag = head.and_then(|head| head.etag.clone());
        let last_modified = head.and_then(|head| {
            let (modified, date) = (head.last_modified.as_deref()?, head.date.as_deref()?);
            etag::is_strong(modified, date).then(|| modified.to_owned())
        });
        // Which token the ETag belongs to, as far as it is known (never the token itself).
        let etag_token = self.config.token.filter(|_| etag.is_some());
        let said_304 = capture.head().is_some_and(|head| head.status == 304)
            || (!stderr_printed && failure::is_not_modified(&stderr));
        if exit_code != 0 || interrupted {
            if plan.conditional && said_304 && exit_code != 0 && !interrupted && !stdout_printed {
                return Ok(Fetched::NotModified);
            }
            // A stale answer may stand in only for a failure of GitHub that nobody saw yet.
            let transient =
                !interrupted && !printed && failure::is_transient(&stderr) && exit_code != 0;
            let stdout = if stdout_printed {
                Vec::new()
            } else {
                capture.into_kept()
            };
            let output = Output {
                stdout,
                stderr,
                exit_code,
                stdout_printed,
            };
            return Ok(Fetched::Failed { output, transient });
        }
        let entry = |stdout: Vec<u8>, stderr: Vec<u8>| {
            let mut entry = Entry::new(
                request.key,
                &request.input.scope,
                &request.repo,
                request.ttl,
                Body { stdout, stderr },
                etag.clone(),
            );
            entry.manifest.last_modified = last_modified.clone();
            entry.manifest.etag_token = etag_token;
            entry
        };
        if self.config.sink.is_none() {
            return Ok(Fetched::Fresh(entry(capture.into_kept(), stderr)));
        }
        // Stored only whole: with stderr that was printed as it came, it is not.
        let stored = capture
            .into_answer()
            .filter(|_| !stderr_printed)
            .map(|stdout| entry(stdout, stderr.clone()));
        Ok(Fetched::Printed {
            entry: stored,
            output: Output {
                stdout: Vec::new(),
                stderr: if stderr_printed { Vec::new() } else { stderr },
                exit_code,
                stdout_printed: true,
            },
        })
    }
}

#[async_trait]
impl ghcache_core::Origin for Origin {
    /// Runs gh with `request.argv`; with a [`crate::Sink`], prints its stdout there as it comes.
    ///
    /// # Behavior
    /// For a `gh api` GET (`request.revalidate`), gh is asked for the response headers (`-i`,
    /// stripped again from what is printed and stored unless the user asked for them) to record
    /// the ETag (with the hash of the token it belongs to, [`Config::token`]) and
    /// `Last-Modified`, and with a `prior` entry that has them, the request is made conditional:
    /// `If-None-Match` under the token that obtained the ETag, else `If-Modified-Since`, which
    /// GitHub honours whatever the token. A 304 is [`Fetched::NotModified`]. A non-zero exit is
    /// [`Fetched::Failed`], `transient` when GitHub or the network failed and nothing was
    /// printed yet. Printing to a sink, a success is
    /// [`Fetched::Printed`], without an entry when stdout was larger than
    /// [`Config::max_entry_size`]; without a sink, it is [`Fetched::Fresh`].
    ///
    /// SIGINT, SIGTERM, SIGHUP and SIGQUIT received while gh runs are passed on to gh, and
    /// gh's answer is then a [`Fetched::Failed`] that is not transient, whatever gh's exit code:
    /// an interrupted answer is never stored.
    ///
    /// # Errors
    /// gh could not be started, or its output could not be read before anything was printed.
    async fn fetch(
        &self,
        request: &Request,
        prior: Option<&Entry>,
    ) -> Result<Fetched, OriginError> {
        let plan = if request.revalidate {
            let validator =
                prior.and_then(|p| etag::validator(&p.manifest, self.config.token.as_ref()));
            Plan::of(&request.argv, validator)
        } else {
            Plan::plain(&request.argv)
        };
        let ran = self.run(&plan, request).await?;
        if ran.capture.unreadable() && ran.exit_code == 0 && !ran.interrupted {
            // gh printed headers that could not be told from the body (nothing of it was
            // printed): ask again without them rather than print or store what plain gh would
            // not print.
            let plain = Plan::plain(&request.argv);
            let ran = self.run(&plain, request).await?;
            return self.answer(&plain, request, ran);
        }
        self.answer(&plan, request, ran)
    }
}
