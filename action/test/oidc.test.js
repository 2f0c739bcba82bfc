'use strict';
// The job's OIDC token as the action asks for it, against the fake GitHub's token endpoint
// (`cargo build -p fake-github`; `cargo xtask test` builds it): the audience names the daemon's
// peer id, the request token is sent as a bearer token, and the token goes to the daemon as a
// private file and a flag, never in its environment.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { after, before, test } = require('node:test');

const { ROOT } = require('./runner-sim');
const { StepError } = require('../lib/runner');
const daemon = require('../lib/daemon');
const oidc = require('../lib/oidc');

const FAKE_GITHUB = process.env.GHCACHE_FAKE_GITHUB || path.join(ROOT, 'target', 'debug', 'fake-github');
/** The fake's ACTIONS_ID_TOKEN_REQUEST_TOKEN (fake_github::oidc::REQUEST_TOKEN). */
const REQUEST_TOKEN = 'fake-actions-id-token-request-token';
const PEER = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN';

let github;
let requestUrl;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ghcache-oidc-test-'));

before(async () => {
  if (!fs.existsSync(FAKE_GITHUB)) {
    throw new Error(`no fake GitHub at ${FAKE_GITHUB}: run cargo build -p fake-github (cargo xtask test does)`);
  }
  github = spawn(FAKE_GITHUB, ['--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    github.stdout.on('data', (chunk) => {
      const match = chunk.toString('utf8').match(/listening on 127\.0\.0\.1:(\d+)/);
      if (match) resolve(Number(match[1]));
    });
    github.on('exit', (code) => reject(new Error(`fake-github exited (${code})`)));
  });
  requestUrl = `http://127.0.0.1:${port}/_services/token?api-version=2.0`;
});

after(() => {
  if (github) github.kill();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** The claims of a JWT, unverified (the daemon's peers verify it). */
function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

test('only a job with id-token: write can ask for a token', () => {
  assert.equal(oidc.requestFrom({}), null);
  assert.equal(oidc.requestFrom({ ACTIONS_ID_TOKEN_REQUEST_URL: 'https://x/y?a=1' }), null);
  assert.deepEqual(
    oidc.requestFrom({ ACTIONS_ID_TOKEN_REQUEST_URL: 'https://x/y?a=1', ACTIONS_ID_TOKEN_REQUEST_TOKEN: 't' }),
    { url: 'https://x/y?a=1', token: 't' },
  );
});

test('the token is asked for with the daemon\'s audience and written where only this user reads it', async () => {
  const jwt = await oidc.requestToken({ url: requestUrl, token: REQUEST_TOKEN }, `ghcache:${PEER}`);
  assert.equal(claims(jwt).aud, `ghcache:${PEER}`);
  const file = oidc.writeToken(path.join(scratch, 'job'), jwt);
  assert.equal(fs.readFileSync(file, 'utf8'), `${jwt}\n`);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const args = daemon.flags({ keep: false, readOnly: false, bootstrap: [], oidcTokenFile: file });
  assert.deepEqual(args.slice(0, 3), ['daemon', '--oidc-token-file', file]);
  assert.ok(!daemon.flags({ keep: false, readOnly: false, bootstrap: [] }).includes('--oidc-token-file'));
});

test('a refused request, or a request URL that is not https, is one StepError line', async () => {
  await assert.rejects(
    oidc.requestToken({ url: requestUrl, token: 'wrong' }, `ghcache:${PEER}`),
    (err) => err instanceof StepError && /answered 401/.test(err.message) && !err.message.includes('\n'),
  );
  await assert.rejects(
    oidc.requestToken({ url: 'http://example.com/token?a=1', token: REQUEST_TOKEN }, 'ghcache:x'),
    (err) => err instanceof StepError && /not https/.test(err.message),
  );
});
