//! Fetching from GitHub by running gh and capturing what it prints.

use std::process::Stdio;

use async_trait::async_trait;
use ghcache_core::{Body, Entry, Fetched, OriginError, Output, OutputMode, Request};

use crate::config::Config;
use crate::etag::{self, Plan};
use crate::failure;

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

    fn program(&self) -> String {
        self.config.program.to_string_lossy().into_owned()
    }

    async fn run(&self, argv: &[String], output: OutputMode) -> Result<Output, OriginError> {
        let mut command = tokio::process::Command::new(&self.config.program);
        command
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let OutputMode::Tty { width } = output {
            // gh prints for a terminal of this width; the CLI pages the answer itself.
            command.env("GH_FORCE_TTY", width.to_string());
            command.env("GH_PAGER", "cat");
        }
        let child = command.spawn().map_err(|e| OriginError::Spawn {
            program: self.program(),
            reason: e.to_string(),
        })?;
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| OriginError::Io {
                program: self.program(),
                reason: e.to_string(),
            })?;
        Ok(Output {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: exit_code(out.status),
        })
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

#[async_trait]
impl ghcache_core::Origin for Origin {
    /// Runs gh with `request.argv` and captures both streams.
    ///
    /// # Behavior
    /// For a `gh api` GET (`request.revalidate`), gh is asked for the response headers (`-i`,
    /// stripped again from what is stored unless the user asked for them) to record the ETag,
    /// and with a `prior` entry that has one, the request is made conditional: a 304 is
    /// [`Fetched::NotModified`]. A non-zero exit is [`Fetched::Failed`], `transient` when GitHub
    /// or the network failed.
    ///
    /// # Errors
    /// gh could not be started, or its output could not be read.
    async fn fetch(
        &self,
        request: &Request,
        prior: Option<&Entry>,
    ) -> Result<Fetched, OriginError> {
        let plan = if request.revalidate {
            let etag = prior.and_then(|p| p.manifest.etag.as_deref());
            Plan::of(&request.argv, etag)
        } else {
            Plan::plain(&request.argv)
        };
        let mut output = self.run(&plan.argv, request.input.output).await?;
        let head = if plan.reads_head {
            etag::parse_head(&output.stdout)
        } else {
            None
        };
        if output.exit_code != 0 {
            let said_304 = failure::is_not_modified(&output.stderr)
                || head.as_ref().is_some_and(|h| h.status == 304);
            if plan.conditional && said_304 {
                return Ok(Fetched::NotModified);
            }
            if plan.added_include {
                if let Some(head) = &head {
                    output.stdout.drain(..head.len);
                }
            }
            let transient = failure::is_transient(&output.stderr);
            return Ok(Fetched::Failed { output, transient });
        }
        let mut etag_value = None;
        match head {
            Some(head) => {
                etag_value = head.etag;
                if plan.added_include {
                    // The user did not ask for headers: store exactly what plain `gh api` prints.
                    output.stdout.drain(..head.len);
                }
            }
            None if plan.added_include => {
                // gh printed headers that could not be told from the body: ask again without
                // them rather than store output that plain gh would not print.
                output = self.run(&request.argv, request.input.output).await?;
                if output.exit_code != 0 {
                    let transient = failure::is_transient(&output.stderr);
                    return Ok(Fetched::Failed { output, transient });
                }
            }
            None => {}
        }
        let body = Body {
            stdout: output.stdout,
            stderr: output.stderr,
        };
        Ok(Fetched::Fresh(Entry::new(
            request.key,
            &request.input.scope,
            &request.repo,
            request.ttl,
            body,
            etag_value,
        )))
    }
}
