//! The plausibility of rate-limit news from a peer (see `crate::budget`): what a pause, a
//! reading or a write time may say without being made up. A pause or a write time from the
//! future would hold a principal's requests back on every machine that takes it; a reading
//! with requests to spare, or of a window ending hours ahead, would have them sent when GitHub
//! refuses them.

use std::time::Duration;

use ghcache_core::budget::{
    News, Pause, Principal, Reading, LONGEST_PAUSE, WRITES_PER_MINUTE, WRITE_SPACING,
};

use super::INVALIDATION_MAX_AGE;

/// The longest pause a peer may ask for: the longest a run of secondary limits grows to, and a
/// minute for a `Retry-After` a little above it. Longer is a made-up pause that would hold a
/// principal's requests back fleet-wide.
const PAUSE_MAX: Duration = LONGEST_PAUSE.saturating_add(Duration::from_secs(60));
/// How far ahead a reading's window may end: GitHub's windows last an hour at most, so two
/// leave an hour for a clock that is off.
const RESET_MAX_AHEAD: Duration = Duration::from_secs(2 * 3600);
/// How far ahead a principal's write may be due: a book keeps its last
/// [`WRITES_PER_MINUTE`] writes, spaced [`WRITE_SPACING`] apart, so a full schedule reaches
/// 80 s ahead; two minutes leave room. Further ahead, a write time would hold the principal's
/// writes back on every machine that takes it.
const WRITE_MAX_AHEAD: Duration = Duration::from_secs(120);

const _: () = assert!(
    WRITE_SPACING.as_secs() * WRITES_PER_MINUTE as u64 <= WRITE_MAX_AHEAD.as_secs(),
    "a full schedule of writes is plausible"
);

/// Whether rate-limit news may be true at `now_ms` with clocks up to `skew` apart, of a budget
/// peers share: every pause, reading and write time in it passes [`plausible_pause`],
/// [`plausible_reading`] and [`plausible_write`]. One part that cannot be so makes the whole
/// news suspect: it is not merged, in part or whole. News of requests without a token is not
/// any other machine's: GitHub counts those per IP address, which runners do not share.
///
/// # Errors
/// What cannot be so.
pub(crate) fn plausible(news: &News, now_ms: u64, skew: Duration) -> Result<(), &'static str> {
    if news.principal == Principal::of(None, None) {
        return Err("news of requests without a token, which GitHub counts per address");
    }
    if let Some(pause) = &news.standing.pause {
        plausible_pause(pause, now_ms)?;
    }
    for reading in news.standing.readings.values() {
        plausible_reading(reading, now_ms, skew)?;
    }
    for at_ms in &news.standing.writes {
        plausible_write(*at_ms, now_ms, skew)?;
    }
    Ok(())
}

/// A write is sent, or due, at most [`WRITE_MAX_AHEAD`] ahead, by a clock at most `skew`
/// ahead of ours. Old ones are no harm: a book forgets writes older than a minute.
///
/// # Errors
/// What cannot be so.
pub(crate) fn plausible_write(at_ms: u64, now_ms: u64, skew: Duration) -> Result<(), &'static str> {
    let ahead = WRITE_MAX_AHEAD.saturating_add(skew).as_millis() as u64;
    if at_ms > now_ms.saturating_add(ahead) {
        return Err("a write due minutes ahead");
    }
    Ok(())
}

/// A pause is sent when GitHub asks for it, so it began within [`INVALIDATION_MAX_AGE`] of
/// now (either way: clocks differ), and lasts no longer than [`PAUSE_MAX`].
///
/// # Errors
/// What cannot be so.
pub(crate) fn plausible_pause(pause: &Pause, now_ms: u64) -> Result<(), &'static str> {
    let max_age = INVALIDATION_MAX_AGE.as_millis() as u64;
    if now_ms.saturating_sub(pause.since_ms) > max_age {
        return Err("a pause that began too long ago");
    }
    if pause.since_ms > now_ms.saturating_add(max_age) {
        return Err("a pause that begins in the future");
    }
    if pause.until_ms < pause.since_ms {
        return Err("a pause that ends before it begins");
    }
    if pause.until_ms - pause.since_ms > PAUSE_MAX.as_millis() as u64 {
        return Err("a pause longer than GitHub asks for");
    }
    Ok(())
}

/// A reading was taken from an answer by a clock at most `skew` ahead of ours, of a window
/// that ends within [`RESET_MAX_AHEAD`], with no more requests left than the window allows.
///
/// # Errors
/// What cannot be so.
pub(crate) fn plausible_reading(
    reading: &Reading,
    now_ms: u64,
    skew: Duration,
) -> Result<(), &'static str> {
    if reading.at_ms > now_ms.saturating_add(skew.as_millis() as u64) {
        return Err("a reading taken in the future");
    }
    if reading.reset_s.saturating_mul(1000)
        > now_ms.saturating_add(RESET_MAX_AHEAD.as_millis() as u64)
    {
        return Err("a reading whose window ends hours ahead");
    }
    if reading.remaining > reading.limit {
        return Err("a reading with more requests left than its limit");
    }
    Ok(())
}

/// What of this machine's `news` peers would take (see [`plausible`]): a pause, a reading or a
/// write time they would find implausible is left out, so that the rest still reaches them;
/// `None` when nothing is left, or the news is of requests without a token. A pause that began
/// over [`INVALIDATION_MAX_AGE`] ago, the latest one of the principal kept in the book, is the
/// usual case: it was told when it began.
pub(crate) fn plausible_part(mut news: News, now_ms: u64, skew: Duration) -> Option<News> {
    if news.principal == Principal::of(None, None) {
        return None;
    }
    let standing = &mut news.standing;
    if standing
        .pause
        .is_some_and(|p| plausible_pause(&p, now_ms).is_err())
    {
        standing.pause = None;
    }
    standing
        .readings
        .retain(|_, r| plausible_reading(r, now_ms, skew).is_ok());
    standing
        .writes
        .retain(|at| plausible_write(*at, now_ms, skew).is_ok());
    let left = standing.pause.is_some() || !standing.readings.is_empty();
    (left || !standing.writes.is_empty()).then_some(news)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ghcache_core::{now_ms, CLOCK_SKEW};

    fn pause(since_ms: u64, lasts: Duration) -> Pause {
        Pause {
            since_ms,
            until_ms: since_ms + lasts.as_millis() as u64,
            strikes: 0,
        }
    }

    fn reading(at_ms: u64, reset_s: u64, remaining: u64) -> Reading {
        Reading {
            resource: "core".into(),
            limit: 5000,
            remaining,
            used: 5000u64.saturating_sub(remaining),
            reset_s,
            at_ms,
        }
    }

    fn news(pause: Option<Pause>, readings: &[Reading]) -> News {
        let mut standing = ghcache_core::budget::Standing {
            pause,
            ..Default::default()
        };
        for (n, r) in readings.iter().enumerate() {
            standing.readings.insert(format!("r{n}"), r.clone());
        }
        News {
            principal: Principal::of(Some(&ghcache_core::TokenHash([1; 32])), None),
            standing,
        }
    }

    #[test]
    fn pauses_begin_near_now_and_last_as_long_as_github_asks_at_most() {
        let now = 1_700_000_000_000;
        let minute = Duration::from_secs(60);
        let max_age = INVALIDATION_MAX_AGE.as_millis() as u64;
        for (what, p, ok) in [
            ("a minute, now", pause(now, minute), true),
            ("the longest, now", pause(now, PAUSE_MAX), true),
            (
                "a minute past the longest",
                pause(now, PAUSE_MAX + minute),
                false,
            ),
            ("a day", pause(now, Duration::from_secs(86_400)), false),
            ("began 9 minutes ago", pause(now - 540_000, minute), true),
            (
                "began too long ago",
                pause(now - max_age - 1, minute),
                false,
            ),
            ("begins a minute ahead", pause(now + 60_000, minute), true),
            ("begins far ahead", pause(now + max_age + 1, minute), false),
        ] {
            assert_eq!(plausible_pause(&p, now).is_ok(), ok, "{what}");
        }
        let backwards = Pause {
            since_ms: now,
            until_ms: now - 1,
            strikes: 0,
        };
        assert!(plausible_pause(&backwards, now).is_err());
    }

    #[test]
    fn readings_are_taken_by_a_sane_clock_of_a_window_ending_soon() {
        let now = 1_700_000_000_000;
        let skew = CLOCK_SKEW.as_millis() as u64;
        let in_an_hour = now / 1000 + 3600;
        for (what, r, ok) in [
            ("now", reading(now, in_an_hour, 10), true),
            (
                "an hour ago",
                reading(now - 3_600_000, now / 1000, 10),
                true,
            ),
            ("within the skew", reading(now + skew, in_an_hour, 10), true),
            (
                "past the skew",
                reading(now + skew + 1, in_an_hour, 10),
                false,
            ),
            (
                "window ends in 2 h",
                reading(now, now / 1000 + 7200, 10),
                true,
            ),
            (
                "window ends in 3 h",
                reading(now, now / 1000 + 3 * 3600, 10),
                false,
            ),
            ("all left", reading(now, in_an_hour, 5000), true),
            (
                "more left than allowed",
                reading(now, in_an_hour, 5001),
                false,
            ),
        ] {
            assert_eq!(plausible_reading(&r, now, CLOCK_SKEW).is_ok(), ok, "{what}");
            let whole = plausible(
                &news(None, &[reading(now, in_an_hour, 1), r]),
                now,
                CLOCK_SKEW,
            );
            assert_eq!(whole.is_ok(), ok, "news with {what}");
        }
    }

    #[test]
    fn writes_are_due_a_couple_of_minutes_ahead_at_most() {
        let now = 1_700_000_000_000;
        let skew = CLOCK_SKEW.as_millis() as u64;
        let furthest = now + WRITE_MAX_AHEAD.as_millis() as u64 + skew;
        for (what, at, ok) in [
            ("now", now, true),
            ("an hour ago", now - 3_600_000, true),
            ("80 s ahead", now + 80_000, true),
            ("as far as may be", furthest, true),
            ("past that", furthest + 1, false),
            ("a day ahead", now + 86_400_000, false),
        ] {
            assert_eq!(plausible_write(at, now, CLOCK_SKEW).is_ok(), ok, "{what}");
            let mut with = news(None, &[]);
            with.standing.writes = vec![now, at];
            assert_eq!(
                plausible(&with, now, CLOCK_SKEW).is_ok(),
                ok,
                "news with {what}"
            );
        }
    }

    #[test]
    fn this_machines_news_goes_out_without_what_peers_would_refuse() {
        let now = now_ms();
        let good = reading(now, now / 1000 + 3600, 10);
        let bad = reading(now, now / 1000 + 3600, 5001);
        let old_pause = pause(now - 3_600_000, Duration::from_secs(60));
        let sent = plausible_part(news(Some(old_pause), &[good.clone(), bad]), now, CLOCK_SKEW);
        assert_eq!(sent.as_ref().map(|n| n.standing.pause), Some(None));
        assert_eq!(
            sent.map(|n| n.standing.readings.into_values().collect::<Vec<_>>()),
            Some(vec![good])
        );
        assert_eq!(
            plausible_part(news(Some(old_pause), &[]), now, CLOCK_SKEW),
            None
        );
        let mut writes = news(Some(old_pause), &[]);
        writes.standing.writes = vec![now, now + 86_400_000];
        let sent = plausible_part(writes, now, CLOCK_SKEW).map(|n| n.standing.writes);
        assert_eq!(sent, Some(vec![now]), "the write due tomorrow is left out");
        let fresh = news(Some(pause(now, Duration::from_secs(60))), &[]);
        assert_eq!(
            plausible_part(fresh.clone(), now, CLOCK_SKEW),
            Some(fresh.clone())
        );
        // Requests without a token are counted per address: not news for other machines.
        let anonymous = News {
            principal: Principal::of(None, None),
            ..fresh
        };
        assert!(plausible(&anonymous, now, CLOCK_SKEW).is_err());
        assert_eq!(plausible_part(anonymous, now, CLOCK_SKEW), None);
    }
}
