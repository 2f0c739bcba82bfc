'use strict';
// README's "Use in GitHub Actions" lists exactly action.yml's inputs, with their defaults; the
// action's own files are what it needs.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

const { ROOT, actionInputs } = require('./runner-sim');
const { ownRelease, ownVersion } = require('../lib/install');

/** The inputs table of README's "Use in GitHub Actions": name and default, in order. */
function readmeInputs() {
  const text = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = text.split(/^## Use in GitHub Actions$/m)[1];
  assert.ok(section, 'README has a "## Use in GitHub Actions" section');
  const body = section.split(/^## /m)[0];
  const rows = body.split('\n').filter((l) => /^\| `[a-z0-9-]+` \|/.test(l));
  return rows.map((row) => {
    const cells = row.split('|').slice(1, -1).map((c) => c.trim());
    // A default in backticks is the literal one; words describe what an empty default means.
    const literal = (cell) => {
      const quoted = cell.match(/^`(.*)`$/);
      return quoted ? quoted[1] : '';
    };
    return { name: literal(cells[0]), default: literal(cells[1]) };
  });
}

test('README lists every input of action.yml, in order, with its default', () => {
  const documented = readmeInputs();
  const declared = actionInputs().map(({ name, default: value }) => ({ name, default: value }));
  assert.ok(declared.length >= 10, JSON.stringify(declared));
  assert.deepEqual(documented, declared);
});

test('action.yml runs plain Node: node20, main and post, no npm dependencies', () => {
  const yml = fs.readFileSync(path.join(ROOT, 'action.yml'), 'utf8');
  assert.match(yml, /^ {2}using: node20$/m);
  assert.match(yml, /^ {2}main: action\/main\.js$/m);
  assert.match(yml, /^ {2}post: action\/post\.js$/m);
  assert.ok(!fs.existsSync(path.join(ROOT, 'action', 'package.json')));
  assert.ok(!fs.existsSync(path.join(ROOT, 'action', 'node_modules')));
  for (const dir of ['action', 'action/lib']) {
    for (const file of fs.readdirSync(path.join(ROOT, dir)).filter((f) => f.endsWith('.js'))) {
      const source = fs.readFileSync(path.join(ROOT, dir, file), 'utf8');
      for (const [, module] of source.matchAll(/require\('([^']+)'\)/g)) {
        assert.ok(module.startsWith('node:') || module.startsWith('.'), `${dir}/${file} requires ${module}`);
      }
    }
  }
});

test('the action reads the checksums it carries (action/release.json), made for its own version', () => {
  // Its bytes are held to what `cargo xtask dist` writes by the xtask's own test.
  const release = ownRelease();
  assert.equal(release.version, ownVersion(), 'run cargo xtask dist and commit action/release.json');
  const manifest = fs.readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8');
  assert.equal(release.repository, manifest.match(/^repository\s*=\s*"([^"]+)"/m)[1]);
  assert.match(release.repository, /^https:\/\//);
  assert.ok(Object.keys(release.archives).length > 0, 'a release has archives');
});
