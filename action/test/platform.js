'use strict';
// Preloaded into the action (`NODE_OPTIONS=--require .../platform.js`) to make it see the
// platform and architecture of another runner: GHCACHE_TEST_PLATFORM=win32/x64.

const [platform, arch] = (process.env.GHCACHE_TEST_PLATFORM || '').split('/');
if (platform) Object.defineProperty(process, 'platform', { value: platform });
if (arch) Object.defineProperty(process, 'arch', { value: arch });
