// tests/dashboard/dashboard.test.mjs: the dashboard in a real browser against a real edge,
// relay and local target (docs/dashboard.md). Run by CTest (label "browser"); each test starts
// its own edge and browser.
// SPDX-License-Identifier: Apache-2.0

import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import {test} from 'node:test';
import {promisify} from 'node:util';

import {EdgeEnv, kStepMs, launchBrowser, request, screenshot, signedIn, signIn, standardWebhooksHeaders, TargetServer, waitFor} from './harness.mjs';

// The contract's policy, word for word (docs/dashboard.md).
const kCsp = `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; ` +
    `connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`;

// The codes docs/diagnosis.md gives a refused connection and a 401 from a handler whose secret
// differs, and a path search, an unclosed range and a misspelt field after text that is not
// ASCII in the syntax of docs/search.md.
const kDiagnosisRefused = 'delivery.nothing_listening';
const kDiagnosisUnauthorized = 'delivery.local_verification_failed';
const kPathQuery = (suffix) => `path:"${suffix}"`;
const kBrokenQuery = 'status:[500 TO';
const kWideBrokenQuery = 'path:"/é€😀" AND stauts:500';

// Seeding thousands of events from one address is what the ingest rate limits are there to stop.
const kNoRateLimits = {
  'ingest.rate_per_hook': 0,
  'ingest.rate_per_address': 0
};

/** Runs `body(env, page)` with an edge and a signed-out browser, and cleans both up. */
async function withEdge(name, body, {colorScheme, settings} = {}) {
  const env = await EdgeEnv.start(name, settings);
  let browser;
  try {
    browser = await launchBrowser(env.dir, {colorScheme});
    await body(env, browser.page, browser.context);
    assert.deepEqual(browser.page.violations, [], 'the page broke its own Content-Security-Policy');
    assert.deepEqual(browser.page.errors, [], 'the page threw');
  } catch (error) {
    if (browser) await screenshot(browser.page, `failed-${name}`).catch(() => {});
    error.message += `\n${env.describe()}`;
    throw error;
  } finally {
    if (browser) await browser.context.close();
    await env.cleanup();
  }
}

/** Every byte value, then some text: a body no text view could show whole. */
function binaryBody() {
  const bytes = Buffer.alloc(300);
  for (let i = 0; i < 256; i++) bytes[i] = i;
  Buffer.from('{"not":"json"} tail \u00e9\n\u0000\u00ff').copy(bytes, 256);
  return bytes;
}

/** The hex rows a dump of `bytes` must show, computed here independently of the page. */
function expectedHexRows(bytes) {
  const rows = [];
  for (let at = 0; at < bytes.length; at += 16) {
    const slice = [...bytes.subarray(at, at + 16)];
    const hex = slice.map((b) => b.toString(16).padStart(2, '0'));
    rows.push({
      offset: at.toString(16).padStart(8, '0'),
      hex: (hex.slice(0, 8).join(' ') + (hex.length > 8 ? '  ' + hex.slice(8).join(' ') : '')),
      ascii: slice.map((b) => (b >= 0x20 && b <= 0x7e ? String.fromCharCode(b) : '.')).join(''),
    });
  }
  return rows;
}

/** The cells of every hex row the page drew, by row index. */
async function hexRowsShown(page) {
  return page.$$eval(
      '.hex-grid .vlist-row',
      (rows) => rows.map(
          (row) => ({
            index: Number(row.dataset.index),
            cells: [...row.querySelectorAll('[role="gridcell"]')].map((cell) => cell.textContent),
          })));
}

/** A port nothing listens on: bound by the kernel, then closed again. */
async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const {port} = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Signs the CLI in and starts a relay of the named hook "dash" to a new target. */
async function relayedHook(env, respond) {
  env.login();
  const target = await env.target(respond);
  const {hookId} = await env.relay('dash', target.url);
  return {target, hookId};
}

/** Signs the CLI in and makes the named hook with no relay connected: nothing delivers to it. */
async function quietHook(env, name) {
  env.login();
  const target = await env.target();
  const {hookId, relay} = await env.relay(name, target.url);
  await relay.stop();
  return hookId;
}

/**
 * Sends `count` webhooks, `event(n)` the n-th, `workers` at a time on kept-alive connections;
 * resolves to their ids.
 */
async function ingestMany(env, hookId, count, workers, event) {
  const agent = new http.Agent({keepAlive: true, maxSockets: workers});
  const ids = [];
  let next = 0;
  await Promise.all(Array.from({length: workers}, async () => {
    while (next < count) {
      const answer = await env.ingest(hookId, event(next++), agent);
      assert.equal(answer.status, 200);
      ids.push(JSON.parse(answer.body).id);
    }
  }));
  agent.destroy();
  return ids;
}

async function openHook(page, name) {
  await page.getByRole('link', {name, exact: true}).click();
  await page.getByRole('grid', {name: 'Events'}).waitFor();
}

// --- Works on every edge that embeds the dashboard ------------------------------------------

test(
    'page: the edge serves the page under its policy and it loads without a violation',
    async () => {
      await withEdge('page', async (env, page) => {
        const answer = await request(env.port, 'GET', '/');
        assert.equal(answer.status, 200);
        assert.equal(answer.headers['content-security-policy'], kCsp);
        assert.equal(answer.headers['x-content-type-options'], 'nosniff');
        assert.equal(answer.headers['referrer-policy'], 'no-referrer');

        await page.goto(env.url + '/');
        const pat = page.getByLabel('Personal access token');
        await pat.waitFor();
        assert.equal(
            await pat.evaluate((input) => input === document.activeElement), true,
            'the token field has the focus');
        assert.equal(await pat.getAttribute('type'), 'password');
        await screenshot(page, 'sign-in');
      });
    });

test('dark: the page follows a dark system preference', async () => {
  await withEdge('dark', async (env, page) => {
    await page.emulateMedia({colorScheme: 'dark'});
    await page.goto(env.url + '/');
    await page.getByLabel('Personal access token').waitFor();
    const colours = await page.evaluate(() => {
      const luminance = (css) => {
        const [r, g, b] = css.match(/\d+/g).map(Number);
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
      };
      return {
        background: luminance(getComputedStyle(document.body).backgroundColor),
        text: luminance(getComputedStyle(document.body).color),
      };
    });
    assert.ok(colours.background < 0.2, `dark background, got luminance ${colours.background}`);
    assert.ok(colours.text > 0.8, `light text, got luminance ${colours.text}`);
    await screenshot(page, 'sign-in-dark');

    await page.emulateMedia({colorScheme: 'light'});
    const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.notEqual(light, 'rgb(17, 19, 21)', 'the light set comes back with the preference');
  });
});

test(
    'printers: pretty-printers keep every digit and the hex rows every byte, in the browser',
    async () => {
      await withEdge('printers', async (env, page) => {
        await page.goto(env.url + '/');
        const results = await page.evaluate(async () => {
          const {prettyPrint} = await import('/app/pretty.js');
          const {hexRow, hexRowCount} = await import('/app/hexdump.js');
          const text = (printed) =>
              printed.lines.map((line) => line.map((p) => p.text).join('')).join('\n');
          const bytes = new Uint8Array(256).map((_, i) => i);
          return {
            json: text(prettyPrint(
                '{"id":12345678901234567890,"n":[1e3,-0,1.50,-1.2E-7],' +
                    '"s":"\\u00e9\\"","o":{},"a":[]}',
                'application/json')),
            form: text(
                prettyPrint('a=1.50&b=%E2%82%AC+x&c=%FF', 'application/x-www-form-urlencoded')),
            xml: text(
                prettyPrint('<?xml version="1.0"?><r a="1>2"><n>1.50</n><e/></r>', 'text/xml')),
            notJson: prettyPrint('{"a":1,}', 'application/json'),
            rows: Array.from({length: hexRowCount(bytes.length)}, (_, i) => hexRow(bytes, i)),
          };
        });
        assert.equal(results.json, [
          '{',
          '  "id": 12345678901234567890,',
          '  "n": [',
          '    1e3,',
          '    -0,',
          '    1.50,',
          '    -1.2E-7',
          '  ],',
          '  "s": "\\u00e9\\"",',
          '  "o": {},',
          '  "a": []',
          '}',
        ].join('\n'));
        assert.equal(results.form, 'a = 1.50\nb = € x\nc = %FF');
        assert.equal(
            results.xml, '<?xml version="1.0"?>\n<r a="1>2">\n  <n>1.50</n>\n  <e/>\n</r>');
        assert.equal(results.notJson, null);
        const bytes = Buffer.from(Array.from({length: 256}, (_, i) => i));
        assert.deepEqual(results.rows, expectedHexRows(bytes));
      });
    });

test('curl: "copy as curl" run by a POSIX shell sends the exact request again', async () => {
  await withEdge('curl', async (env, page) => {
    const target = await env.target();
    await page.goto(env.url + '/');
    const body = binaryBody();
    // Header values with quotes, a dollar, a backslash and a byte that is not UTF-8.
    const event = {
      id: 7,
      method: 'PATCH',
      path: `/p/a%20b/it's`,
      query: `x=1&y='z'&s=$HOME\\`,
      headers: [
        ['Host', 'example.test'],
        ['X-Quote', 'it\'s "quoted" $HOME `cmd` \\ %s'],
        ['X-Raw', Buffer.from([0x61, 0xff, 0x62, 0x25]).toString('base64'), 'b64'],
        ['Content-Type', 'application/octet-stream'],
        ['X-Repeated', 'one'],
        ['X-Repeated', 'two'],
        // A header with an empty value, which curl drops unless it is written "Name;".
        ['X-Empty', ''],
        ['Content-Length', String(body.length)],
      ],
    };
    const snippet = await page.evaluate(async ({event, body, base}) => {
      const {curlCommand} = await import('/app/curl.js');
      const {base64ToBytes} = await import('/app/bytes.js');
      return curlCommand(event, base64ToBytes(body), base);
    }, {event, body: body.toString('base64'), base: `${target.url}/h/abc`});

    const workDir = fs.mkdtempSync(path.join(env.dir, 'curl-'));
    fs.writeFileSync(path.join(workDir, 'replay.sh'), snippet);
    // Not execFileSync: the target server answering curl runs in this process.
    await promisify(execFile)('sh', ['replay.sh'], {
      cwd: workDir,
      timeout: kStepMs,
      env: {PATH: process.env.PATH, no_proxy: '*', NO_PROXY: '*'},
    });

    await target.waitForCount(1);
    const got = target.requests[0];
    assert.equal(
        got.head.toString('latin1').split('\r\n')[0],
        `PATCH /h/abc/p/a%20b/it's?x=1&y='z'&s=$HOME\\ HTTP/1.1`);
    const expectedHeaders = [
      ['Host', 'example.test'],
      ['X-Quote', 'it\'s "quoted" $HOME `cmd` \\ %s'],
      ['X-Raw', Buffer.from([0x61, 0xff, 0x62, 0x25]).toString('latin1')],
      ['Content-Type', 'application/octet-stream'],
      ['X-Repeated', 'one'],
      ['X-Repeated', 'two'],
      ['X-Empty', ''],
      ['Content-Length', String(body.length)],
    ];
    assert.deepEqual(got.headers, expectedHeaders, 'every header, in order, and nothing else');
    assert.ok(got.body.equals(body), 'the body byte for byte');
  });
});

// --- Needs the session, watch, search and diagnosis routes of docs/dashboard.md --------------

test('flow: sign in, watch an event arrive, search it, read its bytes and replay it', async () => {
  await withEdge('flow', async (env, page) => {
    const {target, hookId} = await relayedHook(env);

    await signIn(page, env);
    const hookRow = page.locator(`tr[data-hook="${hookId}"]`);
    await hookRow.waitFor();
    assert.equal(await hookRow.locator('[data-relays]').textContent(), '1', 'one relay connected');
    assert.equal(await hookRow.locator('.ingest-url').textContent(), `${env.url}/h/${hookId}`);
    await hookRow.locator('svg.activity-chart').waitFor();
    await screenshot(page, 'hooks');
    // Nothing of the session is readable by the page's scripts or kept in its storage.
    const storage = await page.evaluate(() => ({
                                          cookie: document.cookie,
                                          local: localStorage.length,
                                          session: sessionStorage.length,
                                        }));
    assert.deepEqual(storage, {cookie: '', local: 0, session: 0});

    await openHook(page, 'dash');
    await waitFor(
        'the live stream',
        async () => (await page.locator('[role="status"][data-live]').getAttribute('data-live')) ===
            'live');

    // A JSON webhook and a binary one, sent while the page is open: both appear without reload.
    const json = '{"id":12345678901234567890,"amount":1.50,"ratio":1e3,"neg":-0}';
    const first = await env.ingest(
        hookId, {suffix: '/json', headers: [['Content-Type', 'application/json']], body: json});
    assert.equal(first.status, 200);
    const jsonId = JSON.parse(first.body).id;
    const binary = binaryBody();
    const second = await env.ingest(
        hookId,
        {suffix: '/binary', headers: [['Content-Type', 'application/octet-stream']], body: binary});
    const binaryId = JSON.parse(second.body).id;
    await page.locator(`.vlist-row[data-event="${binaryId}"]`).waitFor({timeout: kStepMs});
    await page.locator(`.vlist-row[data-event="${jsonId}"]`).waitFor({timeout: kStepMs});
    await target.waitForCount(2);
    // The relay's delivery reports come over the same stream.
    await page.locator(`.vlist-row[data-event="${binaryId}"] .delivery-ok`).waitFor({
      timeout: kStepMs
    });
    await screenshot(page, 'events');

    // Search for the binary one.
    await page.keyboard.press('/');
    await page.keyboard.type(kPathQuery('/binary'));
    await page.keyboard.press('Enter');
    await page.locator(`.vlist-row[data-event="${binaryId}"]`).waitFor();
    assert.equal(await page.locator(`.vlist-row[data-event="${jsonId}"]`).count(), 0);

    // Open it; a binary body opens as hex, every byte in its row.
    await page.locator(`.vlist-row[data-event="${binaryId}"]`).click();
    await page.getByRole('heading', {name: `Event ${binaryId}`}).waitFor();
    await page.locator('.hex-grid').waitFor();
    const shown = await hexRowsShown(page);
    const expected = expectedHexRows(binary);
    assert.equal(shown.length, expected.length, 'every row of a 300-byte body is in view');
    for (const row of shown) {
      assert.deepEqual(
          row.cells,
          [expected[row.index].offset, expected[row.index].hex, expected[row.index].ascii],
          `hex row ${row.index}`);
    }
    await screenshot(page, 'event-hex');

    // Replay it as it was: the copy reaches the target with the same bytes. The request is
    // one another site could make a browser send, but not with the CSRF header.
    const replayRequest =
        page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/replay'));
    await page.getByRole('button', {name: 'Replay', exact: true}).click();
    assert.equal((await replayRequest).headers()['x-anonymily-csrf'], '1');
    const replayLink = page.locator('.action-result a[data-replay]');
    await replayLink.waitFor();
    const replayId = Number(await replayLink.getAttribute('data-replay'));
    await target.waitForCount(3);
    assert.ok(target.requests[2].body.equals(binary), 'the replay carries the same bytes');
    await replayLink.click();
    await page.getByRole('heading', {name: `Event ${replayId}`}).waitFor();
    assert.equal(
        await page.locator('a[data-original]').getAttribute('data-original'), String(binaryId),
        'the replay links to its original');

    // The JSON one, pretty-printed without changing a digit.
    await page.goto(`${env.url}/#/hooks/${hookId}/events/${jsonId}`);
    const pretty = page.locator('.pretty-body');
    await pretty.waitFor();
    const text = await pretty.textContent();
    for (const token of ['12345678901234567890', '1.50', '1e3', '-0']) {
      assert.ok(text.includes(token), token);
    }
    await screenshot(page, 'event-json');
    await page.getByRole('tab', {name: /Headers/}).click();
    await screenshot(page, 'event-headers');
  });
});

test('query-error: a query the edge cannot read is shown with the bad span marked', async () => {
  await withEdge('query-error', async (env, page) => {
    const {hookId} = await relayedHook(env);
    const token = await env.accessToken();
    const refusal = await request(
        env.port, 'GET',
        `/api/v1/hooks/${hookId}/events?order=desc&q=${encodeURIComponent(kBrokenQuery)}`, '',
        [['Authorization', `Bearer ${token}`]]);
    assert.equal(refusal.status, 400);
    const {position, length} = JSON.parse(refusal.body);

    await signIn(page, env);
    await page.goto(`${env.url}/#/hooks/${hookId}?q=${encodeURIComponent(kBrokenQuery)}`);
    const mark = page.locator('#search-error mark.query-bad');
    await mark.waitFor();
    const bad = kBrokenQuery.slice(position, position + length) || ' ';
    assert.equal(await mark.textContent(), bad);
    assert.equal(await page.locator('#search').getAttribute('aria-invalid'), 'true');
    await screenshot(page, 'search-error');

    // Before the fault, characters of two, three and four UTF-8 bytes, one of them two UTF-16
    // units: the edge's byte offset is shown as the reader counts, in code points.
    const wide = kWideBrokenQuery;
    const wideRefusal = await request(
        env.port, 'GET', `/api/v1/hooks/${hookId}/events?order=desc&q=${encodeURIComponent(wide)}`,
        '', [['Authorization', `Bearer ${token}`]]);
    const wideError = JSON.parse(wideRefusal.body);
    const before = Buffer.from(wide).subarray(0, wideError.position).toString();
    const marked = Buffer.from(wide)
                       .subarray(wideError.position, wideError.position + wideError.length)
                       .toString();
    await page.goto(`${env.url}/#/hooks/${hookId}?q=${encodeURIComponent(wide)}`);
    await page.locator('#search-error mark.query-bad', {hasText: marked}).waitFor();
    assert.equal(await page.locator('#search-error mark.query-bad').textContent(), marked);
    assert.match(
        await page.locator('#search-error .error').textContent(),
        new RegExp(`\\(at character ${[...before].length + 1}\\)$`));
    await screenshot(page, 'search-error-wide');
  });
});

test('refused: a target that is not listening is diagnosed as such', async () => {
  await withEdge('refused', async (env, page) => {
    env.login();
    const {hookId} = await env.relay('dash', `http://127.0.0.1:${await closedPort()}`);
    const sent = await env.ingest(
        hookId, {body: '{"a":1}', headers: [['Content-Type', 'application/json']]});
    const eventId = JSON.parse(sent.body).id;

    await signIn(page, env);
    await page.goto(`${env.url}/#/hooks/${hookId}/events/${eventId}`);
    await waitFor('the failed delivery', async () => {
      await page.reload();
      await page.getByRole('tab', {name: /Deliveries/}).waitFor();
      return (await page.getByRole('tab', {name: /Deliveries \(0\)/}).count()) === 0;
    });
    await page.getByRole('tab', {name: /Diagnosis/}).click();
    const finding = page.locator(`.finding[data-code="${kDiagnosisRefused}"]`);
    await finding.waitFor();
    assert.equal(
        await finding.locator('a.finding-code').getAttribute('href'),
        `/diagnosis/${kDiagnosisRefused}`);
    // Its time as a date a reader can take in, not milliseconds since 1970, and its evidence.
    const at = finding.locator('time');
    assert.equal(await at.count(), 1, 'the time of the finding');
    assert.match(await at.getAttribute('datetime'), /^\d{4}-\d\d-\d\dT/);
    assert.doesNotMatch(await at.textContent(), /^\d+$/);
    const evidence = await finding.locator('dl.evidence dt').allTextContents();
    assert.ok(evidence.includes('relay'), `evidence shown: ${evidence.join(', ')}`);
    await screenshot(page, 'diagnosis-refused');
  });
});

test(
    'unauthorized: a handler that answers 401 to a correctly signed webhook is diagnosed as such',
    async () => {
      await withEdge('unauthorized', async (env, page) => {
        env.login();
        const target = await env.target(() => ({status: 401, body: 'signature mismatch'}));
        const {hookId, signingSecret} =
            await env.relay('signed', target.url, ['--standard-webhooks']);
        assert.match(signingSecret, /^whsec_/);
        const body = '{"type":"invoice.paid"}';
        const sent = await env.ingest(hookId, {
          body,
          headers: [
            ['Content-Type', 'application/json'],
            ...standardWebhooksHeaders(signingSecret, 'msg_1', body)
          ],
        });
        assert.equal(sent.status, 200, 'the edge verified the signature');
        const eventId = JSON.parse(sent.body).id;
        await target.waitForCount(1);

        await signIn(page, env);
        await page.goto(`${env.url}/#/hooks/${hookId}/events/${eventId}`);
        await page.locator('.facts .verdict-valid').waitFor();
        await page.getByRole('tab', {name: /Deliveries/}).click();
        await page.locator('.deliveries .delivery-failed', {hasText: '401'}).waitFor();
        assert.match(
            await page.locator('.deliveries .excerpt').textContent(), /signature mismatch/);
        await page.getByRole('tab', {name: /Diagnosis/}).click();
        await page.locator(`.finding[data-code="${kDiagnosisUnauthorized}"]`).waitFor();
        await screenshot(page, 'diagnosis-unauthorized');
      });
    });

test('dark-views: the signed-in views follow a dark system preference', async () => {
  await withEdge('dark-views', async (env, page) => {
    const {hookId} = await relayedHook(env);
    const sent = await env.ingest(hookId, {
      suffix: '/dark',
      body: '{"dark":true,"n":1.50}',
      headers: [['Content-Type', 'application/json']]
    });
    const eventId = JSON.parse(sent.body).id;

    await signIn(page, env);
    await screenshot(page, 'hooks-dark');
    await openHook(page, 'dash');
    await page.locator(`.vlist-row[data-event="${eventId}"]`).waitFor();
    const grid = await page.locator('.vlist').evaluate(
        (element) => getComputedStyle(element).backgroundColor);
    assert.equal(grid, 'rgb(26, 29, 32)', 'the list is drawn on the dark surface');
    await screenshot(page, 'events-dark');
    await page.locator(`.vlist-row[data-event="${eventId}"]`).click();
    await page.locator('.pretty-body').waitFor();
    await screenshot(page, 'event-dark');
  }, {colorScheme: 'dark'});
});

test('renew: the page renews its session before it expires and stays signed in', async () => {
  // The shortest access token an edge issues: the page renews it a minute early, so at once.
  await withEdge('renew', async (env, page, context) => {
    await signIn(page, env);
    const first = (await context.cookies(env.url)).find((cookie) => cookie.name === 'anm_session');
    const renewal = await page.waitForResponse(
        (r) => r.url().endsWith('/api/v1/auth/session/renew'), {timeout: 30_000});
    assert.equal(renewal.status(), 200);
    assert.equal(renewal.request().headers()['x-anonymily-csrf'], '1');
    const second = (await context.cookies(env.url)).find((cookie) => cookie.name === 'anm_session');
    assert.notEqual(second.value, first.value, 'a new access token in the cookie');
    await page.getByRole('link', {name: 'Hooks', exact: true}).first().click();
    await page.getByRole('heading', {name: 'Hooks'}).waitFor();
    assert.equal(await page.getByLabel('Personal access token').count(), 0, 'still signed in');
  }, {settings: {'auth.jwt_ttl_s': 60}});
});

test('keyboard: the keyboard alone reaches a hook, an event, its tabs and back', async () => {
  await withEdge('keyboard', async (env, page) => {
    const {hookId} = await relayedHook(env);
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const sent = await env.ingest(
          hookId,
          {suffix: `/k${i}`, body: `{"n":${i}}`, headers: [['Content-Type', 'application/json']]});
      ids.push(JSON.parse(sent.body).id);
    }

    await page.goto(env.url + '/');
    // The form takes the focus once the page knows there is no session.
    await waitFor(
        'the focused token field', () => page.evaluate(() => document.activeElement.id === 'pat'));
    await page.keyboard.type(env.ownerPat);
    await page.keyboard.press('Enter');
    await signedIn(page);
    // The hooks load after the heading shows; a Tab pressed before would leave the page.
    await page.getByRole('link', {name: 'dash', exact: true}).waitFor();

    // Tab to the hook's link; every stop on the way shows where the focus is.
    let reached = false;
    for (let i = 0; i < 20 && !reached; i++) {
      await page.keyboard.press('Tab');
      const focus = await page.evaluate(() => {
        const element = document.activeElement;
        const style = getComputedStyle(element);
        return {text: element.textContent, outline: style.outlineStyle, width: style.outlineWidth};
      });
      assert.notEqual(focus.outline, 'none', `visible focus on "${focus.text}"`);
      reached = focus.text === 'dash';
    }
    assert.ok(reached, 'the hook link is in the tab order');
    await page.keyboard.press('Enter');
    const grid = page.getByRole('grid', {name: 'Events'});
    await grid.waitFor();
    await page.locator(`.vlist-row[data-event="${ids[2]}"]`).waitFor();

    // j moves into the list (newest first), j again to the second row, Enter opens it.
    await page.keyboard.press('j');
    await page.keyboard.press('j');
    assert.equal(await grid.evaluate((g) => g === document.activeElement), true);
    assert.equal(await grid.getAttribute('aria-activedescendant'), 'event-row-1');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', {name: `Event ${ids[1]}`}).waitFor();

    // Tabs by arrows.
    await page.getByRole('tab', {name: /Body/}).focus();
    await page.keyboard.press('ArrowRight');
    assert.equal(
        await page.getByRole('tab', {name: /Headers/}).getAttribute('aria-selected'), 'true');
    await screenshot(page, 'keyboard-event');

    // Esc goes back to the list, to the same row; / searches; Esc twice goes to the hooks.
    await page.keyboard.press('Escape');
    await grid.waitFor();
    assert.equal(await grid.getAttribute('aria-activedescendant'), 'event-row-1');
    await page.keyboard.press('/');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'search');
    await page.keyboard.press('Escape');
    await page.keyboard.press('Escape');
    await page.getByRole('heading', {name: 'Hooks'}).waitFor();
  });
});

test('many: a hook with 100 000 events scrolls without the document growing', async () => {
  await withEdge('many', async (env, page) => {
    const hookId = await quietHook(env, 'many');

    // Seeded through ingest, 32 requests at a time.
    const ids = await ingestMany(
        env, hookId, 100_000, 32, (n) => ({suffix: `/e${n}`, body: `{"n":${n}}`}));
    const firstId = ids.reduce((a, b) => Math.min(a, b));
    const lastId = ids.reduce((a, b) => Math.max(a, b));

    await signIn(page, env);
    await openHook(page, 'many');
    const status = page.locator('[role="status"][data-live]');
    await waitFor(
        'the count', async () => (await status.textContent()).startsWith('100000 events'), 60_000);
    await page.locator(`.vlist-row[data-event="${lastId}"]`).waitFor({timeout: 60_000});
    const rowsAtTop = await page.locator('.vlist-row').count();
    assert.ok(rowsAtTop < 80, `rows in the document at the top: ${rowsAtTop}`);
    await screenshot(page, 'many-top');

    // To the end: the rows there load page by page while the document stays the same size.
    const viewport = page.locator('.vlist-viewport');
    await viewport.evaluate((v) => {
      v.scrollTop = v.scrollHeight;
    });
    let most = 0;
    await waitFor('the oldest event at the end of the list', async () => {
      most = Math.max(most, await page.locator('.vlist-row').count());
      return (await page.locator(`.vlist-row[data-event="${firstId}"]`).count()) === 1;
    }, 120_000);
    assert.ok(most < 80, `rows in the document at most: ${most}`);
    const nodes = await page.evaluate(() => document.getElementsByTagName('*').length);
    assert.ok(nodes < 2000, `elements in the document: ${nodes}`);
    await screenshot(page, 'many-end');
  }, {settings: kNoRateLimits});
});

test('huge: a list taller than a browser can draw still reaches every row', async () => {
  await withEdge('huge', async (env, page) => {
    await page.goto(`${env.url}/`);
    await page.getByLabel('Personal access token').waitFor();

    // The events view's list on its own, with more rows than any element may be tall.
    const rows = 3_000_000;
    const spacer = await page.evaluate(async (count) => {
      const {VirtualList, kMaxSpacerPx} = await import('/app/virtual_list.js');
      const list = new VirtualList({
        label: 'huge',
        columns: ['row'],
        idPrefix: 'huge',
        renderRow: (index, cells) => {
          cells[0].textContent = String(index);
        },
        onOpen: () => {},
      });
      document.getElementById('main').replaceChildren(list.element);
      list.setCount(count);
      list.element.focus();
      const height = list.viewport.scrollHeight;
      return {height, limit: kMaxSpacerPx};
    }, rows);
    assert.ok(spacer.height <= spacer.limit, `spacer of ${spacer.height} px`);

    // The row the keyboard makes active is drawn and inside the viewport, at both ends and on
    // the way.
    const activeRow = () => page.evaluate(() => {
      const grid = document.querySelector('.vlist');
      const row = document.getElementById(grid.getAttribute('aria-activedescendant'));
      const view = grid.querySelector('.vlist-viewport').getBoundingClientRect();
      const box = row.getBoundingClientRect();
      return {
        text: row.textContent,
        inside: box.top >= view.top - 0.5 && box.bottom <= view.bottom + 0.5
      };
    });
    await page.keyboard.press('End');
    assert.deepEqual(await activeRow(), {text: String(rows - 1), inside: true});
    for (let i = 0; i < 3; i++) await page.keyboard.press('PageUp');
    const up = await activeRow();
    assert.ok(up.inside, 'the row after PageUp is in view');
    assert.ok(Number(up.text) < rows - 3 && Number(up.text) > rows - 200, up.text);
    await page.keyboard.press('ArrowUp');
    assert.deepEqual(await activeRow(), {text: String(Number(up.text) - 1), inside: true});
    await page.keyboard.press('Home');
    assert.deepEqual(await activeRow(), {text: '0', inside: true});

    // Scrolled half way, the rows drawn are those half way down the list.
    const middle = await page.evaluate(async () => {
      const view = document.querySelector('.vlist-viewport');
      view.scrollTop = (view.scrollHeight - view.clientHeight) / 2;
      await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
      const drawn = [...document.querySelectorAll('.vlist-row')].map((row) => Number(row.textContent));
      const box = view.getBoundingClientRect();
      const seen = [...document.querySelectorAll('.vlist-row')].filter((row) => {
        const r = row.getBoundingClientRect();
        return r.bottom > box.top && r.top < box.bottom;
      });
      return {drawn: drawn.length, first: Number(seen[0].textContent)};
    });
    assert.ok(middle.drawn < 80, `rows drawn: ${middle.drawn}`);
    assert.ok(Math.abs(middle.first - rows / 2) < 100, `first row in view: ${middle.first}`);
  });
});

test('edited: an edited replay is marked, warned about and linked to its original', async () => {
  await withEdge('edited', async (env, page) => {
    const {target, hookId} = await relayedHook(env);
    const sent = await env.ingest(
        hookId,
        {suffix: '/orig', body: '{"n":1}', headers: [['Content-Type', 'application/json']]});
    const originalId = JSON.parse(sent.body).id;
    await target.waitForCount(1);

    await signIn(page, env);
    await page.goto(`${env.url}/#/hooks/${hookId}/events/${originalId}`);
    await page.getByRole('button', {name: 'Edit and replay…'}).click();
    const dialog = page.getByRole('dialog', {name: /Edit and replay/});
    await dialog.waitFor();
    assert.match(await dialog.locator('.warning').textContent(), /signature/);
    await dialog.getByLabel('Path after the hook').fill('/edited');
    await dialog.getByLabel('Body').fill('{"n":22}');
    const headers = dialog.getByLabel(/Headers/);
    assert.match(await headers.inputValue(), /^Content-Length: 8$/m, 'the length follows the body');
    await headers.fill((await headers.inputValue()) + '\nX-Edited: yes');
    assert.equal(await dialog.locator('.badge-modified').isVisible(), true, 'marked as modified');
    await screenshot(page, 'edit-replay');
    await dialog.getByRole('button', {name: 'Replay edited copy'}).click();

    const link = page.locator('.action-result a[data-replay]');
    await link.waitFor();
    await target.waitForCount(2);
    const edited = target.requests[1];
    assert.equal(edited.body.toString(), '{"n":22}');
    assert.ok(edited.target.endsWith('/edited'), edited.target);
    assert.deepEqual(edited.headers.find(([name]) => name === 'X-Edited'), ['X-Edited', 'yes']);
    const copyId = await link.getAttribute('data-replay');
    await link.click();
    await page.getByRole('heading', {name: `Event ${copyId}`}).waitFor();
    await page.locator('.facts .badge-modified').waitFor();
    assert.equal(await page.locator('.facts .verdict').textContent(), 'unsigned');
    await page.goto(`${env.url}/#/hooks/${hookId}/events/${originalId}`);
    await page.locator(`.facts a[data-replay="${copyId}"]`).waitFor();
  });
});

test(
    'bulk: a bulk replay shows its count first, then its progress, and can be cancelled',
    async () => {
      await withEdge('bulk', async (env, page) => {
        const {target, hookId} = await relayedHook(env);
        const count = 3000;
        await ingestMany(env, hookId, count, 16, (n) => ({suffix: '/bulk', body: `{"n":${n}}`}));

        await signIn(page, env);
        await page.goto(
            `${env.url}/#/hooks/${hookId}?q=${encodeURIComponent(kPathQuery('/bulk'))}`);
        await page.getByRole('button', {name: 'Replay matching…'}).click();
        const ask = page.locator('dialog[data-dialog="bulk-replay"]');
        await waitFor(
            'the dry-run count',
            async () => (await ask.locator('[role="status"]').getAttribute('data-count')) ===
                String(count));
        await screenshot(page, 'bulk-count');
        await ask.getByRole('button', {name: 'Replay them'}).click();

        const job = page.locator('dialog[data-dialog="replay-job"]');
        await job.waitFor();
        await job.getByRole('button', {name: 'Cancel the job'}).click();
        await waitFor(
            'the job to stop',
            async () => ['cancelled', 'done'].includes(
                await job.locator('[role="status"]').getAttribute('data-state')));
        assert.equal(await job.locator('[role="status"]').getAttribute('data-state'), 'cancelled');
        const value = Number(await job.locator('progress').getAttribute('value'));
        assert.ok(value < count, `stopped after ${value} of ${count}`);
        await screenshot(page, 'bulk-cancelled');
      }, {settings: kNoRateLimits});
    });

test('over-limit: a bulk replay of more events than a job takes cannot start', async () => {
  await withEdge('over-limit', async (env, page) => {
    const hookId = await quietHook(env, 'over');
    // One more than the 10 000 events a job replays at most (docs/dashboard.md).
    await ingestMany(env, hookId, 10_001, 16, () => ({suffix: '/over', body: '{}'}));

    await signIn(page, env);
    await page.goto(`${env.url}/#/hooks/${hookId}?q=${encodeURIComponent(kPathQuery('/over'))}`);
    await page.getByRole('button', {name: 'Replay matching…'}).click();
    const ask = page.locator('dialog[data-dialog="bulk-replay"]');
    const status = ask.locator('[role="status"][data-count]');
    await status.waitFor({timeout: 60_000});
    assert.equal(await status.getAttribute('data-over-limit'), 'true');
    assert.match(await status.textContent(), /^More than 10000 events match/);
    const confirm = ask.getByRole('button', {name: 'Replay them'});
    assert.equal(await confirm.isDisabled(), true, 'the job cannot be started');
    await screenshot(page, 'bulk-over-limit');
  }, {settings: kNoRateLimits});
});

test('issues: issues group failures, resolve, reopen and replay them', async () => {
  await withEdge('issues', async (env, page) => {
    const {target, hookId} = await relayedHook(env, () => ({status: 502, body: 'bad gateway'}));
    for (let i = 0; i < 3; i++) await env.ingest(hookId, {body: `{"n":${i}}`});
    await target.waitForCount(3);

    await signIn(page, env);
    await page.goto(`${env.url}/#/hooks/${hookId}/issues`);
    const row = page.locator('tr[data-issue$=":502"]');
    await waitFor('the issue', async () => {
      if (await row.count() === 1) return true;
      await page.reload();
      return false;
    });
    assert.match(await row.textContent(), /3/);
    await screenshot(page, 'issues');

    await row.getByRole('button', {name: 'Resolve'}).click();
    await waitFor('the issue to leave the open list', async () => (await row.count()) === 0);
    await page.getByLabel('resolved').check();
    await row.getByRole('button', {name: 'Reopen'}).click();
    await page.getByLabel('open', {exact: true}).check();
    await row.waitFor();
    assert.equal(await row.locator('.issue-state').textContent(), 'open');

    // Resolved, then failing again: open as "reopened", not as an issue nobody looked at.
    await row.getByRole('button', {name: 'Resolve'}).click();
    await waitFor('the issue to leave the open list', async () => (await row.count()) === 0);
    await env.ingest(hookId, {body: '{"n":3}'});
    await target.waitForCount(4);
    await waitFor('the reopened issue', async () => {
      if (await row.count() === 1) return true;
      await page.reload();
      return false;
    });
    assert.equal(await row.locator('.issue-state').textContent(), 'reopened');
    await screenshot(page, 'issues-reopened');

    await row.getByRole('button', {name: 'Replay all'}).click();
    const job = page.locator('dialog[data-dialog="replay-job"]');
    await waitFor(
        'the issue replay',
        async () => (await job.locator('[role="status"]').getAttribute('data-state')) === 'done');
    await target.waitForCount(8);
  });
});

test('line-ends: an edited replay keeps the CRLF line ends and the byte order mark', async () => {
  await withEdge('line-ends', async (env, page) => {
    const {target, hookId} = await relayedHook(env);
    const original = Buffer.from('\ufeffline 1\r\nline 2\r\n');
    const sent = await env.ingest(
        hookId, {body: original, headers: [['Content-Type', 'text/plain; charset=utf-8']]});
    const eventId = JSON.parse(sent.body).id;
    await target.waitForCount(1);

    await signIn(page, env);
    await page.goto(`${env.url}/#/hooks/${hookId}/events/${eventId}`);
    const dialog = page.getByRole('dialog', {name: /Edit and replay/});
    const replayEdited = async () => {
      await dialog.getByRole('button', {name: 'Replay edited copy'}).click();
      await dialog.waitFor({state: 'detached'});
    };

    // Only the path edited: the body goes as it came, though the textarea shows LF.
    await page.getByRole('button', {name: 'Edit and replay…'}).click();
    await dialog.getByLabel('Path after the hook').fill('/path-only');
    await replayEdited();
    await target.waitForCount(2);
    assert.deepEqual(
        [...target.requests[1].body], [...original], 'the body of a copy with its path edited');

    // The body edited: its line ends and its byte order mark as the original had them.
    await page.getByRole('button', {name: 'Edit and replay…'}).click();
    const body = dialog.getByLabel('Body');
    assert.match(await dialog.locator('#edit-body-help').textContent(), /byte order mark/);
    await body.fill((await body.inputValue()) + 'line 3\n');
    const edited = Buffer.from('\ufeffline 1\r\nline 2\r\nline 3\r\n');
    assert.match(
        await dialog.getByLabel(/Headers/).inputValue(),
        new RegExp(`^Content-Length: ${edited.length}$`, 'm'));
    await screenshot(page, 'edit-replay-line-ends');
    await replayEdited();
    await target.waitForCount(3);
    assert.deepEqual([...target.requests[2].body], [...edited], 'the edited body');
  });
});

test('live-count: the count of events follows live events on a hook without a relay', async () => {
  await withEdge('live-count', async (env, page) => {
    const hookId = await quietHook(env, 'quiet');
    await env.ingest(hookId, {body: '{"n":0}'});

    await signIn(page, env);
    await openHook(page, 'quiet');
    const status = page.locator('[role="status"][data-live="live"]');
    await status.waitFor();
    assert.match(await status.textContent(), /^1 event ·/);

    // No delivery report follows these: only their arrival can change the count.
    const ids = [];
    for (let n = 1; n <= 2; n++) {
      ids.push(JSON.parse((await env.ingest(hookId, {body: `{"n":${n}}`})).body).id);
    }
    await waitFor('the count of three', async () => /^3 events ·/.test(await status.textContent()));
    await page.locator(`.vlist-row[data-event="${ids[1]}"]`).waitFor();
    await page.locator(`.vlist-row[data-event="${ids[0]}"]`).waitFor();
  });
});

test('contents: webhook text cannot reorder, hide or widen what the page shows', async () => {
  await withEdge('contents', async (env, page) => {
    const {hookId} = await relayedHook(env);
    // A right-to-left override in a header, another and a C1 control in a body that starts with
    // a byte order mark, and a path far longer than the window is wide (paths are ASCII:
    // docs/protocol.md). The header goes out as its UTF-8 bytes.
    const longPath = `/invoice-${'segment'.repeat(60)}`;
    const sent = await env.ingest(hookId, {
      suffix: longPath,
      headers: [
        ['Content-Type', 'application/json'],
        ['X-Name', Buffer.from('abc\u202Edef').toString('latin1')],
      ],
      body: '\ufeff{"name":"a\u202Eb\u0085c"}',
    });
    assert.equal(sent.status, 200, sent.body.toString());
    const eventId = JSON.parse(sent.body).id;

    // Long values wrap in their place: nothing pushes the page wider than the window.
    const pageFits = async (what) => {
      const widths = await page.evaluate(
          () => ({page: document.documentElement.scrollWidth, window: window.innerWidth}));
      assert.ok(widths.page <= widths.window, `${what}: ${widths.page} px in ${widths.window} px`);
    };
    await signIn(page, env);
    await page.setViewportSize({width: 560, height: 860});
    await page.getByRole('link', {name: 'dash', exact: true}).waitFor();
    await pageFits('hooks');
    await openHook(page, 'dash');
    const row = page.locator(`.vlist-row[data-event="${eventId}"]`);
    await row.waitFor();
    await row.click();
    const request = page.locator('.facts dd', {hasText: 'POST /invoice-'});
    await request.waitFor();
    assert.equal(await request.textContent(), `POST ${longPath}`);
    // The escapes are the only characters of the page that stand for the webhook's ones.
    const shown = await page.locator('#main').textContent();
    assert.doesNotMatch(shown, /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C\u0080-\u009F\uFEFF]/);
    assert.equal(
        await request.locator('code').evaluate((code) => getComputedStyle(code).unicodeBidi),
        'isolate');
    await pageFits('the event with its long path');

    // The body, pretty and raw, keeps its byte order mark and marks the controls.
    const pretty = page.locator('.pretty-body');
    await pretty.waitFor();
    assert.ok((await pretty.textContent()).startsWith('\\uFEFF{'), await pretty.textContent());
    await page.getByRole('radio', {name: 'Raw'}).check();
    assert.equal(
        await page.locator('.raw-body').textContent(), '\\uFEFF{"name":"a\\u202Eb\\u0085c"}');
    await screenshot(page, 'contents-raw');

    await page.getByRole('tab', {name: /Headers/}).click();
    const header = page.locator('.headers tr', {hasText: 'X-Name'});
    assert.equal(await header.locator('code').textContent(), 'abc\\u202Edef');
    await pageFits('the headers');
    await screenshot(page, 'contents-headers');
  });
});

test('tab-keys: ← and → switch an event\'s tabs from outside the tab bar', async () => {
  await withEdge('tab-keys', async (env, page) => {
    const {hookId} = await relayedHook(env);
    const sent = await env.ingest(
        hookId, {body: '{"n":1}', headers: [['Content-Type', 'application/json']]});
    const eventId = JSON.parse(sent.body).id;

    await signIn(page, env);
    await page.goto(`${env.url}/#/hooks/${hookId}/events/${eventId}`);
    const selected = page.locator('[role="tab"][aria-selected="true"]');
    await selected.waitFor();
    const first = await selected.textContent();

    // The focus on the body's text, away from the tab bar.
    await page.locator('.pretty-body').focus();
    await page.keyboard.press('ArrowRight');
    const second = await selected.textContent();
    assert.notEqual(second, first, 'ArrowRight chose the next tab');
    assert.equal(await selected.evaluate((tab) => tab === document.activeElement), true);
    await page.locator('#main').focus();
    await page.keyboard.press('ArrowLeft');
    assert.equal(await selected.textContent(), first, 'ArrowLeft came back');

    // On the body's radio buttons the arrows choose among them and leave the tabs alone.
    await page.getByRole('radio', {name: 'Raw'}).check();
    await page.getByRole('radio', {name: 'Raw'}).press('ArrowRight');
    assert.equal(
        await page.getByRole('radio', {name: 'Hex'}).isChecked(), true, 'ArrowRight chose Hex');
    assert.equal(await selected.textContent(), first, 'the tab stayed');
  });
});

test('signout: sign out ends the session, and a reload asks to sign in again', async () => {
  await withEdge('signout', async (env, page, context) => {
    await signIn(page, env);
    const cookies = await context.cookies(env.url);
    const session = cookies.find((cookie) => cookie.name === 'anm_session');
    assert.ok(session, 'the session cookie is set');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');

    await page.reload();
    await page.getByRole('heading', {name: 'Hooks'}).waitFor();
    await page.getByRole('button', {name: 'Sign out'}).click();
    await page.getByLabel('Personal access token').waitFor();
    assert.equal(
        (await context.cookies(env.url)).some((cookie) => cookie.name === 'anm_session'), false);
    await page.reload();
    await page.getByLabel('Personal access token').waitFor();
  });
});

test('explain: the Explain button goes away when the edge has no model', async () => {
  await withEdge('explain', async (env, page) => {
    const {hookId} = await relayedHook(env);
    const sent = await env.ingest(hookId, {body: 'x'});
    const eventId = JSON.parse(sent.body).id;

    await signIn(page, env);
    await page.goto(`${env.url}/#/hooks/${hookId}/events/${eventId}`);
    await page.getByRole('button', {name: 'Explain'}).click();
    await page.locator('.explanation', {hasText: 'off on this edge'}).waitFor();
    assert.equal(await page.getByRole('button', {name: 'Explain'}).count(), 0);
  });
});

test('explain-model: the explanation of a model the operator chose is shown part by part', async () => {
  // A stand-in for an OpenAI-compatible endpoint, on loopback, answering every completion alike.
  const answer = {
    summary: 'Nothing listened on the relay\'s target.',
    cause: 'The local server was not running.',
    evidence: ['connection refused', '<b>not markup</b>'],
    fix: 'Start the local server, then replay.',
    confidence: 0.75
  };
  const model = await new TargetServer(() => ({
                  status: 200,
                  body: JSON.stringify(
                      {choices: [{message: {role: 'assistant', content: JSON.stringify(answer)}}]})
                })).start();
  try {
    await withEdge('explain-model', async (env, page) => {
      const {hookId} = await relayedHook(env);
      const sent = await env.ingest(hookId, {body: '{"card":"BODYMARKER-42"}'});
      const eventId = JSON.parse(sent.body).id;

      await signIn(page, env);
      await page.goto(`${env.url}/#/hooks/${hookId}/events/${eventId}`);
      await page.getByRole('button', {name: 'Explain'}).click();
      const explanation = page.locator('.explanation');
      await explanation.locator('[data-part="cause"]', {hasText: answer.cause}).waitFor();
      assert.equal(await explanation.locator('[data-part="summary"]').textContent(), answer.summary);
      assert.equal(await explanation.locator('[data-part="fix"]').textContent(), answer.fix);
      assert.equal(await explanation.locator('[data-part="confidence"]').textContent(), '75 %');
      assert.deepEqual(
          await explanation.locator('[data-part="evidence"] li').allTextContents(), answer.evidence);
      assert.equal(await explanation.locator('b').count(), 0, 'model text was read as markup');
      await screenshot(page, 'explanation');

      // The edge asked the model once, at its chat completions route, and never sent the body.
      assert.equal(model.requests.length, 1);
      assert.equal(model.requests[0].target, '/v1/chat/completions');
      assert.equal(model.requests[0].body.includes('BODYMARKER-42'), false);
    }, {settings: {'explain.url': `${model.url}/v1`}});
  } finally {
    await model.close();
  }
});
