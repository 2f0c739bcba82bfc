//! `ghcache daemon --webhook ADDR`: the daemon takes GitHub's webhook deliveries, and each
//! write one tells of is dropped here and on every peer (see the `ghcache-webhook` crate).

use std::sync::Arc;

use ghcache_core::heard::{Cover, SourceKind};
use ghcache_tier_p2p as p2p;
use ghcache_webhook::{Receiver, Secret};

use crate::config::{Config, Source};
use crate::error::Failure;

/// Deliveries taken and not yet applied by the swarm task; past this a delivery waits, then
/// is answered 503 for GitHub to be redelivered.
const WAITING_DELIVERIES: usize = 64;

/// The largest secret file read: GitHub's secrets are short strings.
const SECRET_FILE_MAX: u64 = 4096;

/// The webhook receiver the settings ask for, listening; `None` when none is set.
///
/// # Errors
/// [`Failure::Usage`] for a webhook without a secret, a secret file that cannot be read, or
/// an address that cannot be listened on.
pub(super) async fn source(config: &Config) -> Result<Option<p2p::WriteSource>, Failure> {
    let settings = &config.p2p;
    let Some(addr) = &settings.webhook.value else {
        return Ok(None);
    };
    // The text over the file, as for the swarm key; a file given as a flag over both.
    let file_flag = matches!(settings.webhook_secret_file.source, Source::Flag(_));
    let text = match (
        &settings.webhook_secret.value,
        &settings.webhook_secret_file.value,
    ) {
        (_, Some(file)) if file_flag => read_secret(file)?,
        (Some(text), _) => text.clone(),
        (None, Some(file)) => read_secret(file)?,
        (None, None) => {
            return Err(Failure::Usage(
                "--webhook needs the webhook's secret, the one set on GitHub: \
                 --webhook-secret-file FILE, [p2p] webhook_secret_file, or GH_CACHE_WEBHOOK_SECRET"
                    .to_owned(),
            ))
        }
    };
    let secret = Secret::from_text(&text).map_err(|e| Failure::Usage(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(addr.as_str())
        .await
        .map_err(|e| Failure::Usage(format!("--webhook {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::Runtime(format!("--webhook {addr}: {e}")))?;
    eprintln!("ghcache daemon: webhook deliveries on http://{bound}/");
    let (sink, writes) = tokio::sync::mpsc::channel(WAITING_DELIVERIES);
    let receiver = Receiver::new(secret, sink);
    tokio::spawn(receiver.clone().serve(listener));
    let counts = Arc::new(move || receiver.counts().named().to_vec());
    // Every write GitHub delivers from now on: what the webhook is set to send, which the
    // README asks to be every repository the swarm reads and every event.
    let listening_since = ghcache_core::now_ms();
    let covers = Arc::new(move || vec![Cover::everything(SourceKind::Webhook, listening_since)]);
    Ok(Some(p2p::WriteSource {
        name: format!("webhook on {bound}"),
        writes,
        counts,
        covers,
    }))
}

fn read_secret(file: &str) -> Result<String, Failure> {
    use std::io::Read as _;
    let fail = |e: std::io::Error| Failure::Usage(format!("webhook secret file {file}: {e}"));
    let mut text = String::new();
    std::fs::File::open(file)
        .map_err(fail)?
        .take(SECRET_FILE_MAX)
        .read_to_string(&mut text)
        .map_err(fail)?;
    Ok(text)
}
