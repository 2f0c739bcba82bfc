'use strict';
// This runner's `ghcache daemon`: started detached by the main step, so that it outlives it,
// waited for until it has joined the swarm, and stopped by the post step.

const fs = require('node:fs');
const { spawn, spawnSync } = require('node:child_process');

const { StepError } = require('./runner');

/** How often the daemon's status is read while waiting for it. */
const POLL_MS = 100;
/** How long a stopping daemon may take (it waits up to 5 s for a keeper to take its answers). */
const STOP_TIMEOUT_MS = 15000;

/** The daemon's flags from the action's inputs. */
function flags({ keep, readOnly, bootstrap, oidcTokenFile }) {
  const args = ['daemon'];
  // The job's OIDC token, as a file: peers take this runner's answers for its repository.
  if (oidcTokenFile) args.push('--oidc-token-file', oidcTokenFile);
  // A keeper is dialed by the runners; any other runner sits behind NAT and only dials out.
  if (!keep) args.push('--no-listen');
  if (keep) args.push('--keep');
  if (readOnly) args.push('--read-only');
  for (const addr of bootstrap) args.push('--bootstrap', addr);
  // With a bootstrap peer the swarm is found through it; without, on the LAN (self-hosted).
  if (bootstrap.length > 0) args.push('--no-mdns');
  return args;
}

/**
 * What the daemon sees of the step's environment, by name: where its files are (`HOME`, the
 * XDG directories, `TMPDIR`), `PATH`, ghcache's own settings (`GH_CACHE_*`, the swarm key's
 * file among them) and what its scope is derived from, none of it a secret. Everything else
 * stays out: the inputs (`INPUT_SWARM-KEY`, `INPUT_TOKEN`), the job's tokens (`GH_TOKEN`,
 * `GITHUB_TOKEN`, `ACTIONS_*`), whatever the workflow put in `env:`. The daemon outlives
 * this step and talks to the swarm; it needs none of them.
 */
const DAEMON_ENV = [
  'PATH',
  'HOME',
  'TMPDIR',
  'XDG_CACHE_HOME',
  'XDG_CONFIG_HOME',
  'XDG_STATE_HOME',
  'XDG_RUNTIME_DIR',
  'GITHUB_ACTIONS',
  'GITHUB_REPOSITORY',
  'GH_HOST',
  'GH_CONFIG_DIR',
];

/**
 * The daemon's environment from the step's `env` (see [`DAEMON_ENV`]). `shared`: the scope
 * that the job's gh calls have under its declared token (`ghcache actions scope`, from the
 * rule in ghcache's core: `actions:<repository>#...`), or ''; the daemon is told that scope,
 * as it is not given the token to work it out, and follows it from the start. A
 * `GH_CACHE_SCOPE` of the job's wins, as it does for the job's gh calls.
 */
function environment(env, { shared }) {
  const out = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && (DAEMON_ENV.includes(name) || name.startsWith('GH_CACHE_'))) out[name] = value;
  }
  if (shared && !(out.GH_CACHE_SCOPE || '').trim()) out.GH_CACHE_SCOPE = shared;
  return out;
}

/** Starts `ghcache daemon` detached, logging to `log`; returns its pid. */
function start(ghcache, args, log, env) {
  const out = fs.openSync(log, 'a');
  const child = spawn(ghcache, args, { detached: true, stdio: ['ignore', out, out], env });
  fs.closeSync(out);
  if (!child.pid) throw new StepError(`cannot start ${ghcache} daemon`);
  child.unref();
  return child.pid;
}

/** `ghcache daemon status --json`, or null while no daemon answers. */
function status(ghcache, env) {
  const run = spawnSync(ghcache, ['daemon', 'status', '--json'], { env, encoding: 'utf8' });
  if (run.status !== 0) return null;
  try {
    return JSON.parse(run.stdout);
  } catch (_) {
    return null;
  }
}

/** Is `pid` a live process (not a zombie) still running ghcache? */
function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // `pid (comm) S ...`: the state follows the last parenthesis.
    const stateChar = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (stateChar === 'Z' || stateChar === 'X') return false;
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('ghcache');
  } catch (err) {
    if (err.code === 'ENOENT') return false;
  }
  // No /proc (macOS): ask the kernel whether the pid exists.
  try {
    process.kill(pid, 0);
    return true;
  } catch (_) {
    return false;
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function readLog(log) {
  try {
    return fs.readFileSync(log, 'utf8');
  } catch (_) {
    return '';
  }
}

/** The last line the daemon logged, for a failure's message. */
function lastLine(log) {
  const lines = readLog(log).trim().split('\n');
  return lines[lines.length - 1] || '';
}

/** The swarm key's fingerprint, as the daemon logs it when it starts (peers compare theirs). */
function fingerprint(log) {
  const match = readLog(log).match(/swarm key fingerprint ([0-9a-f]+)/);
  return match ? match[1] : '';
}

/**
 * Waits until the daemon answers and, when it was given bootstrap peers, is connected to one;
 * fails with one line when it exits or `timeoutMs` passes first. Returns its status.
 */
async function waitJoined({ ghcache, env, pid, log, needPeer, timeoutMs }) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  for (;;) {
    last = status(ghcache, env);
    const peers = last && Array.isArray(last.connected_peers) ? last.connected_peers.length : 0;
    if (last && (!needPeer || peers > 0)) return last;
    if (!alive(pid)) {
      const why = lastLine(log);
      throw new StepError(`the daemon stopped before it joined the swarm${why ? `: ${why}` : ''} (log: ${log})`);
    }
    if (Date.now() >= deadline) break;
    await sleep(POLL_MS);
  }
  const seconds = Math.round(timeoutMs / 1000);
  if (!last) throw new StepError(`the daemon did not answer within ${seconds}s (log: ${log})`);
  const key = fingerprint(log);
  const compare = key ? ` (its fingerprint here is ${key}; a daemon logs its own when it starts)` : '';
  throw new StepError(
    `the daemon joined no peer within ${seconds}s: check that the bootstrap peer is up and reachable from this runner and that swarm-key is that swarm's key${compare}; log: ${log}`,
  );
}

/** Stops the daemon `pid` (SIGTERM, then SIGKILL after a while); true when it is gone. */
async function stop(pid) {
  if (!alive(pid)) return true;
  try {
    process.kill(pid, 'SIGTERM');
  } catch (_) {
    return !alive(pid);
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!alive(pid)) return true;
    await sleep(POLL_MS);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch (_) {
    // Gone between the check and the signal.
  }
  return !alive(pid);
}

module.exports = { DAEMON_ENV, alive, environment, flags, start, status, stop, waitJoined };
