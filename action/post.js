'use strict';
// The action's post step: stops this runner's daemon, then writes what ghcache did during the
// job to the job summary and as one notice (each can be turned off: `summary`, `annotations`).

const fs = require('node:fs');
const { spawnSync } = require('node:child_process');

const runner = require('./lib/runner');
const { info, state } = runner;
const daemon = require('./lib/daemon');
const report = require('./lib/summary');

async function post() {
  const ghcache = state('ghcache');
  if (!ghcache) {
    info('ghcache was not installed: nothing to report');
    return;
  }
  const pid = Number(state('pid'));
  if (pid > 0) {
    const stopped = await daemon.stop(pid);
    if (stopped) info('ghcache daemon stopped');
    else runner.annotate('warning', `the ghcache daemon (pid ${pid}) did not stop`, 'ghcache');
  }
  // The swarm key is the swarm's only secret: not left on a runner that others may use next.
  if (state('key_file')) fs.rmSync(state('key_file'), { force: true });
  const summary = state('summary') !== 'false';
  const annotations = state('annotations') !== 'false';
  if (!summary && !annotations) return;
  const env = { ...process.env };
  if (state('cache_dir')) env.GH_CACHE_DIR = state('cache_dir');
  const run = spawnSync(ghcache, ['stats', '--json'], { env, encoding: 'utf8' });
  let after;
  try {
    if (run.status !== 0) throw new Error((run.stderr || '').trim().split('\n').pop() || `exit ${run.status}`);
    after = JSON.parse(run.stdout);
  } catch (err) {
    runner.annotate('warning', `no ghcache summary: ghcache stats failed: ${err.message}`, 'ghcache');
    return;
  }
  let before = {};
  try {
    before = JSON.parse(state('baseline') || '{}');
  } catch (_) {
    // No baseline: the totals are this job's.
  }
  const counts = report.delta(before, after);
  if (summary && !runner.appendSummary(report.markdown(counts, before.tiers, after.rate_limits))) {
    info('no job summary: GITHUB_STEP_SUMMARY is not set');
  }
  if (annotations) runner.annotate('notice', report.notice(counts), 'ghcache');
}

runner.run(post);
