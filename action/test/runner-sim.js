'use strict';
// A GitHub Actions runner, as far as this action sees one: a job's environment, the file
// commands of each step (GITHUB_ENV, GITHUB_PATH, GITHUB_STATE, GITHUB_OUTPUT,
// GITHUB_STEP_SUMMARY), inputs with action.yml's defaults, RUNNER_TEMP and RUNNER_TOOL_CACHE.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');

/** The `inputs:` of action.yml: name, default and description of each, in order. */
function actionInputs(text = fs.readFileSync(path.join(ROOT, 'action.yml'), 'utf8')) {
  const inputs = [];
  let inside = false;
  for (const line of text.split('\n')) {
    if (/^\S/.test(line)) {
      inside = line.startsWith('inputs:');
      continue;
    }
    if (!inside) continue;
    const name = line.match(/^ {2}([A-Za-z0-9_-]+):\s*$/);
    if (name) {
      inputs.push({ name: name[1], default: '', description: '' });
      continue;
    }
    const field = line.match(/^ {4}(default|description):\s*(.*)$/);
    if (field && inputs.length > 0) {
      let value = field[2].trim();
      if (/^'.*'$/.test(value)) value = value.slice(1, -1).replace(/''/g, "'");
      else if (/^".*"$/.test(value)) value = JSON.parse(value);
      inputs[inputs.length - 1][field[1]] = value;
    }
  }
  return inputs;
}

/** Reads a file of `NAME=value` lines and `NAME<<DELIMITER` blocks, as the runner does. */
function parseFileCommands(text) {
  const out = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    if (!line) continue;
    const heredoc = line.match(/^([^=<]+)<<(.+)$/);
    if (heredoc) {
      const value = [];
      i += 1;
      while (i < lines.length && lines[i] !== heredoc[2]) {
        value.push(lines[i]);
        i += 1;
      }
      if (i >= lines.length) throw new Error(`unterminated ${heredoc[1]}<<${heredoc[2]}`);
      out[heredoc[1]] = value.join('\n');
      continue;
    }
    const at = line.indexOf('=');
    if (at <= 0) throw new Error(`not a file command: ${JSON.stringify(line)}`);
    out[line.slice(0, at)] = line.slice(at + 1);
  }
  return out;
}

/**
 * A copy of the action in `dir` (action.yml, action/, the Cargo.toml its version is read from)
 * whose `action/release.json` is `release`: the action as it would be released with the
 * archives of this test run, which are not the ones whose checksums the repository carries.
 */
function stageAction(dir, release) {
  fs.mkdirSync(dir, { recursive: true });
  for (const file of ['Cargo.toml', 'action.yml']) fs.copyFileSync(path.join(ROOT, file), path.join(dir, file));
  fs.cpSync(path.join(ROOT, 'action'), path.join(dir, 'action'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'action', 'release.json'), `${JSON.stringify(release, null, 2)}\n`);
  return dir;
}

/** One job on one simulated runner. */
class Job {
  /**
   * `env`: the job's environment (PATH included); `toolCache`: a tool cache shared with other
   * jobs of the same runner, else one of its own; `token`: what `${{ github.token }}` is;
   * `actionRoot`: the action's checkout (see [`stageAction`]).
   */
  constructor({ env, toolCache, token = 'ghs_job_token', actionRoot = ROOT }) {
    this.actionRoot = actionRoot;
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'ghcache-job-'));
    this.temp = path.join(this.root, 'runner-temp');
    this.toolCache = toolCache || path.join(this.root, 'tool-cache');
    fs.mkdirSync(this.temp, { recursive: true });
    fs.mkdirSync(this.toolCache, { recursive: true });
    this.token = token;
    this.env = {
      GITHUB_ACTIONS: 'true',
      GITHUB_REPOSITORY: 'o/r',
      GITHUB_WORKFLOW_REF: 'o/r/.github/workflows/ci.yml@refs/heads/main',
      GITHUB_WORKFLOW_SHA: '0123456789abcdef0123456789abcdef01234567',
      GITHUB_JOB: 'test',
      GITHUB_EVENT_NAME: 'push',
      RUNNER_TEMP: this.temp,
      RUNNER_TOOL_CACHE: this.toolCache,
      HOME: path.join(this.root, 'home'),
      ...env,
    };
    fs.mkdirSync(this.env.HOME, { recursive: true });
    this.paths = [];
    this.state = {};
    this.outputs = {};
    this.summaryFile = path.join(this.root, 'step-summary.md');
    this.steps = 0;
  }

  /** The environment a step sees: the job's, then what earlier steps exported and put on PATH. */
  stepEnv() {
    const env = { ...this.env, ...this.exported };
    env.PATH = [...this.paths, this.env.PATH].join(path.delimiter);
    return env;
  }

  get exported() {
    if (!this._exported) this._exported = {};
    return this._exported;
  }

  /** Runs the action's `main` or `post` with `inputs` over action.yml's defaults. */
  async action(which, inputs = {}) {
    this.steps += 1;
    const files = {};
    for (const name of ['GITHUB_ENV', 'GITHUB_PATH', 'GITHUB_STATE', 'GITHUB_OUTPUT']) {
      files[name] = path.join(this.root, `${name.toLowerCase()}-${this.steps}`);
      fs.writeFileSync(files[name], '');
    }
    const env = { ...this.stepEnv(), ...files, GITHUB_STEP_SUMMARY: this.summaryFile };
    for (const input of actionInputs()) {
      const given = Object.prototype.hasOwnProperty.call(inputs, input.name);
      const value = given ? inputs[input.name] : input.default.replace('${{ github.token }}', this.token);
      env[`INPUT_${input.name.toUpperCase()}`] = String(value);
    }
    for (const [name, value] of Object.entries(this.state)) env[`STATE_${name}`] = value;
    const script = path.join(this.actionRoot, 'action', which === 'post' ? 'post.js' : 'main.js');
    const result = await run(process.execPath, [script], { env, cwd: this.root });
    Object.assign(this.exported, parseFileCommands(fs.readFileSync(files.GITHUB_ENV, 'utf8')));
    const added = fs.readFileSync(files.GITHUB_PATH, 'utf8').split(/\r?\n/).filter(Boolean);
    // Each directory goes first: the last one added is searched first.
    this.paths = [...[...added].reverse(), ...this.paths];
    Object.assign(this.state, parseFileCommands(fs.readFileSync(files.GITHUB_STATE, 'utf8')));
    Object.assign(this.outputs, parseFileCommands(fs.readFileSync(files.GITHUB_OUTPUT, 'utf8')));
    result.env = fs.readFileSync(files.GITHUB_ENV, 'utf8');
    result.path = added;
    return result;
  }

  /** A later step's command: `program args` with the step environment. */
  run(program, args, extraEnv = {}) {
    return run(program, args, { env: { ...this.stepEnv(), ...extraEnv }, cwd: this.root });
  }

  summary() {
    return fs.existsSync(this.summaryFile) ? fs.readFileSync(this.summaryFile, 'utf8') : '';
  }

  remove() {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** Runs `program args`; resolves with code, stdout and stderr (never rejects on exit codes). */
function run(program, args, options) {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (chunk) => out.push(chunk));
    child.stderr.on('data', (chunk) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({
        code: code === null ? 128 + (signal === 'SIGKILL' ? 9 : 15) : code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

module.exports = { Job, ROOT, actionInputs, parseFileCommands, run, stageAction };
