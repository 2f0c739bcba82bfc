//! A malicious member of the swarm, for the end-to-end tests: it holds the swarm key, announces
//! an honest-looking manifest for one key, and answers every fetch of it with a lie.
//!
//! `hostile-peer --swarm-key FILE --manifest FILE --body FILE --bootstrap MULTIADDR --lie KIND`
//! where the manifest and body are an honest entry's encodings and KIND is one of
//! `bad-signature`, `wrong-scope`, `wrong-key`, `expired`, `oversized`, or a failure instead of
//! a lie: `stall` (takes the request and never answers) or `vanish` (dies as the request
//! arrives, a provider killed mid-transfer). It prints `announced` on stdout once its
//! announcement was published and `asked` for every fetch request, then serves until killed.

use std::time::Duration;

use ghcache_core::{now_ms, Body, CacheKey, Digest, Entry, Manifest, ScopeId};
use ghcache_tier_p2p::wire::{self, FetchCodec, FetchResponse, Gossip};
use ghcache_tier_p2p::{sign, SwarmKey};
use libp2p::futures::StreamExt as _;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{gossipsub, Multiaddr, Swarm};

#[derive(NetworkBehaviour)]
struct Behaviour {
    gossipsub: gossipsub::Behaviour,
    fetch: request_response::Behaviour<FetchCodec>,
}

struct Args {
    swarm_key: SwarmKey,
    entry: Entry,
    bootstrap: Multiaddr,
    lie: String,
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("hostile-peer: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(serve(args)),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        eprintln!("hostile-peer: {e}");
        std::process::exit(1);
    }
}

fn parse_args() -> Result<Args, String> {
    let mut swarm_key = None;
    let mut manifest = None;
    let mut body = None;
    let mut bootstrap = None;
    let mut lie = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--swarm-key" => swarm_key = Some(value),
            "--manifest" => manifest = Some(value),
            "--body" => body = Some(value),
            "--bootstrap" => bootstrap = Some(value),
            "--lie" => lie = Some(value),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let read = |path: Option<String>, what: &str| -> Result<Vec<u8>, String> {
        let path = path.ok_or(format!("--{what} is required"))?;
        std::fs::read(&path).map_err(|e| format!("{path}: {e}"))
    };
    let key_text = String::from_utf8(read(swarm_key, "swarm-key")?).map_err(|e| e.to_string())?;
    let swarm_key = SwarmKey::parse(&key_text).map_err(|e| e.to_string())?;
    let manifest = Manifest::decode(&read(manifest, "manifest")?).map_err(|e| e.to_string())?;
    let body = Body::decode(&read(body, "body")?).map_err(|e| e.to_string())?;
    let bootstrap = bootstrap
        .ok_or("--bootstrap is required")?
        .parse()
        .map_err(|e| format!("--bootstrap: {e}"))?;
    Ok(Args {
        swarm_key,
        entry: Entry { manifest, body },
        bootstrap,
        lie: lie.ok_or("--lie is required")?,
    })
}

/// The honest entry, re-signed by this peer: what it announces.
fn signed(mut manifest: Manifest, keypair: &Keypair) -> Result<Manifest, String> {
    manifest.producer = None;
    manifest.signature = None;
    sign::sign(&mut manifest, keypair).map_err(|e| e.to_string())?;
    Ok(manifest)
}

/// The lie told in answer to a fetch.
fn lie(kind: &str, honest: &Entry, keypair: &Keypair) -> Result<Entry, String> {
    let mut entry = honest.clone();
    match kind {
        "bad-signature" => {
            // Signed, then changed: the signature no longer covers what is sent.
            entry.manifest = signed(entry.manifest, keypair)?;
            entry.manifest.ttl_ms += 3_600_000;
            return Ok(entry);
        }
        "wrong-scope" => entry.manifest.scope_id = ScopeId::of("someone else's scope"),
        "wrong-key" => entry.manifest.key = CacheKey(*blake3::hash(b"another command").as_bytes()),
        "expired" => {
            entry.manifest.created_at_ms = now_ms().saturating_sub(3_600_000);
            entry.manifest.ttl_ms = 60_000;
        }
        "oversized" => {
            entry.body = Body {
                stdout: vec![b'x'; wire::MAX_BODY + 1],
                stderr: Vec::new(),
            };
            let encoded = entry.body.encode();
            entry.manifest.body_digest = Digest::of(&encoded);
            entry.manifest.body_size = encoded.len() as u64;
        }
        // Not lies: what these peers do happens when the request arrives (see `serve`).
        "stall" | "vanish" => {}
        other => return Err(format!("unknown lie {other}")),
    }
    entry.manifest = signed(entry.manifest, keypair)?;
    Ok(entry)
}

async fn serve(args: Args) -> Result<(), String> {
    let keypair = Keypair::generate_ed25519();
    let mut swarm = build(&keypair, &args.swarm_key)?;
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().map_err(|e| format!("{e}"))?)
        .map_err(|e| e.to_string())?;
    swarm
        .dial(args.bootstrap.clone())
        .map_err(|e| e.to_string())?;
    let scope = &args.entry.manifest.scope_id;
    let topic = gossipsub::IdentTopic::new(format!("ghcache/v1/{}", scope.to_hex()));
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&topic)
        .map_err(|e| e.to_string())?;
    let mut announcement = signed(args.entry.manifest.clone(), &keypair)?;
    announcement.created_at_ms = now_ms();
    let announcement = signed(announcement, &keypair)?;
    let message = Gossip::Announcement {
        manifest: announcement.encode(),
    }
    .encode();
    let answer = lie(&args.lie, &args.entry, &keypair)?;
    let mut announced = false;
    let mut stalled = Vec::new();
    let mut retry = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = retry.tick(), if !announced => {
                if swarm.behaviour_mut().gossipsub.publish(topic.clone(), message.clone()).is_ok() {
                    announced = true;
                    println!("announced");
                }
            }
            event = swarm.select_next_some() => {
                if let SwarmEvent::Behaviour(BehaviourEvent::Fetch(request_response::Event::Message {
                    message: request_response::Message::Request { request, channel, .. },
                    ..
                })) = event
                {
                    println!("asked");
                    match args.lie.as_str() {
                        "vanish" => std::process::exit(0),
                        "stall" => {
                            // Dropping the channel would answer "no response" at once; a stalled
                            // peer keeps the requester waiting.
                            stalled.push(channel);
                            continue;
                        }
                        _ => {}
                    }
                    let response = if request.key == args.entry.manifest.key {
                        FetchResponse::Found {
                            manifest: answer.manifest.encode(),
                            body: answer.body.encode(),
                        }
                    } else {
                        FetchResponse::NotFound
                    };
                    let _ = swarm.behaviour_mut().fetch.send_response(channel, response);
                }
            }
        }
    }
}

fn build(keypair: &Keypair, key: &SwarmKey) -> Result<Swarm<Behaviour>, String> {
    let transport =
        ghcache_tier_p2p::transport(keypair, key, Default::default()).map_err(|e| e.to_string())?;
    let gossipsub = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(keypair.clone()),
        gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .build()
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let fetch = request_response::Behaviour::with_codec(
        FetchCodec,
        [(wire::FETCH_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default(),
    );
    Ok(Swarm::new(
        transport,
        Behaviour { gossipsub, fetch },
        keypair.public().to_peer_id(),
        libp2p::swarm::Config::with_tokio_executor()
            .with_idle_connection_timeout(Duration::from_secs(300)),
    ))
}
