// tests/dashboard/harness.mjs: what every browser test of the dashboard starts from: a real
// edge process with its own data directory and a port the kernel picks, the `anonymily` CLI
// signed in with the owner's token, relays to a target server of the test's own, and Debian's
// chromium driven by playwright-core. Everything listens on 127.0.0.1 and lives in a temp
// directory the test removes.
// SPDX-License-Identifier: Apache-2.0

import {spawn, spawnSync} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import {createRequire} from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

// CTest passes where the build put the programs and where `npm ci` put playwright-core.
export const config = {
  edgeBinary: requiredEnv('ANM_EDGE_BIN'),
  cliBinary: requiredEnv('ANM_CLI_BIN'),
  pluginDir: requiredEnv('ANM_PLUGIN_DIR'),
  nodeModulesDir: requiredEnv('ANM_DASHBOARD_NODE_DIR'),
  artifactsDir: requiredEnv('ANM_DASHBOARD_ARTIFACTS'),
  chromium: process.env.ANM_CHROMIUM || '/usr/bin/chromium',
};

const {chromium} =
    createRequire(path.join(config.nodeModulesDir, 'package.json'))('playwright-core');

// Far above what a healthy edge needs for one step, so that a miss means a lost event.
export const kStepMs = 15_000;

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the browser tests through ctest`);
  return value;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns a truthy value or `ms` pass; returns that value or throws. */
export async function waitFor(what, check, ms = kStepMs) {
  const deadline = Date.now() + ms;
  while (true) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The environment of a product process: its own config home and no proxy. */
function productEnv(home) {
  return {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CONFIG_HOME: home,
    XDG_DATA_HOME: path.join(home, 'data'),
    XDG_STATE_HOME: path.join(home, 'state'),
    XDG_CACHE_HOME: path.join(home, 'cache'),
    no_proxy: '*',
    NO_PROXY: '*',
  };
}

/** A child process whose output lines are kept, for waiting on them and for failure reports. */
class Child {
  constructor(name, binary, args, env) {
    this.name = name;
    this.lines = [];
    this.waiters = [];
    this.process = spawn(binary, args, {env, stdio: ['ignore', 'pipe', 'pipe']});
    for (const stream of [this.process.stdout, this.process.stderr]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop();
        for (const line of parts) this.onLine(line);
      });
    }
    this.exited = new Promise(
        (resolve) => this.process.on('exit', (code, signal) => resolve({code, signal})));
  }

  onLine(line) {
    this.lines.push(line);
    this.waiters = this.waiters.filter(({test, resolve}) => {
      if (!test(line)) return true;
      resolve(line);
      return false;
    });
  }

  /** The first line, old or new, that passes `test`. */
  waitForLine(test, ms = kStepMs) {
    const seen = this.lines.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      // The timer is cleared on success: a pending one would keep the test process alive.
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.name} printed no such line within ${ms} ms:\n${this.describe()}`));
      }, ms);
      const waiter = {
        test,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        }
      };
      this.waiters.push(waiter);
    });
  }

  describe() {
    return this.lines.slice(-40).map((line) => `  ${this.name}: ${line}`).join('\n');
  }

  /** SIGTERM, then SIGKILL after 5 s; only this child, by its own pid. */
  async stop() {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    this.process.kill('SIGTERM');
    const killer = setTimeout(() => this.process.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(killer);
  }
}

/**
 * A local server standing in for a developer's handler. It records every request as the raw
 * bytes of its head and its body, and answers with `respond(request)` ({status, body}).
 */
export class TargetServer {
  constructor(respond = () => ({status: 200, body: 'ok'})) {
    this.respond = respond;
    this.requests = [];
    this.server = net.createServer((socket) => this.serve(socket));
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  serve(socket) {
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      // Several requests may come on one kept-alive connection.
      while (true) {
        const parsed = parseRequest(buffer);
        if (!parsed) return;
        buffer = buffer.subarray(parsed.consumed);
        this.requests.push(parsed.request);
        const {status, body = ''} = this.respond(parsed.request);
        const bytes = Buffer.from(body);
        socket.write(`HTTP/1.1 ${status} X\r\nContent-Type: text/plain\r\nContent-Length: ${
            bytes.length}\r\n\r\n`);
        socket.write(bytes);
      }
    });
    socket.on('error', () => {});
  }

  waitForCount(count, ms = kStepMs) {
    return waitFor(`${count} requests at the target`, () => this.requests.length >= count, ms);
  }

  close() {
    return new Promise((resolve) => this.server.close(resolve));
  }
}

/** One request from the front of `buffer` ({request, consumed}), or null when incomplete. */
function parseRequest(buffer) {
  const end = buffer.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = buffer.subarray(0, end + 4);
  const lines = head.toString('latin1').split('\r\n').slice(0, -2);
  const [method, target] = lines[0].split(' ');
  const headers = lines.slice(1).map((line) => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon), line.slice(colon + 1).trim()];
  });
  const header = (name) => (headers.find(([n]) => n.toLowerCase() === name) || [])[1];
  let at = end + 4;
  let body;
  if ((header('transfer-encoding') || '').toLowerCase() === 'chunked') {
    const chunks = [];
    while (true) {
      const lineEnd = buffer.indexOf('\r\n', at);
      if (lineEnd < 0) return null;
      const size = parseInt(buffer.subarray(at, lineEnd).toString('latin1'), 16);
      if (buffer.length < lineEnd + 2 + size + 2) return null;
      chunks.push(buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
      if (size === 0) break;
    }
    body = Buffer.concat(chunks);
  } else {
    const length = Number(header('content-length') || 0);
    if (buffer.length < at + length) return null;
    body = buffer.subarray(at, at + length);
    at += length;
  }
  return {
    request: {method, target, headers, head: Buffer.from(head), body: Buffer.from(body)},
    consumed: at
  };
}

/** A temp directory for one test, removed by cleanup(). */
export function makeTempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `anm-dashboard-${prefix}-`));
}

/** The edge as a process, with its owner's PAT, the CLI signed in with it, and its relays. */
export class EdgeEnv {
  /** `settings`: edge properties beyond the command line's, e.g. {'ingest.rate_per_hook': 0}. */
  static async start(name, settings = {}) {
    const env = new EdgeEnv(name);
    await env.startEdge(settings);
    return env;
  }

  constructor(name) {
    this.name = name;
    this.dir = makeTempDir(name);
    this.children = [];
    this.targets = [];
  }

  async startEdge(settings) {
    const dataDir = path.join(this.dir, 'edge-data');
    const portFile = path.join(this.dir, 'edge.port');
    const args = [
      '--listen',
      '127.0.0.1:0',
      '--port-file',
      portFile,
      '--data-dir',
      dataDir,
      '--plugin-dir',
      config.pluginDir,
    ];
    // Settings go through a file, the way an operator gives them.
    if (Object.keys(settings).length > 0) {
      const file = path.join(this.dir, 'edge.properties');
      fs.writeFileSync(
          file, Object.entries(settings).map(([key, value]) => `${key} = ${value}\n`).join(''));
      args.push('--config', file);
    }
    this.edge =
        new Child('edge', config.edgeBinary, args, productEnv(path.join(this.dir, 'edge-home')));
    this.children.push(this.edge);
    const port = await waitFor('the edge port file', () => {
      try {
        return Number(fs.readFileSync(portFile, 'utf8').trim().split(':').pop()) || null;
      } catch {
        return null;
      }
    });
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.ownerTokenFile = path.join(dataDir, 'owner.token');
    await waitFor('the owner token file', () => fs.existsSync(this.ownerTokenFile));
    this.ownerPat = fs.readFileSync(this.ownerTokenFile, 'utf8').trim();
  }

  /** Runs the CLI to its end as the test's user. */
  cli(args) {
    const result = spawnSync(config.cliBinary, args, {
      env: productEnv(path.join(this.dir, 'cli-home')),
      encoding: 'utf8',
      timeout: kStepMs,
    });
    if (result.status !== 0) {
      throw new Error(
          `anonymily ${args.join(' ')} exited ${result.status}:\n${result.stdout}${result.stderr}`);
    }
    return result.stdout + result.stderr;
  }

  login() {
    return this.cli(['login', '--edge', this.url, '--token-file', this.ownerTokenFile]);
  }

  async target(respond) {
    const target = await new TargetServer(respond).start();
    this.targets.push(target);
    return target;
  }

  /**
   * `anonymily relay --hook NAME --to URL --json` plus `extra`; resolves to {relay, hookId,
   * signingSecret} once the relay holds the stream.
   */
  async relay(hookName, targetUrl, extra = []) {
    const relay = new Child(
        `relay ${hookName}`, config.cliBinary,
        ['relay', '--edge', this.url, '--to', targetUrl, '--hook', hookName, '--json', ...extra],
        productEnv(path.join(this.dir, 'cli-home')));
    this.children.push(relay);
    const banner = await relay.waitForLine((line) => line.startsWith('hook '));
    await relay.waitForLine((line) => line.includes('stream connected'));
    const secretLine = relay.lines.find((line) => line.startsWith('signing secret '));
    return {
      relay,
      hookId: banner.slice(5).trim(),
      signingSecret: secretLine ? secretLine.slice(15).trim() : ''
    };
  }

  /** An access token for the test's own API calls (never given to the page). */
  async accessToken() {
    const answer = await request(this.port, 'POST', '/api/v1/auth/token', {token: this.ownerPat});
    if (answer.status !== 200) throw new Error(`token exchange answered ${answer.status}`);
    return JSON.parse(answer.body.toString()).access_token;
  }

  /** Sends a webhook to the hook's ingest URL; resolves to {status, body}. */
  ingest(hookId, {method = 'POST', suffix = '', query = '', headers = [], body = ''} = {}, agent) {
    return request(
        this.port, method, `/h/${hookId}${suffix}${query ? '?' + query : ''}`, body, headers,
        agent);
  }

  describe() {
    return this.children.map((child) => child.describe()).join('\n');
  }

  async cleanup() {
    for (const child of this.children.reverse()) await child.stop();
    for (const target of this.targets) await target.close();
    fs.rmSync(this.dir, {recursive: true, force: true});
  }
}

/**
 * One HTTP request to the edge on 127.0.0.1. `body` is a Buffer, a string or (for JSON) an
 * object; `headers` a list of [name, value] sent in that order.
 */
export function request(port, method, target, body = '', headers = [], agent = undefined) {
  let bytes = body;
  const list = [...headers];
  if (body && typeof body === 'object' && !Buffer.isBuffer(body)) {
    bytes = JSON.stringify(body);
    list.push(['Content-Type', 'application/json']);
  }
  bytes = Buffer.from(bytes || '');
  return new Promise((resolve, reject) => {
    const flat = list.flat();
    if (bytes.length > 0 || method === 'POST' || method === 'PUT') {
      flat.push('Content-Length', String(bytes.length));
    }
    const req = http.request(
        {host: '127.0.0.1', port, method, path: target, headers: flat, agent, setHost: true},
        (res) => {
          const chunks = [];
          res.on('data', (chunk) => chunks.push(chunk));
          res.on(
              'end',
              () => resolve(
                  {status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks)}));
        });
    req.on('error', reject);
    req.end(bytes);
  });
}

/** Standard Webhooks headers for `body` under `secret` (whsec_<base64 key>). */
export function standardWebhooksHeaders(secret, id, body) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const signature =
      crypto.createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
  return [
    ['webhook-id', id], ['webhook-timestamp', timestamp], ['webhook-signature', `v1,${signature}`]
  ];
}

/**
 * Chromium as the machine provides it, headless, with a profile of its own that is removed
 * afterwards. The flags keep it from reaching out to any network: the tests see loopback only.
 */
export async function launchBrowser(dir, {colorScheme = 'light'} = {}) {
  const profile = fs.mkdtempSync(path.join(dir, 'chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: config.chromium,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: {width: 1280, height: 860},
    colorScheme,
  });
  const page = context.pages()[0] || await context.newPage();

  // Anything the page's own policy refused is a bug of the page: collect it for the tests.
  page.violations = [];
  page.errors = [];
  page.on('pageerror', (error) => page.errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) {
      page.violations.push(message.text());
    }
  });
  return {context, page};
}

/** Saves a screenshot under the artifacts directory and prints where. */
export async function screenshot(page, name) {
  fs.mkdirSync(config.artifactsDir, {recursive: true});
  const file = path.join(config.artifactsDir, `${name}.png`);
  await page.screenshot({path: file, fullPage: false});
  console.log(`screenshot: ${file}`);
  return file;
}

/** Signs the page in with the owner's PAT through the sign-in form. */
export async function signIn(page, env) {
  await page.goto(env.url + '/');
  await page.getByLabel('Personal access token').fill(env.ownerPat);
  await page.getByRole('button', {name: 'Sign in'}).click();
  await signedIn(page);
}

/** Waits for the hooks after a sign-in; throws with the form's message when it was refused. */
export async function signedIn(page) {
  const refusal = page.locator('#signin-error:not(:empty)');
  await page.getByRole('heading', {name: 'Hooks'}).or(refusal).waitFor({timeout: kStepMs});
  if (await refusal.count() > 0) throw new Error(`sign-in refused: ${await refusal.textContent()}`);
}
