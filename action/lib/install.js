'use strict';
// Installs a ghcache release archive (`cargo xtask dist` makes them), checked against a SHA-256
// that does not come from the server that sent the archive, where the action can help it:
//
// - the action's own version from its release: the checksum that `cargo xtask dist` wrote into
//   `action/release.json` when the release was built, committed with the action's own code;
// - the `sha256` input, whatever the source;
// - only for a `url` input without a `sha256` input: the `.sha256` beside the archive, with a
//   warning (whoever can change the archive there can change its checksum too).
//
// Downloads are https, or plain http to this machine only; a redirect never goes from https to
// http. The tool cache keeps the archive, never a binary: a copy there is hashed again on every
// use (another job on a self-hosted runner may have written it) and unpacked into this job's
// RUNNER_TEMP, so only what the checked archive holds ends up on PATH.

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const { StepError, annotate, info } = require('./runner');

/** The release this action installs by default, written by `cargo xtask dist`. */
const RELEASE_FILE = path.join(__dirname, '..', 'release.json');
/** Redirects followed (GitHub sends release downloads to its object store). */
const MAX_REDIRECTS = 5;
/** How long a download may take, connection included. */
const DOWNLOAD_TIMEOUT_MS = 120000;
/** Hosts that plain http may reach: this machine, where nobody on the way can change a byte. */
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];
/** A SHA-256 as hex. */
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The version this action's own checkout describes (`[workspace.package] version`). */
function ownVersion() {
  const manifest = path.join(__dirname, '..', '..', 'Cargo.toml');
  const text = fs.readFileSync(manifest, 'utf8');
  const section = text.split(/^\[workspace\.package\]\s*$/m)[1] || '';
  const match = section.split(/^\[/m)[0].match(/^version\s*=\s*"([^"]+)"/m);
  if (!match) throw new StepError(`cannot tell the version from ${manifest}: give the version input`);
  return match[1];
}

/**
 * `action/release.json`: `version`, the `repository` whose releases hold the archives, and
 * `archives`, the SHA-256 of each target's archive. A file that is not of that shape fails the
 * step: a damaged checkout of the action must not install anything.
 */
function ownRelease(file = RELEASE_FILE) {
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new StepError(`cannot read the action's ${file}: ${err.message}`);
  }
  const bad = (why) => new StepError(`the action's ${file} is damaged (${why}): use a released ref of the action`);
  if (!doc || typeof doc !== 'object') throw bad('not an object');
  if (typeof doc.version !== 'string' || !doc.version) throw bad('no version');
  if (typeof doc.repository !== 'string' || !doc.repository) throw bad('no repository');
  if (!doc.archives || typeof doc.archives !== 'object' || Array.isArray(doc.archives)) throw bad('no archives');
  for (const [target, sum] of Object.entries(doc.archives)) {
    if (typeof sum !== 'string' || !SHA256_HEX.test(sum)) throw bad(`the sha256 of ${target} is not 64 hex digits`);
  }
  return { version: doc.version, repository: doc.repository.replace(/\/+$/, ''), archives: doc.archives };
}

/** The release target for this runner, as `cargo xtask dist` names archives; '' when none. */
function hostTarget(platform = process.platform, arch = process.arch) {
  const targets = {
    'linux/x64': 'x86_64-unknown-linux-gnu',
    'linux/arm64': 'aarch64-unknown-linux-gnu',
    'darwin/x64': 'x86_64-apple-darwin',
    'darwin/arm64': 'aarch64-apple-darwin',
  };
  return targets[`${platform}/${arch}`] || '';
}

/** The archive's file name, as `cargo xtask dist` names it. */
function archiveName(version, target) {
  return `ghcache-${version}-${target}.tar.gz`;
}

/**
 * What to install of `version` on this runner: `{ version, target, url, expected }`, where `expected` is
 * `{ hex, from }`, or null for a `url` input without a `sha256` input (the published `.sha256`
 * is used then); or `{ none }`, why there is nothing to install here, when this runner has no
 * build. Inputs that ask for what cannot be checked fail the step.
 */
function choose({ version, urlInput, sha256Input, release, platform = process.platform, arch = process.arch }) {
  const target = hostTarget(platform, arch);
  if (!target) return { none: `there is no ghcache build for ${platform}/${arch}` };
  let pinned = null;
  if (sha256Input) {
    if (!SHA256_HEX.test(sha256Input.toLowerCase())) {
      throw new StepError(`input sha256 is not a SHA-256 (64 hex digits): ${JSON.stringify(sha256Input)}`);
    }
    pinned = { hex: sha256Input.toLowerCase(), from: 'the sha256 input' };
  }
  if (urlInput) {
    const url = urlInput.replace(/\{version\}/g, version).replace(/\{target\}/g, target);
    return { version, target, url, expected: pinned };
  }
  const url = `${release.repository}/releases/download/v${version}/${archiveName(version, target)}`;
  if (pinned) return { version, target, url, expected: pinned };
  if (version !== release.version) {
    throw new StepError(
      `this action knows the checksums of ghcache ${release.version}, not ${version}: give the sha256 input, or use the action's v${version}`,
    );
  }
  const known = release.archives[target];
  if (!known) {
    const built = Object.keys(release.archives).join(', ') || 'none';
    return { none: `the ghcache ${version} release has no build for ${target} (it has: ${built})` };
  }
  return { version, target, url, expected: { hex: known, from: "the action's release.json" } };
}

/** Why `url` may not be fetched (reached from `from` by a redirect, if given), or ''. */
function refusal(url, from) {
  if (url.protocol === 'https:') return '';
  if (url.protocol !== 'http:') return 'only https URLs are supported';
  if (from && from.protocol === 'https:') return `a redirect from ${from} must not leave https`;
  if (!LOOPBACK_HOSTS.includes(url.hostname)) {
    return 'plain http is refused except to this machine (localhost, 127.0.0.1, ::1): use https';
  }
  return '';
}

/** GETs `url` (following redirects) into memory; rejects with a StepError naming the url. */
function download(url, redirects = 0, from = null) {
  return new Promise((resolve, reject) => {
    let parsed;
    try {
      parsed = new URL(url);
    } catch (_) {
      reject(new StepError(`${JSON.stringify(url)} is not a URL: check the url input`));
      return;
    }
    const why = refusal(parsed, from);
    if (why) {
      reject(new StepError(`refusing to download ${url}: ${why}`));
      return;
    }
    const client = parsed.protocol === 'https:' ? https : http;
    const options = { timeout: DOWNLOAD_TIMEOUT_MS, headers: { 'user-agent': 'ghcache-action' } };
    const request = client.get(parsed, options, (response) => {
      const status = response.statusCode || 0;
      if (status >= 300 && status < 400 && response.headers.location) {
        response.resume();
        if (redirects >= MAX_REDIRECTS) {
          reject(new StepError(`cannot download ${url}: more than ${MAX_REDIRECTS} redirects`));
          return;
        }
        let next;
        try {
          next = new URL(response.headers.location, parsed).toString();
        } catch (_) {
          reject(new StepError(`cannot download ${url}: it redirects to ${JSON.stringify(response.headers.location)}`));
          return;
        }
        resolve(download(next, redirects + 1, parsed));
        return;
      }
      if (status !== 200) {
        response.resume();
        reject(new StepError(`cannot download ${url}: HTTP ${status}; check the version and url inputs`));
        return;
      }
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolve(Buffer.concat(chunks)));
      response.on('error', (err) => reject(new StepError(`cannot download ${url}: ${err.message}`)));
    });
    request.on('timeout', () => request.destroy(new Error(`no answer within ${DOWNLOAD_TIMEOUT_MS / 1000}s`)));
    request.on('error', (err) => reject(new StepError(`cannot download ${url}: ${err.message}`)));
  });
}

function sha256(bytes) {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

/** The `.sha256` published beside `url`: for a `url` input without a `sha256` input only. */
async function publishedSha256(url) {
  annotate(
    'warning',
    `no sha256 input: the archive is checked against ${url}.sha256, which comes from the same server as the archive; give the sha256 input to pin it`,
    'ghcache',
  );
  let text;
  try {
    text = (await download(`${url}.sha256`)).toString('utf8');
  } catch (err) {
    const why = err.message.replace(/^cannot download \S+: /, '');
    throw new StepError(`no checksum for ${url}: ${url}.sha256 cannot be downloaded (${why}); give the sha256 input`);
  }
  const hex = (text.trim().split(/\s+/)[0] || '').toLowerCase();
  if (!SHA256_HEX.test(hex)) throw new StepError(`${url}.sha256 holds no SHA-256`);
  return { hex, from: `${url}.sha256` };
}

/** `file`'s bytes, or null when there is no such file. */
function readIfThere(file) {
  try {
    return fs.readFileSync(file);
  } catch (_) {
    return null;
  }
}

/**
 * The directory holding the `ghcache` binary of `version` for `target`, unpacked into this
 * job's RUNNER_TEMP from the archive: the tool cache's when it has the SHA-256 expected, else
 * a fresh download that has it (then kept in the tool cache).
 */
async function install({ version, target, url, expected }) {
  const sum = expected || (await publishedSha256(url));
  const name = archiveName(version, target);
  const cacheRoot = process.env.RUNNER_TOOL_CACHE || path.join(runnerTemp(), 'tool-cache');
  const cached = path.join(cacheRoot, 'ghcache', version, process.arch, name);
  let archive = readIfThere(cached);
  if (archive && sha256(archive) === sum.hex) {
    info(`ghcache ${version}: from the tool cache (${cached}, sha256 ${sum.hex} as ${sum.from} says)`);
  } else {
    if (archive) {
      info(`ghcache ${version}: the tool cache's ${cached} has sha256 ${sha256(archive)}, not ${sum.hex}: downloading`);
    }
    info(`ghcache ${version}: downloading ${url}`);
    archive = await download(url);
    const actual = sha256(archive);
    if (actual !== sum.hex) {
      throw new StepError(`the archive ${url} has sha256 ${actual}, but ${sum.from} says ${sum.hex}: not installed`);
    }
    // Beside, then renamed: a job that reads it meanwhile sees the old file or the new one.
    fs.mkdirSync(path.dirname(cached), { recursive: true });
    const partial = `${cached}.${process.pid}.partial`;
    fs.writeFileSync(partial, archive);
    fs.renameSync(partial, cached);
  }
  const work = fs.mkdtempSync(path.join(runnerTemp(), 'ghcache-install-'));
  const file = path.join(work, name);
  fs.writeFileSync(file, archive);
  try {
    execFileSync('tar', ['-xzf', file, '-C', work], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const why = err.stderr ? err.stderr.toString().trim().split('\n')[0] : err.message;
    throw new StepError(`cannot unpack ${url}: ${why}`);
  } finally {
    fs.rmSync(file, { force: true });
  }
  const top = fs.readdirSync(work).find((entry) => fs.existsSync(path.join(work, entry, 'ghcache')));
  if (!top) throw new StepError(`the archive ${url} holds no ghcache binary`);
  const dir = path.join(work, top);
  info(`ghcache ${version}: unpacked into ${dir} (sha256 ${sum.hex})`);
  return dir;
}

function runnerTemp() {
  const dir = process.env.RUNNER_TEMP;
  if (!dir) throw new StepError('RUNNER_TEMP is not set: run this as a step of a GitHub Actions job');
  return dir;
}

/** The path of `program` on PATH (skipping `skipDirs`), or '' when there is none. */
function which(program, skipDirs = []) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir || skipDirs.includes(path.resolve(dir))) continue;
    const candidate = path.join(dir, program);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch (_) {
      // Not there, or not executable: keep looking.
    }
  }
  return '';
}

module.exports = { archiveName, choose, hostTarget, install, ownRelease, ownVersion, runnerTemp, which };
