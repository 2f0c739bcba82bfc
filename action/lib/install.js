'use strict';
// Installs a ghcache release archive (`cargo xtask dist` makes them): from the runner's tool
// cache when it holds that version, else downloaded and checked against its SHA-256 first.

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const { StepError, info } = require('./runner');

/** Where releases are published: `v<version>` tags of the project's repository. */
const RELEASES = 'https://github.com/ghcache/ghcache/releases/download';
/** Redirects followed (GitHub sends release downloads to its object store). */
const MAX_REDIRECTS = 5;
/** How long a download may take, connection included. */
const DOWNLOAD_TIMEOUT_MS = 120000;

/** The version this action's own checkout describes (`[workspace.package] version`). */
function ownVersion() {
  const manifest = path.join(__dirname, '..', '..', 'Cargo.toml');
  const text = fs.readFileSync(manifest, 'utf8');
  const section = text.split(/^\[workspace\.package\]\s*$/m)[1] || '';
  const match = section.split(/^\[/m)[0].match(/^version\s*=\s*"([^"]+)"/m);
  if (!match) throw new StepError(`cannot tell the version from ${manifest}: give the version input`);
  return match[1];
}

/** The release target for this runner, as `cargo xtask dist` names archives. */
function hostTarget(platform = process.platform, arch = process.arch) {
  const targets = {
    'linux/x64': 'x86_64-unknown-linux-gnu',
    'linux/arm64': 'aarch64-unknown-linux-gnu',
    'darwin/x64': 'x86_64-apple-darwin',
    'darwin/arm64': 'aarch64-apple-darwin',
  };
  const target = targets[`${platform}/${arch}`];
  if (!target) {
    throw new StepError(`there is no ghcache build for ${platform}/${arch}: give the url input of an archive built with cargo xtask dist`);
  }
  return target;
}

/** The archive's address: the url input (`{version}` and `{target}` are filled in) or the release. */
function archiveUrl(urlInput, version, target) {
  if (urlInput) return urlInput.replace(/\{version\}/g, version).replace(/\{target\}/g, target);
  return `${RELEASES}/v${version}/ghcache-${version}-${target}.tar.gz`;
}

/** GETs `url` (following redirects) into memory; rejects with a StepError naming the url. */
function download(url, redirects = 0) {
  return new Promise((resolve, reject) => {
    let parsed;
    try {
      parsed = new URL(url);
    } catch (_) {
      reject(new StepError(`${JSON.stringify(url)} is not a URL: check the url input`));
      return;
    }
    const clients = { 'https:': https, 'http:': http };
    const client = clients[parsed.protocol];
    if (!client) {
      reject(new StepError(`cannot download ${url}: only http and https URLs are supported`));
      return;
    }
    const options = { timeout: DOWNLOAD_TIMEOUT_MS, headers: { 'user-agent': 'ghcache-action' } };
    const request = client.get(parsed, options, (response) => {
      const status = response.statusCode || 0;
      if (status >= 300 && status < 400 && response.headers.location) {
        response.resume();
        if (redirects >= MAX_REDIRECTS) {
          reject(new StepError(`cannot download ${url}: more than ${MAX_REDIRECTS} redirects`));
          return;
        }
        resolve(download(new URL(response.headers.location, parsed).toString(), redirects + 1));
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

/** The checksum the archive must have: the sha256 input, else the `.sha256` published beside it. */
async function expectedSha256(url, sha256Input) {
  if (sha256Input) {
    if (!/^[0-9a-fA-F]{64}$/.test(sha256Input)) {
      throw new StepError(`input sha256 is not a SHA-256 (64 hex digits): ${JSON.stringify(sha256Input)}`);
    }
    return { hex: sha256Input.toLowerCase(), from: 'the sha256 input' };
  }
  let text;
  try {
    text = (await download(`${url}.sha256`)).toString('utf8');
  } catch (err) {
    throw new StepError(`no checksum for ${url}: ${url}.sha256 cannot be downloaded (${err.message.replace(/^cannot download \S+: /, '')}); give the sha256 input`);
  }
  const hex = text.trim().split(/\s+/)[0] || '';
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new StepError(`${url}.sha256 holds no SHA-256`);
  return { hex: hex.toLowerCase(), from: `${url}.sha256` };
}

/**
 * The directory holding the `ghcache` binary of `version` for `target`: the tool cache's, or a
 * fresh download checked against its checksum and put there.
 */
async function install({ version, target, url, sha256Input }) {
  const arch = process.arch;
  const cacheRoot = process.env.RUNNER_TOOL_CACHE || path.join(runnerTemp(), 'tool-cache');
  const dir = path.join(cacheRoot, 'ghcache', version, arch);
  const complete = `${dir}.complete`;
  const recorded = path.join(dir, 'archive.sha256');
  if (fs.existsSync(complete) && fs.existsSync(path.join(dir, 'ghcache'))) {
    const held = fs.existsSync(recorded) ? fs.readFileSync(recorded, 'utf8').trim() : '';
    if (!sha256Input || held === sha256Input.toLowerCase()) {
      info(`ghcache ${version}: from the tool cache (${dir})`);
      return dir;
    }
    info(`ghcache ${version}: the tool cache holds another build (sha256 ${held || 'unknown'}); downloading`);
  }
  info(`ghcache ${version}: downloading ${url}`);
  const archive = await download(url);
  const expected = await expectedSha256(url, sha256Input);
  const actual = sha256(archive);
  if (actual !== expected.hex) {
    throw new StepError(`the archive ${url} has sha256 ${actual}, but ${expected.from} says ${expected.hex}: not installed`);
  }
  const work = fs.mkdtempSync(path.join(runnerTemp(), 'ghcache-download-'));
  try {
    const file = path.join(work, 'ghcache.tar.gz');
    fs.writeFileSync(file, archive);
    try {
      execFileSync('tar', ['-xzf', file, '-C', work], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const why = err.stderr ? err.stderr.toString().trim().split('\n')[0] : err.message;
      throw new StepError(`cannot unpack ${url}: ${why}`);
    }
    const top = fs.readdirSync(work).find((name) => fs.existsSync(path.join(work, name, 'ghcache')));
    if (!top) throw new StepError(`the archive ${url} holds no ghcache binary`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(complete, { force: true });
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.renameSync(path.join(work, top), dir);
    fs.writeFileSync(recorded, `${actual}\n`);
    fs.writeFileSync(complete, '');
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  info(`ghcache ${version}: installed in ${dir} (sha256 ${actual})`);
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

module.exports = { archiveUrl, hostTarget, install, ownVersion, runnerTemp, which };
