//! Fetching from GitHub by running gh and capturing what it prints.

use std::process::Stdio;

use async_trait::async_trait;
use ghcache_core::{Body, Entry, Fetched, OriginError, Output, OutputMode, Request};

use crate::config::Config;
use crate::{etag, failure};

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
    async fn fetch(
        &self,
        request: &Request,
        prior: Option<&Entry>,
    ) -> Result<Fetched, OriginError> {
        let user_include = etag::user_includes_headers(&request.argv);
        let prior_etag = prior
            .filter(|_| request.revalidate)
            .and_then(|p| p.manifest.etag.as_deref());
        let add_include = request.revalidate && !user_include;
        let argv = if request.revalidate {
            etag::revalidating_argv(&request.argv, add_include, prior_etag)
        } else {
            request.argv.clone()
        };
        let mut output = self.run(&argv, request.input.output).await?;
        if output.exit_code != 0 {
            if prior_etag.is_some() && failure::is_not_modified(&output.stderr) {
                return Ok(Fetched::NotModified);
            }
            if add_include {
                strip_head(&mut output.stdout);
            }
            let transient = failure::is_transient(&output.stderr);
            return Ok(Fetched::Failed { output, transient });
        }
        let mut etag_value = None;
        if request.revalidate {
            if let Some(head) = etag::parse_head(&output.stdout) {
                etag_value = head.etag;
                if add_include {
                    // The user did not ask for headers: print exactly what plain `gh api` prints.
                    output.stdout.drain(..head.len);
                }
            }
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

fn strip_head(stdout: &mut Vec<u8>) {
    if let Some(head) = etag::parse_head(stdout) {
        stdout.drain(..head.len);
    }
}
