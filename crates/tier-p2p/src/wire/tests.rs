//! The wire module's tests: every message kind round-trips, stays under its cap, and no input
//! makes a decoder panic or allocate past its cap.

use std::io;
use std::time::Duration;

use ghcache_core::policy::{Resource, Resources};
use ghcache_core::wire::put_bytes;
use ghcache_core::{CacheKey, ScopeId};
use libp2p::futures::AsyncRead;
use libp2p::{request_response, PeerId};
use proptest::prelude::*;
use tokio::io::AsyncWriteExt as _;

use super::tag::*;
use super::*;

mod budget;

fn samples() -> (Vec<Gossip>, Vec<FetchResponse>, Vec<Control>, Vec<Reply>) {
    let gossip = vec![
        Gossip::Announcement {
            manifest: vec![1, 2, 3],
        },
        Gossip::Invalidation(Invalidation {
            scope_id: ScopeId([3; 32]),
            repo: "o/r".into(),
            resources: Some(Resources::of(&[Resource::Issues, Resource::Search])),
            at_ms: 42,
        }),
        Gossip::Invalidation(Invalidation {
            scope_id: ScopeId([3; 32]),
            repo: String::new(),
            resources: None,
            at_ms: 43,
        }),
        Gossip::Budget {
            scope_id: ScopeId([3; 32]),
            news: budget::news(),
        },
    ];
    let fetch = vec![
        FetchResponse::Found {
            manifest: vec![9; 10],
            body: vec![8; 100],
        },
        FetchResponse::NotFound,
    ];
    let control = vec![
        Control::Get {
            key: CacheKey([1; 32]),
            scope_id: ScopeId([2; 32]),
            deadline_ms: 150,
        },
        Control::Publish {
            manifest: vec![1],
            body: vec![2, 3],
        },
        Control::Invalidate {
            scope_id: ScopeId([4; 32]),
            repo: "o/r".into(),
            resources: None,
            at_ms: 1_700_000_000_000,
        },
        Control::Status,
        Control::Manifest {
            key: CacheKey([7; 32]),
            scope_id: ScopeId([8; 32]),
        },
        Control::Store {
            manifest: vec![5],
            body: vec![6, 7],
            mark: Some(u64::MAX),
        },
        Control::Store {
            manifest: vec![],
            body: vec![],
            mark: None,
        },
        Control::Budget {
            scope_id: ScopeId([9; 32]),
            news: budget::news(),
        },
    ];
    let replies = vec![
        Reply::Hit {
            manifest: vec![1],
            body: vec![],
        },
        Reply::Miss,
        Reply::Ok,
        Reply::Status("{}".into()),
        Reply::Error("nope".into()),
        Reply::Manifest(vec![4, 5]),
    ];
    (gossip, fetch, control, replies)
}

fn presentations() -> Vec<Presentation> {
    vec![
        Presentation {
            token: "a.b.c".into(),
            scopes: vec!["actions:o/a".into(), "actions:o/a#x".into()],
        },
        Presentation {
            token: String::new(),
            scopes: Vec::new(),
        },
    ]
}

fn answers() -> Vec<Presented> {
    vec![Presented::Granted(2), Presented::Refused("expired".into())]
}

#[test]
fn presentations_round_trip_and_stay_under_their_caps() {
    for m in presentations() {
        assert_eq!(Presentation::decode(&m.encode()), Ok(m));
    }
    for m in answers() {
        assert_eq!(Presented::decode(&m.encode()), Ok(m));
    }
    let largest = Presentation {
        token: "t".repeat(MAX_TOKEN),
        scopes: vec!["s".repeat(MAX_SCOPE_NAME); MAX_PRESENTED_SCOPES + 3],
    };
    let bytes = largest.encode();
    assert!(bytes.len() <= MAX_PRESENTATION);
    assert_eq!(
        Presentation::decode(&bytes).map(|p| p.scopes.len()),
        Ok(MAX_PRESENTED_SCOPES)
    );
    let long = Presented::Refused("é".repeat(MAX_REFUSAL));
    assert!(long.encode().len() <= MAX_PRESENTED);
    assert!(Presented::decode(&long.encode()).is_ok());
    let mut too_many = vec![TAG_PRESENT, 0, 0, 0, 0];
    too_many.push(MAX_PRESENTED_SCOPES as u8 + 1);
    assert!(Presentation::decode(&too_many).is_err());
}

const DIALED_BACK: [DialedBack; 3] = [
    DialedBack::Dialed,
    DialedBack::NotDialed,
    DialedBack::NotChecked,
];

#[test]
fn dial_backs_round_trip_and_stay_under_their_caps() {
    for ports in [vec![], vec![4001], vec![1, 65535, 30000]] {
        let request = DialBack { ports };
        assert_eq!(DialBack::decode(&request.encode()), Ok(request));
    }
    let many = DialBack {
        ports: (1..=20).collect(),
    };
    let bytes = many.encode();
    assert!(bytes.len() <= MAX_REACH_REQUEST);
    assert_eq!(
        DialBack::decode(&bytes).map(|r| r.ports.len()),
        Ok(MAX_REACH_PORTS)
    );
    let mut too_many = vec![TAG_DIAL_BACK, MAX_REACH_PORTS as u8 + 1];
    too_many.extend(std::iter::repeat_n(0, 2 * (MAX_REACH_PORTS + 1)));
    assert!(DialBack::decode(&too_many).is_err());
    assert!(
        DialBack::decode(&[TAG_DIAL_BACK, 1, 0]).is_err(),
        "half a port"
    );
    for answer in DIALED_BACK {
        let bytes = answer.encode();
        assert!(bytes.len() <= MAX_REACH_RESPONSE);
        assert_eq!(DialedBack::decode(&bytes), Ok(answer));
    }
    assert!(
        DialedBack::decode(&[TAG_DIALED, 0]).is_err(),
        "trailing byte"
    );
}

/// Every tag of every message kind, for the fuzz test to start messages with.
const ALL_TAGS: [u8; 30] = [
    TAG_CATCH_UP,
    TAG_CAUGHT_UP,
    TAG_PRESENT,
    TAG_GRANTED,
    TAG_REFUSED,
    TAG_DIAL_BACK,
    TAG_DIALED,
    TAG_NOT_DIALED,
    TAG_NOT_CHECKED,
    TAG_ANNOUNCE,
    TAG_INVALIDATE,
    TAG_BUDGET,
    TAG_FETCH,
    TAG_FOUND,
    TAG_NOT_FOUND,
    TAG_DIRECTORY_ASK,
    TAG_DIRECTORY,
    TAG_GET,
    TAG_PUBLISH,
    TAG_CTL_INVALIDATE,
    TAG_STATUS,
    TAG_MANIFEST,
    TAG_STORE,
    TAG_CTL_BUDGET,
    TAG_HIT,
    TAG_MISS,
    TAG_OK,
    TAG_STATUS_TEXT,
    TAG_ERROR,
    TAG_MANIFEST_BYTES,
];

#[test]
fn the_fuzz_test_covers_every_message_kind_and_tags_are_distinct() {
    let (gossip, fetch, control, replies) = samples();
    let mut encoded: Vec<Vec<u8>> = Vec::new();
    encoded.extend(gossip.iter().map(Gossip::encode));
    encoded.extend(fetch.iter().map(FetchResponse::encode));
    encoded.extend(control.iter().map(Control::encode));
    encoded.extend(replies.iter().map(Reply::encode));
    encoded.push(
        FetchRequest {
            key: CacheKey([5; 32]),
            scope_id: ScopeId([6; 32]),
        }
        .encode(),
    );
    encoded.push(
        DirectoryRequest {
            scope_id: ScopeId([4; 32]),
            limit: 1,
        }
        .encode(),
    );
    encoded.push(DirectoryResponse::default().encode());
    encoded.extend(presentations().iter().map(Presentation::encode));
    encoded.extend(answers().iter().map(Presented::encode));
    encoded.push(DialBack { ports: vec![1] }.encode());
    encoded.extend(DIALED_BACK.iter().map(DialedBack::encode));
    encoded.push(
        CatchUp {
            since_ms: 1,
            scopes: vec![ScopeId([2; 32])],
        }
        .encode(),
    );
    encoded.push(CaughtUp::default().encode());
    let mut used: Vec<u8> = encoded.iter().map(|bytes| bytes[0]).collect();
    used.sort_unstable();
    used.dedup();
    let mut fuzzed = ALL_TAGS.to_vec();
    fuzzed.sort_unstable();
    fuzzed.dedup();
    assert_eq!(fuzzed.len(), ALL_TAGS.len(), "tags are distinct");
    assert_eq!(used, fuzzed, "every kind sent is fuzzed, and only those");
}

#[test]
fn every_message_round_trips() {
    let (gossip, fetch, control, replies) = samples();
    for m in gossip {
        assert_eq!(Gossip::decode(&m.encode()), Ok(m));
    }
    for m in fetch {
        assert_eq!(FetchResponse::decode(&m.encode()), Ok(m));
    }
    for m in control {
        assert_eq!(Control::decode(&m.encode()), Ok(m));
    }
    for m in replies {
        assert_eq!(Reply::decode(&m.encode()), Ok(m));
    }
    let req = FetchRequest {
        key: CacheKey([5; 32]),
        scope_id: ScopeId([6; 32]),
    };
    assert!(req.encode().len() <= MAX_FETCH_REQUEST);
    assert_eq!(FetchRequest::decode(&req.encode()), Ok(req));
}

#[test]
fn directory_messages_round_trip_within_their_caps() {
    let request = DirectoryRequest {
        scope_id: ScopeId([4; 32]),
        limit: u16::MAX,
    };
    assert_eq!(request.encode().len(), MAX_DIRECTORY_REQUEST);
    assert_eq!(DirectoryRequest::decode(&request.encode()), Ok(request));
    let peers: Vec<PeerId> = (0..MAX_DIRECTORY_PROVIDERS + 3)
        .map(|_| PeerId::random())
        .collect();
    let item = DirectoryItem {
        manifest: vec![7; 300],
        providers: peers.clone(),
    };
    let reply = DirectoryResponse {
        items: vec![item; MAX_DIRECTORY_ITEMS + 5],
    };
    // What is sent is cut to the caps, so it always decodes.
    let decoded = DirectoryResponse::decode(&reply.encode());
    let Ok(decoded) = decoded else {
        panic!("{decoded:?}");
    };
    assert_eq!(decoded.items.len(), MAX_DIRECTORY_ITEMS);
    assert_eq!(
        decoded.items[0].providers,
        peers[..MAX_DIRECTORY_PROVIDERS].to_vec()
    );
    // The largest reply fits the frame cap.
    let largest = DirectoryResponse {
        items: vec![
            DirectoryItem {
                manifest: vec![0; MAX_MANIFEST],
                providers: peers[..MAX_DIRECTORY_PROVIDERS].to_vec(),
            };
            MAX_DIRECTORY_ITEMS
        ],
    };
    assert!(largest.encode().len() <= MAX_DIRECTORY_RESPONSE);
    assert_eq!(
        DirectoryResponse::decode(&DirectoryResponse::default().encode()),
        Ok(DirectoryResponse::default())
    );
}

#[test]
fn directory_replies_over_their_caps_are_refused_before_allocating() {
    let mut too_many = vec![TAG_DIRECTORY];
    too_many.extend_from_slice(&u32::MAX.to_le_bytes());
    let err = DirectoryResponse::decode(&too_many);
    assert_eq!(err.map_err(|e| e.reason), Err("too many manifests"));

    let mut providers = vec![TAG_DIRECTORY];
    providers.extend_from_slice(&1u32.to_le_bytes());
    put_bytes(&mut providers, b"m");
    providers.push(MAX_DIRECTORY_PROVIDERS as u8 + 1);
    let err = DirectoryResponse::decode(&providers);
    assert_eq!(err.map_err(|e| e.reason), Err("too many providers"));

    let mut bad_peer = vec![TAG_DIRECTORY];
    bad_peer.extend_from_slice(&1u32.to_le_bytes());
    put_bytes(&mut bad_peer, b"m");
    bad_peer.push(1);
    put_bytes(&mut bad_peer, b"not a peer id");
    let err = DirectoryResponse::decode(&bad_peer);
    assert_eq!(err.map_err(|e| e.reason), Err("bad peer id"));

    let mut big_manifest = vec![TAG_DIRECTORY];
    big_manifest.extend_from_slice(&1u32.to_le_bytes());
    big_manifest.extend_from_slice(&((MAX_MANIFEST + 1) as u32).to_le_bytes());
    assert!(DirectoryResponse::decode(&big_manifest).is_err());
    assert!(DirectoryResponse::decode(&vec![0; MAX_DIRECTORY_RESPONSE + 1]).is_err());
    assert!(DirectoryRequest::decode(&[TAG_DIRECTORY_ASK, 1, 2]).is_err());
}

#[test]
fn oversized_fields_are_refused() {
    let big = FetchResponse::Found {
        manifest: vec![0; MAX_MANIFEST + 1],
        body: vec![],
    };
    assert!(FetchResponse::decode(&big.encode()).is_err());
    let big = Gossip::Announcement {
        manifest: vec![0; MAX_GOSSIP],
    };
    assert!(Gossip::decode(&big.encode()).is_err());
}

#[tokio::test]
async fn frames_over_the_cap_are_refused_before_reading() {
    let mut input: &[u8] = &[0xff, 0xff, 0xff, 0x7f, 1, 2, 3];
    let result = read_frame(&mut input, 1024).await;
    assert!(result.is_err());
    // Nothing past the prefix was consumed: the body was never read into memory.
    assert_eq!(input, &[1, 2, 3]);
}

#[tokio::test]
async fn frames_round_trip_and_end_cleanly() -> io::Result<()> {
    let mut out = Vec::new();
    write_frame(&mut out, b"hello").await?;
    write_frame(&mut out, &[7; 100_000]).await?;
    let mut input: &[u8] = &out;
    assert_eq!(
        read_frame(&mut input, 1 << 20).await?,
        Some(b"hello".to_vec())
    );
    let big = read_frame(&mut input, 1 << 20).await?.unwrap_or_default();
    assert_eq!(big.len(), 100_000);
    assert!(big.capacity() <= 100_000, "never allocates past the frame");
    assert_eq!(read_frame(&mut input, 1 << 20).await?, None);
    Ok(())
}

#[test]
fn each_request_kind_fits_its_cap_exactly_at_its_largest() {
    let largest = [
        Control::Get {
            key: CacheKey([1; 32]),
            scope_id: ScopeId([2; 32]),
            deadline_ms: u32::MAX,
        },
        Control::Publish {
            manifest: vec![0; MAX_MANIFEST],
            body: vec![0; MAX_BODY],
        },
        Control::Invalidate {
            scope_id: ScopeId([4; 32]),
            repo: "r".repeat(MAX_REPO),
            resources: Some(Resources::of(&Resource::ALL)),
            at_ms: u64::MAX,
        },
        Control::Status,
        Control::Manifest {
            key: CacheKey([7; 32]),
            scope_id: ScopeId([8; 32]),
        },
        Control::Store {
            manifest: vec![0; MAX_MANIFEST],
            body: vec![0; MAX_BODY],
            mark: Some(1),
        },
        Control::Budget {
            scope_id: ScopeId([9; 32]),
            news: budget::largest_news(),
        },
    ];
    for request in largest {
        let bytes = request.encode();
        assert_eq!(
            control_request_cap(bytes[0]),
            Some(bytes.len()),
            "{bytes:.8?}"
        );
    }
    assert_eq!(control_request_cap(TAG_HIT), None, "a reply is no request");
}

/// A length prefix and the first `sent` bytes of a control request declaring `len` bytes.
fn partial_request(tag: u8, len: u32, sent: usize) -> Vec<u8> {
    let mut bytes = len.to_le_bytes().to_vec();
    bytes.push(tag);
    bytes.extend(std::iter::repeat_n(0u8, sent.saturating_sub(1)));
    bytes
}

#[tokio::test]
async fn a_request_longer_than_its_kind_allows_is_refused_after_its_tag() {
    let budget = FrameBudget::new(0);
    for (tag, len) in [
        (TAG_GET, 70),
        (TAG_STATUS, 2),
        (TAG_MANIFEST, MAX_CONTROL_REQUEST as u32),
        (TAG_CTL_INVALIDATE, 1 << 20),
        (TAG_CTL_BUDGET, 1 << 16),
    ] {
        let bytes = partial_request(tag, len, 64);
        let mut input: &[u8] = &bytes[4..];
        let result = read_request(&mut input, len.to_le_bytes(), &budget).await;
        let err = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("exceeds its kind's cap"), "{tag:#x}: {err}");
        // Only the tag was read: nothing past it was taken into memory.
        assert_eq!(input.len(), 63, "{tag:#x}");
    }
    let bytes = partial_request(0x77, 10, 10);
    let mut input: &[u8] = &bytes[4..];
    let unknown = read_request(&mut input, [10, 0, 0, 0], &budget).await;
    assert!(unknown.is_err());
    assert_eq!(input.len(), 9);
}

#[tokio::test]
async fn a_stalled_large_request_holds_memory_for_what_arrived_not_what_it_declared(
) -> io::Result<()> {
    let budget = FrameBudget::new(MAX_CONTROL_REQUEST);
    let full = budget.available();
    let (mut client, mut server) = tokio::io::duplex(1 << 20);
    let arrived = 100 << 10;
    let len = MAX_CONTROL_REQUEST as u32;
    let bytes = partial_request(TAG_STORE, len, arrived);
    client.write_all(&bytes[4..]).await?;
    let prefix = len.to_le_bytes();
    let reader = read_request(&mut server, prefix, &budget);
    // The client sends nothing more: the read waits, holding only what the bytes needed.
    let waited = tokio::time::timeout(Duration::from_millis(200), reader).await;
    assert!(waited.is_err(), "the frame is not complete");
    let held = full - budget.available();
    assert!(
        held <= 2 * arrived,
        "{held} bytes held for {arrived} that arrived"
    );
    // Dropping the read (the server's deadline) gives all of it back.
    assert_eq!(budget.available(), full);
    Ok(())
}

#[tokio::test]
async fn large_requests_wait_for_the_budget_small_ones_do_not() -> io::Result<()> {
    let budget = FrameBudget::new(MAX_CONTROL_REQUEST);
    let publish = Control::Publish {
        manifest: vec![1; 100],
        body: vec![2; MAX_BODY],
    }
    .encode();
    let prefix = (publish.len() as u32).to_le_bytes();
    let mut input: &[u8] = &publish;
    let first = read_request(&mut input, prefix, &budget).await?;
    assert_eq!(
        Control::decode(&first).map(|c| matches!(c, Control::Publish { .. })),
        Ok(true)
    );
    // While `first` is held the budget cannot cover a second publish as large...
    let mut again: &[u8] = &publish;
    let second = tokio::time::timeout(
        Duration::from_millis(200),
        read_request(&mut again, prefix, &budget),
    )
    .await;
    assert!(
        second.is_err(),
        "a second large request waits for the budget"
    );
    // ...but a status request is read at once.
    let status = Control::Status.encode();
    let mut input: &[u8] = &status;
    let small = read_request(&mut input, [1, 0, 0, 0], &budget).await?;
    assert_eq!(Control::decode(&small), Ok(Control::Status));
    drop(first);
    let mut again: &[u8] = &publish;
    assert!(read_request(&mut again, prefix, &budget).await.is_ok());
    Ok(())
}

/// Gives `head`, then never another byte: a peer that stalls after its first bytes.
struct Stalls {
    head: Vec<u8>,
}

impl AsyncRead for Stalls {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<usize>> {
        if self.head.is_empty() {
            return std::task::Poll::Pending;
        }
        let n = buf.len().min(self.head.len());
        buf[..n].copy_from_slice(&self.head[..n]);
        self.head.drain(..n);
        std::task::Poll::Ready(Ok(n))
    }
}

/// The first bytes of a fetch response frame: its length prefix, the tag, a small manifest
/// and the body's length prefix, which declares `body_len`.
fn response_head(body_len: usize) -> Vec<u8> {
    let manifest = [7u8; 100];
    let len = 1 + 4 + manifest.len() + 4 + body_len;
    let mut head = (len as u32).to_le_bytes().to_vec();
    head.push(TAG_FOUND);
    put_bytes(&mut head, &manifest);
    head.extend_from_slice(&(body_len as u32).to_le_bytes());
    head.extend_from_slice(&[0; 64]);
    head
}

#[tokio::test]
async fn a_body_declared_over_the_cap_is_refused_before_it_arrives() {
    use request_response::Codec as _;
    let protocol = FETCH_PROTOCOL;
    let mut codec = FetchCodec;
    let mut over = Stalls {
        head: response_head(MAX_BODY + 1),
    };
    let read = codec.read_response(&protocol, &mut over);
    match tokio::time::timeout(Duration::from_secs(5), read).await {
        Ok(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}"),
        Ok(Ok(_)) => panic!("an oversized body was accepted"),
        Err(_) => panic!("the read waited for the megabytes behind the prefix"),
    }
    // At the cap, the read waits for the body, as it must.
    let mut at_cap = Stalls {
        head: response_head(MAX_BODY),
    };
    let read = codec.read_response(&protocol, &mut at_cap);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), read)
            .await
            .is_err(),
        "a body at the cap is read to its end"
    );
}

#[tokio::test]
async fn a_whole_response_still_reads_through_the_codec() -> io::Result<()> {
    let found = FetchResponse::Found {
        manifest: vec![1; 300],
        body: vec![2; 70_000],
    };
    let payload = found.encode();
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&payload);
    let mut input = Stalls { head: frame };
    let read = request_response::Codec::read_response(&mut FetchCodec, &FETCH_PROTOCOL, &mut input)
        .await?;
    assert_eq!(read, found);
    Ok(())
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Gossip::decode(&bytes);
        let _ = FetchRequest::decode(&bytes);
        let _ = FetchResponse::decode(&bytes);
        let _ = Control::decode(&bytes);
        let _ = Reply::decode(&bytes);
        let _ = DirectoryRequest::decode(&bytes);
        let _ = DirectoryResponse::decode(&bytes);
        let _ = Presentation::decode(&bytes);
        let _ = Presented::decode(&bytes);
        let _ = DialBack::decode(&bytes);
        let _ = DialedBack::decode(&bytes);
        let _ = CatchUp::decode(&bytes);
        let _ = CaughtUp::decode(&bytes);
    }

    #[test]
    fn tags_with_random_tails_never_panic(
        tag in prop::sample::select(ALL_TAGS.to_vec()),
        tail in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = vec![tag];
        bytes.extend_from_slice(&tail);
        let _ = Gossip::decode(&bytes);
        let _ = FetchRequest::decode(&bytes);
        let _ = FetchResponse::decode(&bytes);
        let _ = Control::decode(&bytes);
        let _ = Reply::decode(&bytes);
        let _ = DirectoryRequest::decode(&bytes);
        let _ = DirectoryResponse::decode(&bytes);
        let _ = Presentation::decode(&bytes);
        let _ = Presented::decode(&bytes);
        let _ = DialBack::decode(&bytes);
        let _ = DialedBack::decode(&bytes);
        let _ = CatchUp::decode(&bytes);
        let _ = CaughtUp::decode(&bytes);
    }

    #[test]
    fn huge_length_prefixes_are_errors(len in any::<u32>(), tail in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = vec![TAG_FOUND];
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&tail);
        // Either the field fits in what was sent, or decoding fails: never a read past it.
        if let Ok(FetchResponse::Found { manifest, body }) = FetchResponse::decode(&bytes) {
            prop_assert!(manifest.len() + body.len() <= tail.len());
        }
    }

    #[test]
    fn random_frames_never_allocate_past_the_cap(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        cap in 0usize..2048,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build();
        prop_assert!(rt.is_ok());
        if let Ok(rt) = rt {
            rt.block_on(async {
                let mut input: &[u8] = &bytes;
                while let Ok(Some(frame)) = read_frame(&mut input, cap).await {
                    assert!(frame.len() <= cap && frame.capacity() <= cap.max(1));
                }
            });
        }
    }
}

#[test]
fn catch_ups_round_trip_within_their_caps_and_never_claim_more_than_they_hold() {
    let scopes: Vec<ScopeId> = (0..MAX_CATCH_UP_SCOPES + 3)
        .map(|n| ScopeId([n as u8; 32]))
        .collect();
    let request = CatchUp {
        since_ms: 77,
        scopes: scopes.clone(),
    };
    assert_eq!(request.encode().len(), MAX_CATCH_UP_REQUEST);
    assert_eq!(
        CatchUp::decode(&request.encode()),
        Ok(CatchUp {
            since_ms: 77,
            scopes: scopes[..MAX_CATCH_UP_SCOPES].to_vec(),
        })
    );
    let mut too_many = vec![
        TAG_CATCH_UP,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        MAX_CATCH_UP_SCOPES as u8 + 1,
    ];
    too_many.extend(std::iter::repeat_n(0, 32 * (MAX_CATCH_UP_SCOPES + 1)));
    assert!(CatchUp::decode(&too_many).is_err());

    let invalidation = |at_ms: u64| Invalidation {
        scope_id: ScopeId([3; 32]),
        repo: "o".repeat(ghcache_core::MAX_REPO),
        resources: Some(Resources::of(&[Resource::PullRequests])),
        at_ms,
    };
    let few = CaughtUp {
        complete_since_ms: 5,
        invalidations: vec![invalidation(10), invalidation(11)],
        vouch: Vouch::default(),
    };
    assert_eq!(CaughtUp::decode(&few.encode()), Ok(few.clone()));
    // A reply of an earlier version ends after its invalidations: it vouches for nothing.
    let mut earlier = few.encode();
    earlier.truncate(earlier.len() - 2);
    assert_eq!(CaughtUp::decode(&earlier), Ok(few));
    // Over the cap: the newest are sent, complete only from the oldest of them.
    let many = CaughtUp {
        complete_since_ms: 5,
        invalidations: (0..MAX_CATCH_UP_ITEMS as u64 + 10)
            .map(invalidation)
            .collect(),
        vouch: Vouch::default(),
    };
    let bytes = many.encode();
    assert!(bytes.len() <= MAX_CAUGHT_UP);
    let Ok(sent) = CaughtUp::decode(&bytes) else {
        panic!("the largest reply decodes");
    };
    assert_eq!(sent.invalidations.len(), MAX_CATCH_UP_ITEMS);
    assert_eq!(sent.complete_since_ms, 10);
    assert_eq!(sent.invalidations.first().map(|i| i.at_ms), Some(10));
    let mut count_too_large = vec![TAG_CAUGHT_UP, 0, 0, 0, 0, 0, 0, 0, 0];
    count_too_large.extend_from_slice(&(MAX_CATCH_UP_ITEMS as u32 + 1).to_le_bytes());
    assert!(CaughtUp::decode(&count_too_large).is_err());
}

#[test]
fn an_invalidate_from_an_earlier_command_has_no_time() {
    let now = Control::Invalidate {
        scope_id: ScopeId([4; 32]),
        repo: "o/r".into(),
        resources: None,
        at_ms: 5,
    };
    let mut earlier = now.encode();
    earlier.truncate(earlier.len() - 8);
    match Control::decode(&earlier) {
        Ok(Control::Invalidate { at_ms, repo, .. }) => {
            assert_eq!((at_ms, repo.as_str()), (0, "o/r"))
        }
        other => panic!("not an invalidate: {other:?}"),
    }
}
