// What every browser test needs: a throw-away data directory and the `openvrs` command on it, a
// real `openvrs serve` (plain HTTP on loopback, its log in the work directory), and Debian's
// headless Chromium through Playwright. Not a test itself (scripts/browser-test runs the
// tests/browser/*.mjs files only).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

/// A work directory and `cli(...args)` running `openvrs` on the data directory inside it.
export function setup(name) {
  const bin = process.env.OPENVRS_BIN;
  assert.ok(bin, 'set OPENVRS_BIN to the openvrs binary');
  const shots = process.env.SCREENSHOTS || 'target/browser';
  mkdirSync(shots, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), `openvrs-${name}-`));
  const env = { ...process.env, OPENVRS_DATA_DIR: join(work, 'd') };
  const cli = (...args) => execFileSync(bin, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { bin, shots, work, env, cli };
}

/// Starts `openvrs serve` and resolves with it and the base URLs of its internet and LGWAN
/// listeners.
export async function serve({ bin, env, work }) {
  const server = spawn(bin, ['serve', '--plain-http', '--lgwan', '127.0.0.1:0', '--internet', '127.0.0.1:0'],
    { env, stdio: ['ignore', 'pipe', openSync(join(work, 'server.log'), 'w')] });
  const [base, lgwan] = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const i = out.match(/internet\s+(http:\/\/[0-9.:]+)\//);
      const l = out.match(/LGWAN\s+(http:\/\/[0-9.:]+)\//);
      if (i && l) resolve([i[1], l[1]]);
    });
    server.on('exit', (code) => reject(new Error(`the server exited with ${code}: ${out}`)));
  });
  return { server, base, lgwan };
}

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/// Runs `body`; on failure prints the error and the server's log. Then closes everything,
/// removes the work directory and exits with the verdict.
export async function run({ work }, server, browser, body) {
  let failed = false;
  try {
    await body();
  } catch (e) {
    failed = true;
    console.error(e);
    console.error(`server log:\n${readFileSync(join(work, 'server.log'), 'utf8')}`);
  } finally {
    await browser.close();
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
  }
  rmSync(work, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
}
