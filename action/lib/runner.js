'use strict';
// What a step tells the GitHub Actions runner, through the files and stdout commands the runner
// reads (docs.github.com, "Workflow commands for GitHub Actions"): inputs, environment for later
// steps, PATH, state for the post step, outputs, the job summary, annotations.
// The same as @actions/core does, without its npm dependencies.

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');

/** The failure of a step: its message is the one line the user sees. */
class StepError extends Error {}

/** The input `name` as the runner passes it (`INPUT_<NAME>`; hyphens stay), trimmed. */
function input(name) {
  const key = `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
  return (process.env[key] || '').trim();
}

/** A boolean input: true or false (as @actions/core accepts them); anything else fails. */
function booleanInput(name) {
  const value = input(name);
  if (['true', 'True', 'TRUE'].includes(value)) return true;
  if (['false', 'False', 'FALSE'].includes(value)) return false;
  throw new StepError(`input ${name} is ${JSON.stringify(value)}: give true or false`);
}

/** Appends `name` = `value` to the runner's file named by the variable `fileVar`. */
function appendKeyValue(fileVar, name, value) {
  const file = process.env[fileVar];
  if (!file) throw new StepError(`${fileVar} is not set: run this as a step of a GitHub Actions job`);
  const text = String(value);
  // A delimiter that the value cannot contain, as the runner's heredoc format requires.
  const delimiter = `ghcache_${crypto.randomBytes(12).toString('hex')}`;
  fs.appendFileSync(file, `${name}<<${delimiter}${os.EOL}${text}${os.EOL}${delimiter}${os.EOL}`);
}

/** Sets `name` for later steps, and for what this step starts. */
function exportVariable(name, value) {
  process.env[name] = String(value);
  appendKeyValue('GITHUB_ENV', name, value);
}

/** Puts `dir` first on PATH for later steps, and for what this step starts. */
function addPath(dir) {
  const file = process.env.GITHUB_PATH;
  if (!file) throw new StepError('GITHUB_PATH is not set: run this as a step of a GitHub Actions job');
  fs.appendFileSync(file, `${dir}${os.EOL}`);
  process.env.PATH = `${dir}${require('node:path').delimiter}${process.env.PATH || ''}`;
}

/** Keeps `value` for this action's post step (which reads it with [`state`]). */
function saveState(name, value) {
  appendKeyValue('GITHUB_STATE', name, value);
}

/** What the main step kept with [`saveState`]; empty when it kept nothing. */
function state(name) {
  return process.env[`STATE_${name}`] || '';
}

/** Sets the step's output `name`. */
function setOutput(name, value) {
  appendKeyValue('GITHUB_OUTPUT', name, value);
}

/** Appends Markdown to the job summary; false when the runner gives no summary file. */
function appendSummary(markdown) {
  const file = process.env.GITHUB_STEP_SUMMARY;
  if (!file) return false;
  fs.appendFileSync(file, markdown);
  return true;
}

function escapeData(text) {
  return String(text).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(text) {
  return escapeData(text).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** One annotation line: `kind` is error, warning or notice. */
function annotate(kind, message, title) {
  const props = title ? ` title=${escapeProperty(title)}` : '';
  process.stdout.write(`::${kind}${props}::${escapeData(message)}${os.EOL}`);
}

/** Hides `secret` wherever the runner would log it. */
function mask(secret) {
  for (const line of String(secret).split(/\r?\n/)) {
    if (line.trim()) process.stdout.write(`::add-mask::${escapeData(line.trim())}${os.EOL}`);
  }
}

function info(line) {
  process.stdout.write(`${line}${os.EOL}`);
}

/**
 * Runs `step` and turns its failure into the step's: one error annotation, exit code 1.
 * A [`StepError`] says what to do; anything else is shown with its message only.
 */
async function run(step) {
  try {
    await step();
  } catch (err) {
    const detail = err && err.message ? err.message : String(err);
    const message = err instanceof StepError ? detail : `unexpected failure: ${detail}`;
    annotate('error', `ghcache: ${message}`);
    process.exitCode = 1;
  }
}

module.exports = {
  StepError,
  addPath,
  annotate,
  appendSummary,
  booleanInput,
  exportVariable,
  info,
  input,
  mask,
  run,
  saveState,
  setOutput,
  state,
};
