//! OIDC tokens in the swarm task: a runner shows each peer it connects to its job's token
//! (`/ghcache/oidc/1`), and a node answers the tokens peers show it. The checks of a token are
//! [`crate::oidc`]'s; what a grant allows is the binding's ([`crate::oidc::Binding`]).

use libp2p::request_response;
use libp2p::PeerId;

use crate::log::log;
use crate::oidc;
use crate::status::bump;
use crate::wire::{Presentation, Presented};

use super::state::Node;

impl Node {
    /// Shows `peer` this job's OIDC token and the scopes this node produces for, so that it
    /// takes this node's entries for them. The file is read each time: a token refreshed
    /// during a long job reaches the peers met later.
    pub(super) fn present(&mut self, peer: PeerId) {
        let Some(path) = &self.token_file else {
            return;
        };
        match oidc::read_token(path) {
            Ok(token) => {
                let presentation = Presentation {
                    token,
                    scopes: self.produces_for.clone(),
                };
                self.swarm
                    .behaviour_mut()
                    .oidc
                    .send_request(&peer, presentation);
            }
            Err(reason) => log(format_args!(
                "cannot present the OIDC token to {peer}: {reason}"
            )),
        }
    }

    pub(super) fn on_oidc(&mut self, event: request_response::Event<Presentation, Presented>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let outcome = oidc::answer(
                        self.verifier.as_ref(),
                        &self.shared.accept.binding,
                        peer,
                        &request,
                    );
                    match &outcome {
                        Ok((job, granted)) => log(format_args!(
                            "{peer} is a job of {}: it may produce for {granted} of the {} \
                             scopes it named",
                            job.repository,
                            request.scopes.len()
                        )),
                        Err(reason) => {
                            if self.verifier.is_some() {
                                bump(&self.shared.counters.tokens_refused);
                            }
                            log(format_args!("refused the OIDC token of {peer}: {reason}"));
                        }
                    }
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .oidc
                        .send_response(channel, Presented::of(&outcome));
                }
                request_response::Message::Response { response, .. } => match response {
                    Presented::Granted(n) => log(format_args!(
                        "{peer} took the OIDC token: this node may produce for {n} scopes there"
                    )),
                    Presented::Refused(reason) => {
                        log(format_args!("{peer} refused the OIDC token: {reason}"))
                    }
                },
            },
            request_response::Event::OutboundFailure { peer, error, .. } => log(format_args!(
                "could not present the OIDC token to {peer}: {error}"
            )),
            _ => {}
        }
    }
}
