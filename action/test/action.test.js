'use strict';
// The action end to end on a simulated runner: the archive that `cargo xtask dist` made, served
// by a local HTTP server; the real gh, pointed at the fake GitHub; real ghcache daemons.
// `cargo xtask test` runs these after building the archive (GHCACHE_DIST_DIR) and the fake
// GitHub (GHCACHE_FAKE_GITHUB).

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { after, before, test } = require('node:test');

const { Job, ROOT, run, stageAction } = require('./runner-sim');
const { hostTarget, ownVersion } = require('../lib/install');
const daemon = require('../lib/daemon');

const VERSION = ownVersion();
const TARGET = hostTarget();
const ARCHIVE_NAME = `ghcache-${VERSION}-${TARGET}.tar.gz`;
const DIST = process.env.GHCACHE_DIST_DIR || path.join(ROOT, 'target', 'dist');
const FAKE_GITHUB = process.env.GHCACHE_FAKE_GITHUB || path.join(ROOT, 'target', 'debug', 'fake-github');
/** The fake GitHub's token; gh sends it, and the jobs declare it as theirs. */
const GH_TOKEN = 'ghp_fake0123456789';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ghcache-action-test-'));
let archive;
let server;
let baseUrl;
/** Paths that the release server was asked for, in order. */
const served = [];
/** The release this run's `cargo xtask dist` wrote (release.json), published on `baseUrl`. */
let release;
/** The action, with this run's release.json in place of the repository's. */
let actionRoot;
let github;
let githubPort;
let runnerBin;
let ghcache;
const cleanups = [];

/** Lines of stdout that are annotations of `kind` (error, warning, notice). */
function annotations(result, kind) {
  return result.stdout.split(/\r?\n/).filter((l) => l.startsWith(`::${kind}`));
}

/** Lines of stdout that are error annotations. */
function errors(result) {
  return annotations(result, 'error');
}

/** A server of `handler` on `host`, closed after the tests; its `http(s)://host:port`. */
async function serve(host, handler, tls = null) {
  const made = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise((resolve) => made.listen(0, host, resolve));
  cleanups.push(() => new Promise((resolve) => made.close(resolve)));
  return `${tls ? 'https' : 'http'}://${host}:${made.address().port}`;
}

/** A self-signed certificate for 127.0.0.1 (openssl): `{ key, cert, file }`, file holding cert. */
function certificate() {
  const dir = fs.mkdtempSync(path.join(scratch, 'tls-'));
  const made = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem',
    '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { cwd: dir, encoding: 'utf8' });
  if (made.error) throw new Error(`openssl is not installed: apt-get install -y openssl (${made.error.message})`);
  assert.equal(made.status, 0, made.stderr);
  const file = path.join(dir, 'cert.pem');
  return { key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(file), file };
}

/** Every file under `dir`. */
function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    return entry.isDirectory() ? walk(file) : [file];
  });
}

/** `fn` until it returns a truthy value or `ms` pass; that value, or null. */
async function waitFor(ms, fn) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() >= deadline) return null;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function which(program) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const candidate = path.join(dir, program);
    if (dir && fs.existsSync(candidate)) return candidate;
  }
  return '';
}

function getJson(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, (response) => {
        const chunks = [];
        response.on('data', (c) => chunks.push(c));
        response.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
      })
      .on('error', reject);
  });
}

/** Requests that reached the fake GitHub. */
async function githubRequests() {
  return (await getJson(`http://127.0.0.1:${githubPort}/_fake/stats`)).requests;
}

/** The environment that points the real gh at the fake GitHub, for one job. */
function ghEnv(job) {
  const proxy = `http://127.0.0.1:${githubPort}`;
  const config = path.join(job.root, 'gh-config');
  fs.mkdirSync(config, { recursive: true });
  return {
    GH_HOST: 'github.localhost',
    HTTP_PROXY: proxy,
    http_proxy: proxy,
    GH_TOKEN,
    GH_CONFIG_DIR: config,
    GH_NO_UPDATE_NOTIFIER: '1',
    GH_PROMPT_DISABLED: '1',
    GH_PAGER: 'cat',
    LANG: 'C.UTF-8',
  };
}

/** A job whose PATH holds only what a runner has: node, gh, tar, gzip, sh (no Rust toolchain). */
function newJob(options = {}) {
  const job = new Job({ env: { PATH: runnerBin }, token: GH_TOKEN, actionRoot, ...options });
  cleanups.push(async () => {
    // A test that failed before the post step leaves the job's daemon running.
    if (job.state.pid) await daemon.stop(Number(job.state.pid));
    job.remove();
  });
  return job;
}

/** A swarm key, made by `ghcache swarm-key new`. */
function swarmKey() {
  const made = spawnSync(ghcache, ['swarm-key', 'new'], { encoding: 'utf8', env: { PATH: runnerBin, HOME: scratch } });
  assert.equal(made.status, 0, made.stderr);
  return made.stdout;
}

/** A keeper on loopback that runners can bootstrap from; its `/ip4/.../p2p/ID` address. */
async function startKeeper(key) {
  const home = fs.mkdtempSync(path.join(scratch, 'keeper-'));
  const keyFile = path.join(home, 'swarm.key');
  fs.writeFileSync(keyFile, key, { mode: 0o600 });
  const env = { PATH: runnerBin, HOME: home, GH_CACHE_DIR: path.join(home, 'cache') };
  const log = fs.openSync(path.join(home, 'daemon.log'), 'a');
  const child = spawn(
    ghcache,
    ['daemon', '--keep', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--swarm-key', keyFile],
    { env, stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  cleanups.push(() => daemon.stop(child.pid));
  const status = await waitFor(30000, () => {
    const now = daemon.status(ghcache, env);
    return now && now.listen_addrs && now.listen_addrs.length > 0 ? now : null;
  });
  assert.ok(status, `the keeper did not come up: ${fs.readFileSync(path.join(home, 'daemon.log'), 'utf8')}`);
  return { addr: `${status.listen_addrs[0]}/p2p/${status.peer_id}`, env };
}

before(async () => {
  archive = path.join(DIST, ARCHIVE_NAME);
  if (!fs.existsSync(archive)) {
    throw new Error(`no archive at ${archive}: run cargo xtask dist first (cargo xtask test does)`);
  }
  if (!fs.existsSync(FAKE_GITHUB)) {
    throw new Error(`no fake GitHub at ${FAKE_GITHUB}: run cargo build -p fake-github (cargo xtask test does)`);
  }
  runnerBin = path.join(scratch, 'runner-bin');
  fs.mkdirSync(runnerBin);
  for (const program of ['gh', 'tar', 'gzip', 'sh']) {
    const found = which(program);
    if (!found) throw new Error(`${program} is not installed${program === 'gh' ? ': apt-get install -y gh' : ''}`);
    fs.symlinkSync(found, path.join(runnerBin, program));
  }
  fs.symlinkSync(process.execPath, path.join(runnerBin, 'node'));

  // The release server: the release's archive, where the action's release.json says it is,
  // beside a .sha256 that the action must not use for it; the archive for url inputs, with its
  // checksum; and one whose published checksum is wrong.
  const bytes = fs.readFileSync(archive);
  const zeros = Buffer.from(`${'0'.repeat(64)}  ghcache.tar.gz\n`);
  const files = new Map([
    [`/releases/download/v${VERSION}/${ARCHIVE_NAME}`, bytes],
    [`/releases/download/v${VERSION}/${ARCHIVE_NAME}.sha256`, zeros],
    [`/${ARCHIVE_NAME}`, bytes],
    [`/${ARCHIVE_NAME}.sha256`, fs.readFileSync(`${archive}.sha256`)],
    ['/bad-checksum/ghcache.tar.gz', bytes],
    ['/bad-checksum/ghcache.tar.gz.sha256', zeros],
  ]);
  server = http.createServer((request, response) => {
    served.push(request.url);
    const body = files.get(request.url);
    response.writeHead(body ? 200 : 404, { 'content-type': 'application/octet-stream' });
    response.end(body || 'not found\n');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${server.address().port}`;
  release = JSON.parse(fs.readFileSync(path.join(DIST, 'release.json'), 'utf8'));
  actionRoot = stageAction(path.join(scratch, 'action'), { ...release, repository: baseUrl });

  github = spawn(FAKE_GITHUB, ['--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  githubPort = await new Promise((resolve, reject) => {
    github.stdout.on('data', (chunk) => {
      const match = chunk.toString('utf8').match(/listening on 127\.0\.0\.1:(\d+)/);
      if (match) resolve(Number(match[1]));
    });
    github.on('exit', (code) => reject(new Error(`fake-github exited (${code})`)));
  });

  // The archive's binary, for the test's own keepers and keys.
  const unpacked = path.join(scratch, 'unpacked');
  fs.mkdirSync(unpacked);
  const untar = spawnSync('tar', ['-xzf', archive, '-C', unpacked]);
  assert.equal(untar.status, 0, String(untar.stderr));
  ghcache = path.join(unpacked, `ghcache-${VERSION}-${TARGET}`, 'ghcache');
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  if (github) github.kill();
  if (server) server.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** Is the ELF file at `file` free of a program interpreter (a static executable)? */
function isStatic(file) {
  const elf = fs.readFileSync(file);
  assert.equal(elf.subarray(0, 4).toString('latin1'), '\x7fELF');
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i += 1) {
    const PT_INTERP = 3;
    if (elf.readUInt32LE(phoff + i * phentsize) === PT_INTERP) return false;
  }
  return true;
}

test('the archive holds the binary, README, licences, completions and man pages, with its checksum', () => {
  const listing = spawnSync('tar', ['-tzf', archive], { encoding: 'utf8' }).stdout.split('\n');
  const top = `ghcache-${VERSION}-${TARGET}/`;
  for (const file of [
    'ghcache',
    'README.md',
    'LICENSE-MIT',
    'LICENSE-APACHE',
    'completions/ghcache.bash',
    'completions/_ghcache',
    'completions/ghcache.fish',
    'man/ghcache.1',
    'man/ghcache-gh.1',
  ]) {
    assert.ok(listing.includes(top + file), `${file} missing from ${listing.join(' ')}`);
  }
  const digest = crypto.createHash('sha256').update(fs.readFileSync(archive)).digest('hex');
  assert.equal(fs.readFileSync(`${archive}.sha256`, 'utf8'), `${digest}  ${ARCHIVE_NAME}\n`);
  // What the action installs by default is checked against release.json, which dist wrote.
  assert.equal(release.version, VERSION);
  assert.equal(release.archives[TARGET], digest);
});

test('the binary in the archive runs with no Rust toolchain on PATH', async () => {
  for (const program of ['cargo', 'rustc', 'rustup']) assert.ok(!fs.existsSync(path.join(runnerBin, program)));
  const version = await run(ghcache, ['--version'], { env: { PATH: runnerBin } });
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout, `ghcache ${VERSION}\n`);
  if (TARGET === 'x86_64-unknown-linux-gnu') assert.ok(isStatic(ghcache), 'a static executable');
});

test('main and post: gh through the shim, two identical calls reach GitHub once, the summary says so', async () => {
  const key = swarmKey();
  const keeper = await startKeeper(key);
  const job = newJob();
  Object.assign(job.env, ghEnv(job));
  const main = await job.action('main', {
    url: `${baseUrl}/ghcache-{version}-{target}.tar.gz`,
    'swarm-key': key,
    bootstrap: keeper.addr,
  });
  assert.equal(main.code, 0, main.stdout + main.stderr);
  assert.deepEqual(errors(main), []);
  assert.match(main.stdout, /ghcache daemon \S+: 1 peer connected/);
  // Later steps: the shim first on PATH, then ghcache; the real gh in GH_CACHE_GH.
  assert.equal(job.paths.length, 2);
  assert.equal(job.paths[0], path.join(job.temp, 'ghcache', 'bin'));
  assert.equal(job.exported.GH_CACHE_GH, path.join(runnerBin, 'gh'));
  assert.equal(job.exported.GH_CACHE_P2P, '1');
  assert.match(job.exported.GH_CACHE_JOB_TOKEN_HASH, /^[0-9a-f]{64}$/);
  assert.ok(!main.env.includes(GH_TOKEN), 'the token is not written anywhere');
  assert.ok(!main.env.includes(key.trim().split('\n').pop()), 'nor the swarm key');
  assert.match(main.stdout, /^::add-mask::/m);

  const before = await githubRequests();
  const first = await job.run('gh', ['repo', 'view', 'o/r', '--json', 'name']);
  const second = await job.run('gh', ['repo', 'view', 'o/r', '--json', 'name']);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(second.stdout, first.stdout, 'the same answer');
  assert.equal(second.stderr, first.stderr);
  assert.equal((await githubRequests()) - before, 1, 'GitHub was asked once');
  const plain = await job.run(job.exported.GH_CACHE_GH, ['repo', 'view', 'o/r', '--json', 'name']);
  assert.equal(first.stdout, plain.stdout, 'what gh prints');

  const pid = Number(job.state.pid);
  assert.ok(daemon.alive(pid), 'the daemon outlives the main step');
  const post = await job.action('post');
  assert.equal(post.code, 0, post.stdout + post.stderr);
  assert.ok(!daemon.alive(pid), 'post stopped the daemon');
  assert.ok(!fs.existsSync(job.exported.GH_CACHE_SWARM_KEY_FILE), 'and removed the swarm key');
  const summary = job.summary();
  assert.match(summary, /^### ghcache$/m);
  assert.match(summary, /^\| gh requests through ghcache \| 2 \|$/m);
  assert.match(summary, /^\| answered from the cache \| 1 \(local 1, p2p 0, ipfs 0\) \|$/m);
  assert.match(summary, /^\| GitHub requests saved \| 1 \|$/m);
  assert.match(summary, /^\| asked GitHub \| 1 \|$/m);
  assert.match(summary, /^\| revalidated \(304, free\) \| 0 \|$/m);
  assert.match(summary, /^\| stale answers served \| 0 \|$/m);
  assert.match(summary, /Tiers: P2P on \(daemon running, 1 peer connected\); IPFS off/);
  // What GitHub said is left of the token's budget, from the fake GitHub's headers.
  assert.match(summary, /^\| GitHub budget left, (token:[0-9a-f]{16}|repo:\S+) \(graphql\) \| \d+ of 5000, resets in \d+ min \|$/m);
  const notices = post.stdout.split('\n').filter((l) => l.startsWith('::notice'));
  assert.deepEqual(notices, [
    '::notice title=ghcache::1 of 2 gh requests answered from the cache (local 1, p2p 0, ipfs 0): 1 GitHub request saved, 0 revalidated (304), 0 stale served',
  ]);
});

test('a second job on the runner takes ghcache from the tool cache', async () => {
  const first = newJob();
  assert.equal((await first.action('main')).code, 0);
  const second = newJob({ toolCache: first.toolCache });
  // The tool cache answers: nothing is downloaded. The summary and the notice are off.
  const asked = served.length;
  const main = await second.action('main', { summary: 'false', annotations: 'false' });
  assert.equal(main.code, 0, main.stdout);
  assert.match(main.stdout, /from the tool cache/);
  assert.deepEqual(served.slice(asked), []);
  const post = await second.action('post');
  assert.equal(post.code, 0, post.stdout);
  assert.ok(!post.stdout.includes('::notice'), post.stdout);
  assert.equal(second.summary(), '');
});

test('a wrong checksum fails the step with one line and installs nothing', async () => {
  for (const [inputs, from] of [
    [{ url: `${baseUrl}/${ARCHIVE_NAME}`, sha256: 'f'.repeat(64) }, 'the sha256 input'],
    [{ url: `${baseUrl}/bad-checksum/ghcache.tar.gz` }, `${baseUrl}/bad-checksum/ghcache.tar.gz.sha256`],
  ]) {
    const job = newJob();
    const main = await job.action('main', inputs);
    assert.equal(main.code, 1);
    const lines = errors(main);
    assert.equal(lines.length, 1, main.stdout);
    assert.match(lines[0], new RegExp(`^::error::ghcache: the archive ${inputs.url} has sha256 [0-9a-f]{64}, but ${from} says [0-9a-f]{64}: not installed$`));
    assert.deepEqual(job.paths, []);
    assert.equal(fs.readdirSync(job.toolCache).length, 0);
  }
});

test('a missing archive fails the step with one line', async () => {
  const job = newJob();
  const url = `${baseUrl}/v9.9.9/ghcache-9.9.9-${TARGET}.tar.gz`;
  const main = await job.action('main', { url, sha256: 'a'.repeat(64) });
  assert.equal(main.code, 1);
  assert.deepEqual(errors(main), [
    `::error::ghcache: cannot download ${url}: HTTP 404; check the version and url inputs`,
  ]);
});

test('a daemon that does not join fails the step with one line, and post stops it', async () => {
  const keeper = await startKeeper(swarmKey());
  const job = newJob();
  const main = await job.action('main', {
    url: `${baseUrl}/${ARCHIVE_NAME}`,
    'swarm-key': swarmKey(), // not the keeper's swarm
    bootstrap: keeper.addr,
    'join-timeout': '2',
  });
  assert.equal(main.code, 1);
  const log = path.join(job.temp, 'ghcache', 'daemon.log');
  const lines = errors(main);
  assert.equal(lines.length, 1, main.stdout);
  const expected =
    "::error::ghcache: the daemon joined no peer within 2s: check that the bootstrap peer is up and reachable from this runner and that swarm-key is that swarm's key " +
    `\\(its fingerprint here is [0-9a-f]{32}; a daemon logs its own when it starts\\); log: ${log}`;
  assert.match(lines[0], new RegExp(`^${expected.replace(/[.]/g, '\\.')}$`));
  const pid = Number(job.state.pid);
  const post = await job.action('post');
  assert.equal(post.code, 0, post.stdout);
  assert.ok(!daemon.alive(pid), 'post stopped the daemon');
});

test('a pull request from a fork is read-only and never a keeper', async () => {
  const job = newJob();
  const event = path.join(job.root, 'event.json');
  fs.writeFileSync(event, JSON.stringify({
    pull_request: { head: { repo: { full_name: 'someone/r' } }, base: { repo: { full_name: 'o/r' } } },
  }));
  Object.assign(job.env, { GITHUB_EVENT_NAME: 'pull_request', GITHUB_EVENT_PATH: event });
  const main = await job.action('main', {
    url: `${baseUrl}/${ARCHIVE_NAME}`,
    'swarm-key': swarmKey(),
    keep: 'true',
    'ipfs-api': 'http://127.0.0.1:5001',
  });
  assert.equal(main.code, 0, main.stdout);
  const status = daemon.status(job.outputs.path, job.stepEnv());
  assert.equal(status.read_only, true);
  assert.notEqual(status.keeper, true);
  assert.equal(job.exported.GH_CACHE_IPFS_API, undefined, 'read-only jobs add nothing to IPFS');
  assert.equal((await job.action('post')).code, 0);
});

test('a wrong input fails with one line that names it', async () => {
  const job = newJob();
  const main = await job.action('main', { url: `${baseUrl}/${ARCHIVE_NAME}`, summary: 'yes' });
  assert.equal(main.code, 1);
  assert.deepEqual(errors(main), ['::error::ghcache: input summary is "yes": give true or false']);
});

test('by default the release is installed, checked against the checksum the action carries, not a .sha256 beside it', async () => {
  const job = newJob();
  const asked = served.length;
  const main = await job.action('main');
  assert.equal(main.code, 0, main.stdout);
  assert.deepEqual(annotations(main, 'warning'), []);
  // The server's .sha256 for the release is wrong: asking for it would have failed the step.
  assert.deepEqual(served.slice(asked), [`/releases/download/v${VERSION}/${ARCHIVE_NAME}`]);
  assert.ok(main.stdout.split('\n').includes(`ghcache ${VERSION}`), main.stdout);
});

test('a url input without a sha256 input is checked against the .sha256 beside it, with one warning', async () => {
  const url = `${baseUrl}/${ARCHIVE_NAME}`;
  const job = newJob();
  const main = await job.action('main', { url });
  assert.equal(main.code, 0, main.stdout);
  assert.deepEqual(annotations(main, 'warning'), [
    `::warning title=ghcache::no sha256 input: the archive is checked against ${url}.sha256, which comes from the same server as the archive; give the sha256 input to pin it`,
  ]);
  // With the sha256 input, the .sha256 is not asked for.
  const pinned = newJob();
  const asked = served.length;
  const quiet = await pinned.action('main', { url, sha256: release.archives[TARGET] });
  assert.equal(quiet.code, 0, quiet.stdout);
  assert.deepEqual(annotations(quiet, 'warning'), []);
  assert.deepEqual(served.slice(asked), [`/${ARCHIVE_NAME}`]);
});

test('another version than the action\'s, without a sha256 input, is refused: the action has no checksum for it', async () => {
  const job = newJob();
  const asked = served.length;
  const main = await job.action('main', { version: '9.9.9' });
  assert.equal(main.code, 1);
  assert.deepEqual(errors(main), [
    `::error::ghcache: this action knows the checksums of ghcache ${VERSION}, not 9.9.9: give the sha256 input, or use the action's v9.9.9`,
  ]);
  assert.deepEqual(served.slice(asked), []);
  assert.deepEqual(job.paths, []);
});

test('plain http is refused except to this machine', async () => {
  // 127.0.0.2 is this machine too, but not a name the action accepts for plain http: it stands
  // for any address that a network between the runner and it could answer for.
  const seen = [];
  const bytes = fs.readFileSync(archive);
  const elsewhere = await serve('127.0.0.2', (request, response) => {
    seen.push(request.url);
    response.end(bytes);
  });
  const job = newJob();
  const url = `${elsewhere}/${ARCHIVE_NAME}`;
  const main = await job.action('main', { url, sha256: release.archives[TARGET] });
  assert.equal(main.code, 1, main.stdout);
  assert.deepEqual(errors(main), [
    `::error::ghcache: refusing to download ${url}: plain http is refused except to this machine (localhost, 127.0.0.1, ::1): use https`,
  ]);
  assert.deepEqual(seen, []);
  assert.deepEqual(job.paths, []);
});

test('a redirect from https to plain http is refused', async () => {
  const tls = certificate();
  const bytes = fs.readFileSync(archive);
  const secure = await serve('127.0.0.1', (request, response) => {
    if (request.url === `/${ARCHIVE_NAME}`) {
      response.end(bytes);
      return;
    }
    response.writeHead(302, { location: `${baseUrl}/${ARCHIVE_NAME}` });
    response.end();
  }, { key: tls.key, cert: tls.cert });
  const env = { PATH: runnerBin, NODE_EXTRA_CA_CERTS: tls.file };
  const sha256 = release.archives[TARGET];
  // Over https the archive is installed: the test's certificate is trusted.
  const direct = newJob({ env });
  const ok = await direct.action('main', { url: `${secure}/${ARCHIVE_NAME}`, sha256 });
  assert.equal(ok.code, 0, ok.stdout);
  const job = newJob({ env });
  const asked = served.length;
  const url = `${secure}/moved/${ARCHIVE_NAME}`;
  const main = await job.action('main', { url, sha256 });
  assert.equal(main.code, 1, main.stdout);
  assert.deepEqual(errors(main), [
    `::error::ghcache: refusing to download ${baseUrl}/${ARCHIVE_NAME}: a redirect from ${url} must not leave https`,
  ]);
  assert.deepEqual(served.slice(asked), []);
  assert.deepEqual(job.paths, []);
});

test('a tool-cache copy without the expected checksum is downloaded again, not run', async () => {
  const inputs = { url: `${baseUrl}/${ARCHIVE_NAME}`, sha256: release.archives[TARGET] };
  const first = newJob();
  assert.equal((await first.action('main', inputs)).code, 0);
  // Another job on a self-hosted runner replaced what the tool cache holds with a ghcache of its own.
  const top = `ghcache-${VERSION}-${TARGET}`;
  const evil = path.join(first.root, 'evil');
  fs.mkdirSync(path.join(evil, top), { recursive: true });
  const script = '#!/bin/sh\necho "ghcache 6.6.6 (planted)"\n';
  fs.writeFileSync(path.join(evil, top, 'ghcache'), script, { mode: 0o755 });
  const evilArchive = path.join(first.root, 'evil.tar.gz');
  assert.equal(spawnSync('tar', ['-czf', evilArchive, '-C', evil, top]).status, 0);
  let replaced = 0;
  for (const file of walk(path.join(first.toolCache, 'ghcache'))) {
    if (file.endsWith('.tar.gz')) fs.copyFileSync(evilArchive, file);
    else if (path.basename(file) === 'ghcache') fs.writeFileSync(file, script);
    else continue;
    replaced += 1;
  }
  assert.ok(replaced > 0, 'the tool cache holds ghcache');

  const second = newJob({ toolCache: first.toolCache });
  const asked = served.length;
  const main = await second.action('main', inputs);
  assert.equal(main.code, 0, main.stdout);
  assert.ok(!main.stdout.includes('6.6.6'), main.stdout);
  assert.match(main.stdout, /the tool cache's \S+ has sha256 [0-9a-f]{64}, not [0-9a-f]{64}: downloading/);
  assert.deepEqual(served.slice(asked), [`/${ARCHIVE_NAME}`]);
  const version = await second.run(second.outputs.path, ['--version']);
  assert.equal(version.stdout, `ghcache ${VERSION}\n`);
  // The release is back in the tool cache: a third job takes it from there.
  const third = newJob({ toolCache: first.toolCache });
  const again = served.length;
  const cached = await third.action('main', inputs);
  assert.equal(cached.code, 0, cached.stdout);
  assert.match(cached.stdout, /from the tool cache/);
  assert.deepEqual(served.slice(again), []);
});

test('the daemon is started without the inputs, the tokens or any other variable of the job', async () => {
  const key = swarmKey();
  const secrets = {
    GH_TOKEN: 'ghp_step_token_0001',
    GITHUB_TOKEN: 'ghs_job_token_0002',
    ACTIONS_RUNTIME_TOKEN: 'runtime_token_0003',
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'oidc_request_0004',
    DEPLOY_PASSWORD: 'deploy_password_0005',
  };
  const job = newJob({ env: { PATH: runnerBin, ...secrets } });
  const main = await job.action('main', {
    url: `${baseUrl}/${ARCHIVE_NAME}`,
    'swarm-key': key,
    permissions: 'issues: read\ncontents: read',
  });
  assert.equal(main.code, 0, main.stdout);
  const pid = Number(job.state.pid);
  const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
  const names = environ.map((entry) => entry.slice(0, entry.indexOf('=')));
  assert.deepEqual(names.filter((name) => !daemon.DAEMON_ENV.includes(name) && !name.startsWith('GH_CACHE_')), []);
  for (const secret of [...Object.values(secrets), GH_TOKEN, key.trim().split('\n').pop()]) {
    assert.ok(!environ.some((entry) => entry.includes(secret)), `${secret} reached the daemon`);
  }
  // The scope that the job's gh calls have under the declared token, without the token.
  assert.ok(environ.includes('GH_CACHE_SCOPE=actions:o/r#perms=contents:read,issues:read'), environ.join('\n'));
  assert.ok(environ.includes(`GH_CACHE_SWARM_KEY_FILE=${job.exported.GH_CACHE_SWARM_KEY_FILE}`));
  assert.equal((await job.action('post')).code, 0);
});

test('the permissions input: jobs that declare the same set share, a job that declares less asks GitHub itself', async () => {
  // One self-hosted runner, one cache dir, three jobs of the repository, one after the other.
  const cache = fs.mkdtempSync(path.join(scratch, 'shared-cache-'));
  const issues = ['issue', 'list', '-R', 'o/r'];
  const jobOf = async (id, permissions) => {
    const job = newJob({ env: { PATH: runnerBin, GH_CACHE_DIR: cache, GITHUB_JOB: id } });
    Object.assign(job.env, ghEnv(job));
    const main = await job.action('main', { url: `${baseUrl}/${ARCHIVE_NAME}`, permissions });
    assert.equal(main.code, 0, main.stdout + main.stderr);
    return job;
  };
  const triage = await jobOf('triage', 'contents: read\nissues: read\npull-requests: read');
  assert.equal(triage.exported.GH_CACHE_ACTIONS_PERMISSIONS, 'contents:read,issues:read,pull-requests:read');
  let before = await githubRequests();
  const fetched = await triage.run('gh', issues);
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.ok((await githubRequests()) > before, 'the first job asked GitHub');

  const lint = await jobOf('lint', 'contents: read');
  before = await githubRequests();
  const narrower = await lint.run('gh', issues);
  assert.equal(narrower.stdout, fetched.stdout);
  assert.ok((await githubRequests()) > before, 'the job that declared less asked GitHub itself');

  const docs = await jobOf('docs', '{ pull-requests: read, issues: read, contents: read }');
  before = await githubRequests();
  const same = await docs.run('gh', issues);
  assert.equal(same.stdout, fetched.stdout);
  assert.equal(await githubRequests(), before, 'the job that declared the same set got the first one\'s answer');
  for (const job of [triage, lint, docs]) assert.equal((await job.action('post')).code, 0);
});

test('a permissions input that is not a permissions block fails the step with one line', async () => {
  const job = newJob();
  const main = await job.action('main', { url: `${baseUrl}/${ARCHIVE_NAME}`, permissions: 'contents: read\nissues: reed' });
  assert.equal(main.code, 1, main.stdout);
  assert.deepEqual(errors(main), ['::error::ghcache: input permissions: issues: "reed" is not read, write or none']);
  assert.equal(job.exported.GH_CACHE_JOB_TOKEN_HASH, undefined, 'nothing declared');
});

/** A job and its runner after the main step put nothing in place: no PATH, no variable, no state. */
async function assertLeftAlone(job, main, notice) {
  assert.equal(main.code, 0, main.stdout + main.stderr);
  assert.deepEqual(errors(main), []);
  assert.deepEqual(annotations(main, 'notice'), [`::notice title=ghcache::${notice}`]);
  assert.deepEqual(job.paths, []);
  assert.deepEqual(job.exported, {});
  assert.deepEqual(fs.readdirSync(job.toolCache), []);
  const post = await job.action('post');
  assert.equal(post.code, 0, post.stdout);
  assert.deepEqual(annotations(post, 'notice'), []);
  assert.deepEqual(errors(post), []);
}

test('on Windows nothing is installed, gh is left as it is, one notice says so, and the step succeeds', async () => {
  const env = {
    PATH: runnerBin,
    NODE_OPTIONS: `--require ${path.join(__dirname, 'platform.js')}`,
    GHCACHE_TEST_PLATFORM: 'win32/x64',
  };
  const job = newJob({ env });
  const asked = served.length;
  const main = await job.action('main', { 'swarm-key': swarmKey() });
  await assertLeftAlone(job, main, 'there is no ghcache build for win32/x64: nothing installed, gh runs as it is, without the cache');
  assert.deepEqual(served.slice(asked), []);
});

test('a target the release has no archive for: nothing installed, one notice, and the step succeeds', async () => {
  const other = TARGET === 'aarch64-apple-darwin' ? 'x86_64-apple-darwin' : 'aarch64-apple-darwin';
  const partial = { ...release, repository: baseUrl, archives: { [other]: '0'.repeat(64) } };
  const job = newJob({ actionRoot: stageAction(path.join(scratch, 'action-partial'), partial) });
  const asked = served.length;
  const main = await job.action('main');
  await assertLeftAlone(
    job,
    main,
    `the ghcache ${VERSION} release has no build for ${TARGET} (it has: ${other}): nothing installed, gh runs as it is, without the cache`,
  );
  assert.deepEqual(served.slice(asked), []);
});

test('the summary shows what is left of each principal hourly budgets, and a pause', () => {
  const summary = require('../lib/summary');
  const now = 1_800_000_000_000;
  const limits = [
    {
      principal: 'repo:o/r',
      resources: {
        core: { limit: 1000, remaining: 812, reset: now / 1000 + 600 },
        search: { limit: 30, remaining: 2, reset: now / 1000 + 30 },
      },
      paused_until_ms: now + 4500,
    },
    { principal: 'token:0011223344556677', resources: { graphql: { limit: 5000, remaining: 1, reset: now / 1000 - 1 } } },
  ];
  assert.deepEqual(summary.budgetRows(limits, now), [
    ['GitHub budget left, repo:o/r (core)', '812 of 1000, resets in 10 min'],
    ['paused by a secondary rate limit, repo:o/r', '5 s more'],
  ]);
  assert.deepEqual(summary.budgetRows(undefined, now), []);
  const md = summary.markdown(summary.delta({}, {}), undefined, limits, now);
  assert.match(md, /^\| GitHub budget left, repo:o\/r \(core\) \| 812 of 1000, resets in 10 min \|$/m);
});
