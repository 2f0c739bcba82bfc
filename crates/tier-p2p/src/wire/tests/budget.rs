//! Rate-limit news on the wire: on gossip and from a command to its daemon, within one cap.

use ghcache_core::budget::{
    News, Pause, Principal, Reading, Standing, MAX_NEWS, MAX_RESOURCES, WRITES_PER_MINUTE,
};
use ghcache_core::{ScopeId, TokenHash};

use super::super::gossip::MAX_BUDGET_MESSAGE;
use super::super::tag::{TAG_BUDGET, TAG_CTL_BUDGET};
use super::super::*;

fn reading(resource: &str, remaining: u64) -> Reading {
    Reading {
        resource: resource.to_owned(),
        limit: 5000,
        remaining,
        used: 5000 - remaining,
        reset_s: 1_700_003_600,
        at_ms: 1_700_000_000_000,
    }
}

/// News of a token's budget: a pause and two readings.
pub(super) fn news() -> News {
    let mut standing = Standing {
        pause: Some(Pause {
            since_ms: 1_700_000_000_000,
            until_ms: 1_700_000_060_000,
            strikes: 1,
        }),
        ..Standing::default()
    };
    for r in [reading("core", 12), reading("graphql", 4000)] {
        standing.readings.insert(r.resource.clone(), r);
    }
    News {
        principal: Principal::of(Some(&TokenHash([7; 32])), None),
        standing,
    }
}

/// News as large as news gets: the longest principal, a pause, every resource with the
/// longest name, a minute's writes.
pub(super) fn largest_news() -> News {
    let name = format!("repo:{}", "r".repeat(295));
    let principal = Principal::parse(&name).unwrap_or_else(|| panic!("{name} is a principal"));
    let mut standing = Standing {
        pause: Some(Pause {
            since_ms: u64::MAX,
            until_ms: u64::MAX,
            strikes: u32::MAX,
        }),
        ..Standing::default()
    };
    for n in 0..MAX_RESOURCES {
        let resource = format!("{n:0>300}");
        standing
            .readings
            .insert(resource.clone(), reading(&resource, 1));
    }
    standing.writes = vec![u64::MAX; WRITES_PER_MINUTE];
    News {
        principal,
        standing,
    }
}

#[test]
fn the_largest_news_fits_a_gossip_message_and_a_control_request() {
    let news = largest_news();
    let gossip = Gossip::Budget {
        scope_id: ScopeId([1; 32]),
        news: news.clone(),
    };
    let bytes = gossip.encode();
    assert_eq!(bytes.len(), 1 + 32 + MAX_NEWS, "MAX_NEWS is exact");
    assert!(bytes.len() <= MAX_GOSSIP);
    assert_eq!(Gossip::decode(&bytes), Ok(gossip));
    let request = Control::Budget {
        scope_id: ScopeId([2; 32]),
        news,
    };
    assert_eq!(
        control_request_cap(TAG_CTL_BUDGET),
        Some(request.encode().len())
    );
    assert_eq!(MAX_BUDGET_MESSAGE, request.encode().len());
}

/// Both encodings of budget news: on gossip and to a daemon.
fn encodings(news: &News) -> [Vec<u8>; 2] {
    let scope_id = ScopeId([1; 32]);
    let news = news.clone();
    [
        Gossip::Budget {
            scope_id,
            news: news.clone(),
        }
        .encode(),
        Control::Budget { scope_id, news }.encode(),
    ]
}

/// Whether `bytes` decodes as the kind its tag names.
fn decodes(bytes: &[u8]) -> bool {
    match bytes.first() {
        Some(&TAG_BUDGET) => Gossip::decode(bytes).is_ok(),
        _ => Control::decode(bytes).is_ok(),
    }
}

#[test]
fn news_that_names_no_principal_or_too_many_resources_is_refused() {
    let anyone = News {
        principal: Principal::of(None, None),
        standing: Standing::default(),
    };
    for plain in encodings(&anyone) {
        assert!(decodes(&plain), "{plain:?}");
        let mut trailing = plain.clone();
        trailing.push(0);
        assert!(!decodes(&trailing), "a trailing byte");
        // The same length, no principal's name.
        let name = plain.windows(9).position(|w| w == b"anonymous");
        let mut nobody = plain.clone();
        if let Some(at) = name {
            nobody[at + 8] = b'S';
        }
        assert!(name.is_some() && !decodes(&nobody), "not a principal");
    }
    let mut many = anyone;
    for n in 0..=MAX_RESOURCES {
        many.standing
            .readings
            .insert(n.to_string(), reading(&n.to_string(), 1));
    }
    for bytes in encodings(&many) {
        assert!(!decodes(&bytes), "too many resources");
    }
    // Each kind on its own channel: a budget gossip is no control request, and back.
    let [gossip, control] = encodings(&news());
    assert!(Control::decode(&gossip).is_err() && Gossip::decode(&control).is_err());
}
