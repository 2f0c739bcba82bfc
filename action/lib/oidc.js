'use strict';
// The job's GitHub Actions OIDC token for this runner's daemon: with `permissions: id-token:
// write`, GitHub gives the job ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN;
// the token is asked for with the audience `ghcache:<the daemon's peer id>` (so that only this
// daemon can present it) and handed to the daemon as a file, never in its environment. The
// daemon shows it to its peers, which then take its answers for this job's repository.

const fs = require('node:fs');
const path = require('node:path');

const { StepError } = require('./runner');

/** Largest answer read from the token endpoint (a token is about 1 KiB). */
const MAX_ANSWER = 64 * 1024;

/** The variables GitHub sets for a job that may ask for an OIDC token, or null. */
function requestFrom(env) {
  const url = (env.ACTIONS_ID_TOKEN_REQUEST_URL || '').trim();
  const token = (env.ACTIONS_ID_TOKEN_REQUEST_TOKEN || '').trim();
  return url && token ? { url, token } : null;
}

/**
 * Asks GitHub's token endpoint for the job's OIDC token with `audience`, as the Actions toolkit
 * does: `GET <url>&audience=<audience>` with the request token as a bearer token, answered with
 * `{"value": "<jwt>"}`. Plain http only to this machine.
 */
async function requestToken({ url, token }, audience) {
  let target;
  try {
    target = new URL(`${url}&audience=${encodeURIComponent(audience)}`);
  } catch (_) {
    throw new StepError('ACTIONS_ID_TOKEN_REQUEST_URL is not a URL');
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(target.hostname);
  if (target.protocol !== 'https:' && !(target.protocol === 'http:' && loopback)) {
    throw new StepError('ACTIONS_ID_TOKEN_REQUEST_URL is not https');
  }
  let answer;
  try {
    answer = await fetch(target, {
      headers: { Authorization: `bearer ${token}`, Accept: 'application/json; api-version=2.0' },
      redirect: 'error',
    });
  } catch (err) {
    throw new StepError(`the OIDC token request failed: ${err.cause ? err.cause.message : err.message}`);
  }
  const text = await answer.text();
  if (!answer.ok) throw new StepError(`the OIDC token request was answered ${answer.status}`);
  let value;
  try {
    value = text.length <= MAX_ANSWER ? JSON.parse(text).value : undefined;
  } catch (_) {
    value = undefined;
  }
  if (typeof value !== 'string' || value.split('.').length !== 3) {
    throw new StepError('the OIDC token request was answered without a token');
  }
  return value;
}

/** Writes `token` to a new file in `dir` that only this user can read; returns its path. */
function writeToken(dir, token) {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'oidc-token');
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return file;
}

module.exports = { requestFrom, requestToken, writeToken };
