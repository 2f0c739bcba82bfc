'use strict';
// The job summary and the notice: what ghcache did during this job, from `ghcache stats --json`
// now minus what it said when the main step ran (a cache dir kept between runs has totals).

const COUNTERS = ['requests', 'misses', 'bypassed', 'revalidated', 'stale_served', 'errors', 'corrupt'];
const TIERS = ['local', 'p2p', 'ipfs'];

/** This job's counters: `after` minus `before` (both `ghcache stats --json` documents). */
function delta(before, after) {
  const n = (doc, pick) => {
    const value = pick(doc || {});
    return Number.isFinite(value) ? value : 0;
  };
  const out = { hits: {} };
  for (const name of COUNTERS) out[name] = Math.max(0, n(after, (d) => d[name]) - n(before, (d) => d[name]));
  for (const tier of TIERS) {
    out.hits[tier] = Math.max(0, n(after, (d) => (d.hits || {})[tier]) - n(before, (d) => (d.hits || {})[tier]));
  }
  out.hit = TIERS.reduce((sum, tier) => sum + out.hits[tier], 0);
  return out;
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** The tiers line: which tiers were on, as `ghcache stats` said when the main step ran. */
function tiersText(tiers) {
  if (!tiers) return '';
  const part = (name, tier) => (tier ? `${name} ${tier.enabled ? 'on' : 'off'} (${tier.detail})` : '');
  return [part('P2P', tiers.p2p), part('IPFS', tiers.ipfs)].filter(Boolean).join('; ');
}

/** The hourly budgets every gh command draws on; the per-minute ones say little at a job's end. */
const HOURLY = ['core', 'graphql'];

/**
 * What is left of GitHub's hourly rate limits, per principal (a token's hash, or `repo:o/r`
 * for the repository's job tokens), as GitHub last told this runner or, through the swarm,
 * its peers (`rate_limits` of `ghcache stats --json`): rows for the summary's table.
 */
function budgetRows(rateLimits, nowMs) {
  const rows = [];
  for (const p of Array.isArray(rateLimits) ? rateLimits : []) {
    for (const resource of HOURLY) {
      const r = ((p && p.resources) || {})[resource];
      if (!r || !Number.isFinite(r.remaining) || !Number.isFinite(r.limit)) continue;
      if (Number.isFinite(r.reset) && r.reset * 1000 <= nowMs) continue;
      const minutes = Number.isFinite(r.reset) ? Math.max(0, Math.ceil((r.reset * 1000 - nowMs) / 60000)) : null;
      const resets = minutes === null ? '' : `, resets in ${minutes} min`;
      rows.push([`GitHub budget left, ${p.principal} (${resource})`, `${r.remaining} of ${r.limit}${resets}`]);
    }
    if (Number.isFinite(p && p.paused_until_ms) && p.paused_until_ms > nowMs) {
      const seconds = Math.ceil((p.paused_until_ms - nowMs) / 1000);
      rows.push([`paused by a secondary rate limit, ${p.principal}`, `${seconds} s more`]);
    }
  }
  return rows;
}

/** The job summary's Markdown; `rateLimits` as `ghcache stats --json` gave them after the job. */
function markdown(d, tiers, rateLimits, nowMs = Date.now()) {
  const rows = [
    ['gh requests through ghcache', d.requests],
    ['answered from the cache', `${d.hit} (local ${d.hits.local}, p2p ${d.hits.p2p}, ipfs ${d.hits.ipfs})`],
    ['GitHub requests saved', d.hit],
    ['asked GitHub', d.misses],
    ['revalidated (304, free)', d.revalidated],
    ['stale answers served', d.stale_served],
    ['not cacheable (ran gh directly)', d.bypassed],
  ];
  if (d.corrupt > 0) rows.push(['bad entries dropped', d.corrupt]);
  if (d.errors > 0) rows.push(['errors', d.errors]);
  rows.push(...budgetRows(rateLimits, nowMs));
  const lines = ['### ghcache', '', '| | |', '| --- | ---: |'];
  for (const [label, value] of rows) lines.push(`| ${label} | ${value} |`);
  const tiersLine = tiersText(tiers);
  if (tiersLine) lines.push('', `Tiers: ${tiersLine}.`);
  return `${lines.join('\n')}\n\n`;
}

/** The notice's one line. */
function notice(d) {
  return (
    `${d.hit} of ${plural(d.requests, 'gh request', 'gh requests')} answered from the cache ` +
    `(local ${d.hits.local}, p2p ${d.hits.p2p}, ipfs ${d.hits.ipfs}): ` +
    `${plural(d.hit, 'GitHub request', 'GitHub requests')} saved, ${d.revalidated} revalidated (304), ` +
    `${d.stale_served} stale served`
  );
}

module.exports = { budgetRows, delta, markdown, notice };
