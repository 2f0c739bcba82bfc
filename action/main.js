'use strict';
// The action's main step: installs ghcache, routes every later step's `gh` through it, declares
// the job's token for the scope rule, starts this runner's daemon when a swarm key is given and
// waits until it has joined, and exports the environment. See action.yml for the inputs.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const runner = require('./lib/runner');
const { StepError, info, input } = runner;
const { choose, install, ownRelease, ownVersion, runnerTemp, which } = require('./lib/install');
const daemon = require('./lib/daemon');
const oidc = require('./lib/oidc');

/** Is this job a pull request from a fork, whose code nobody reviewed yet? */
function forkPullRequest() {
  if (!(process.env.GITHUB_EVENT_NAME || '').startsWith('pull_request')) return false;
  let payload;
  try {
    payload = JSON.parse(fs.readFileSync(process.env.GITHUB_EVENT_PATH || '', 'utf8'));
  } catch (_) {
    return false;
  }
  const pr = payload.pull_request || {};
  const head = pr.head && pr.head.repo ? pr.head.repo.full_name : '';
  const base = (pr.base && pr.base.repo ? pr.base.repo.full_name : '') || process.env.GITHUB_REPOSITORY || '';
  return Boolean(head && base && head.toLowerCase() !== base.toLowerCase());
}

/** `read-only`: true, false, or auto (on for pull requests from forks). */
function readOnlyInput() {
  const value = input('read-only') || 'auto';
  if (value === 'auto') return { readOnly: forkPullRequest(), auto: true };
  return { readOnly: runner.booleanInput('read-only'), auto: false };
}

/**
 * The job's OIDC token for the daemon whose environment is `env`, in a file under `temp`; null
 * without `permissions: id-token: write` (or when asking fails: one warning). Without a token,
 * keepers that require one do not take this job's answers; everything else works.
 */
async function jobToken(ghcache, env, temp) {
  const request = oidc.requestFrom(process.env);
  if (!request) {
    info('no id-token: write permission: keepers that require an OIDC token do not take this job\'s answers');
    return null;
  }
  const id = spawnSync(ghcache, ['daemon', 'id'], { env, encoding: 'utf8' });
  const peer = (id.stdout || '').trim();
  if (id.status !== 0 || !peer) {
    runner.annotate('warning', `ghcache daemon id failed: ${(id.stderr || '').trim().split('\n').pop()}`, 'ghcache');
    return null;
  }
  try {
    return oidc.writeToken(temp, await oidc.requestToken(request, `ghcache:${peer}`));
  } catch (err) {
    runner.annotate('warning', `${err.message}; this job's answers go only to peers that do not require a token`, 'ghcache');
    return null;
  }
}

/** Multiaddrs separated by spaces, commas or newlines. */
function list(value) {
  return value.split(/[\s,]+/).filter(Boolean);
}

function cacheDir() {
  if (process.env.GH_CACHE_DIR) return process.env.GH_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || path.join(process.env.HOME || os.homedir(), '.cache');
  return path.join(base, 'ghcache');
}

/** Writes the `gh` shim: `ghcache gh "$@"`, with the real gh in GH_CACHE_GH. */
function writeShim(dir, ghcache, realGh) {
  const quote = (text) => `'${text.replace(/'/g, `'\\''`)}'`;
  fs.mkdirSync(dir, { recursive: true });
  const shim = path.join(dir, 'gh');
  const script = [
    '#!/bin/sh',
    '# gh through ghcache, put first on PATH by the ghcache action; the real gh is GH_CACHE_GH.',
    `: "\${GH_CACHE_GH:=${realGh.replace(/["$`\\]/g, '\\$&')}}"`,
    'export GH_CACHE_GH',
    '# Inside a gh that ghcache runs (an alias, an extension), gh is the real one: no loop.',
    `if [ -n "\${GHCACHE_SHIM_ACTIVE:-}" ]; then exec "$GH_CACHE_GH" "$@"; fi`,
    'GHCACHE_SHIM_ACTIVE=1',
    'export GHCACHE_SHIM_ACTIVE',
    `exec ${quote(ghcache)} gh "$@"`,
    '',
  ].join('\n');
  fs.writeFileSync(shim, script, { mode: 0o755 });
  fs.chmodSync(shim, 0o755);
  return shim;
}

/** Runs `ghcache args`; its stdout, or a StepError with its last stderr line. */
function ghcacheOutput(ghcache, args, env = process.env) {
  const run = spawnSync(ghcache, args, { env, encoding: 'utf8' });
  if (run.error) throw new StepError(`cannot run ${ghcache}: ${run.error.message}`);
  if (run.status !== 0) {
    const lines = (run.stderr || '').trim().split('\n');
    throw new StepError(`ghcache ${args.join(' ')} failed: ${lines[lines.length - 1] || `exit ${run.status}`}`);
  }
  return run.stdout;
}

/**
 * `ghcache actions declare` for `token` and the `permissions` input: the variables it prints
 * for later steps, by name. A `permissions` input that is not a permissions block fails the
 * step with ghcache's line about it.
 */
function declare(ghcache, token, permissions) {
  const args = ['actions', 'declare'];
  if (permissions) args.push('--permissions', permissions);
  const run = spawnSync(ghcache, args, { env: { ...process.env, GITHUB_TOKEN: token }, encoding: 'utf8' });
  if (run.error) throw new StepError(`cannot run ${ghcache}: ${run.error.message}`);
  if (run.status !== 0) {
    const lines = (run.stderr || '').trim().split('\n');
    const why = (lines[lines.length - 1] || `exit ${run.status}`).replace(/^ghcache: error: /, '');
    const refused = why.match(/^--permissions: (.*)$/);
    throw new StepError(refused ? `input permissions: ${refused[1]}` : `ghcache actions declare failed: ${why}`);
  }
  const declared = {};
  for (const line of run.stdout.split('\n').filter(Boolean)) {
    const at = line.indexOf('=');
    if (at <= 0) throw new StepError(`ghcache actions declare printed no declaration: ${JSON.stringify(line)}`);
    declared[line.slice(0, at)] = line.slice(at + 1);
  }
  return declared;
}

/**
 * The scope that later steps' gh calls get under the declared token (`ghcache actions scope`,
 * from the same rule), for the daemon, which is not given the token; '' when the job shares
 * none, and why, in the log.
 */
function sharedScope(ghcache, env) {
  const run = spawnSync(ghcache, ['actions', 'scope'], { env, encoding: 'utf8' });
  if (run.status === 0) return run.stdout.trim();
  const why = (run.stderr || '').trim().split('\n').pop() || (run.error ? run.error.message : `exit ${run.status}`);
  info(`the job's token shares answers with no other job: ${why.replace(/^ghcache: error: /, '')}`);
  return '';
}

async function main() {
  const summary = runner.booleanInput('summary');
  const annotations = runner.booleanInput('annotations');
  let keep = runner.booleanInput('keep');
  const { readOnly, auto } = readOnlyInput();
  if (readOnly && keep) {
    if (!auto) throw new StepError('keep and read-only exclude each other: a keeper serves what it keeps');
    info('ghcache: a pull request from a fork: read-only, not a keeper');
    keep = false;
  }
  const joinSeconds = Number(input('join-timeout') || '30');
  if (!(joinSeconds > 0)) {
    const given = JSON.stringify(input('join-timeout'));
    throw new StepError(`input join-timeout is ${given}: give a number of seconds`);
  }
  const swarmKey = input('swarm-key');
  if (swarmKey) runner.mask(swarmKey);

  const chosen = choose({
    version: input('version').replace(/^v/, '') || ownVersion(),
    urlInput: input('url'),
    sha256Input: input('sha256'),
    release: ownRelease(),
  });
  if (chosen.none) {
    // Nothing installed, nothing exported: the job's gh stays as it was, and the job goes on.
    runner.annotate('notice', `${chosen.none}: nothing installed, gh runs as it is, without the cache`, 'ghcache');
    return;
  }
  const { version } = chosen;
  const toolDir = await install(chosen);
  const ghcache = path.join(toolDir, 'ghcache');
  runner.saveState('ghcache', ghcache);
  runner.saveState('summary', String(summary));
  runner.saveState('annotations', String(annotations));
  info(ghcacheOutput(ghcache, ['--version']).trim());

  const temp = path.join(runnerTemp(), 'ghcache');
  const shimDir = path.join(temp, 'bin');
  const realGh = process.env.GH_CACHE_GH || which('gh', [path.resolve(shimDir)]);
  if (!realGh) {
    throw new StepError('gh is not on PATH: install the GitHub CLI before this step (GitHub-hosted runners have it)');
  }
  writeShim(shimDir, ghcache, realGh);
  const dir = cacheDir();
  runner.saveState('cache_dir', dir);
  runner.exportVariable('GH_CACHE_DIR', dir);
  runner.exportVariable('GH_CACHE_GH', realGh);
  runner.addPath(toolDir);
  runner.addPath(shimDir);
  info(`gh now runs through ghcache (the real gh: ${realGh}; cache dir: ${dir})`);

  // The scope rule (ghcache's, not the action's): later steps that call gh with this token
  // share answers with the repository's jobs that declare the same permissions, or without
  // them with runs of this same job; any other token keeps its own scope.
  const token = input('token');
  const permissions = input('permissions');
  let shared = '';
  if (token) {
    const declared = declare(ghcache, token, permissions);
    for (const [name, value] of Object.entries(declared)) runner.exportVariable(name, value);
    shared = sharedScope(ghcache, { ...process.env, ...declared });
  } else {
    if (permissions) info('no token input: the permissions input declares nothing');
    info('no token input: each token that later steps use keeps a scope of its own');
  }
  const scope = input('scope');
  if (scope) runner.exportVariable('GH_CACHE_SCOPE', scope);

  const ipfsApi = input('ipfs-api');
  const ipfsGateway = input('ipfs-gateway');
  if (ipfsApi && readOnly) {
    info('read-only: ipfs-api is not used (it would add this job\'s answers to the node); ipfs-gateway is');
  } else if (ipfsApi) {
    runner.exportVariable('GH_CACHE_IPFS_API', ipfsApi);
  }
  if (ipfsGateway) runner.exportVariable('GH_CACHE_IPFS_GATEWAY', ipfsGateway);
  if ((ipfsApi && !readOnly) || ipfsGateway) runner.exportVariable('GH_CACHE_IPFS', '1');

  const bootstrap = list(input('bootstrap'));
  if (swarmKey) {
    fs.mkdirSync(temp, { recursive: true, mode: 0o700 });
    const keyFile = path.join(temp, 'swarm.key');
    fs.rmSync(keyFile, { force: true });
    fs.writeFileSync(keyFile, swarmKey.endsWith('\n') ? swarmKey : `${swarmKey}\n`, { mode: 0o600 });
    runner.saveState('key_file', keyFile);
    runner.exportVariable('GH_CACHE_SWARM_KEY_FILE', keyFile);
    runner.exportVariable('GH_CACHE_P2P', '1');
    const log = path.join(temp, 'daemon.log');
    const env = daemon.environment({ ...process.env, ...(scope ? { GH_CACHE_SCOPE: scope } : {}) }, { shared });
    const oidcTokenFile = readOnly ? null : await jobToken(ghcache, env, temp);
    const pid = daemon.start(ghcache, daemon.flags({ keep, readOnly, bootstrap, oidcTokenFile }), log, env);
    runner.saveState('pid', String(pid));
    const status = await daemon.waitJoined({
      ghcache,
      env,
      pid,
      log,
      needPeer: bootstrap.length > 0,
      timeoutMs: joinSeconds * 1000,
    });
    const peers = (status.connected_peers || []).length;
    const mode = `${keep ? 'keeper, ' : ''}${readOnly ? 'read-only, ' : ''}`;
    info(`ghcache daemon ${status.peer_id}: ${mode}${peers} peer${peers === 1 ? '' : 's'} connected`);
    runner.setOutput('peer-id', status.peer_id || '');
  } else if (bootstrap.length > 0 || keep) {
    info('no swarm-key (pull requests from forks get no secrets): no daemon; answers come from this runner\'s cache');
  }

  // What the summary subtracts: a cache dir kept between runs has totals.
  const stats = spawnSync(ghcache, ['stats', '--json'], { env: process.env, encoding: 'utf8' });
  if (stats.status === 0) {
    runner.saveState('baseline', stats.stdout.trim());
  } else {
    runner.annotate('warning', `ghcache stats failed: ${(stats.stderr || '').trim().split('\n').pop()}`, 'ghcache');
  }
  runner.setOutput('path', ghcache);
  runner.setOutput('cache-dir', dir);
  runner.setOutput('version', version);
}

runner.run(main);
