// core/dashboard/web/app/hooks_view.js: the account's hooks, with their ingest URL, relays and last
// hour.
// SPDX-License-Identifier: Apache-2.0

import {api, ApiError, hookPath} from './api.js';
import {activityChart} from './chart.js';
import {copyText} from './clipboard.js';
import {el, replaceChildren} from './dom.js';
import {ago, dateTime} from './format.js';

// Relays come and go; the counts are read again this often while the list is open.
const kRefreshMs = 15_000;

export function hooksView(main) {
  const status = el('p', {class: 'status', role: 'status'}, 'Loading hooks…');
  const body = el('tbody');
  const table = el(
      'table', {class: 'hooks'}, el('caption', {class: 'visually-hidden'}, 'Hooks of the account'),
      el('thead', {},
         el('tr', {},
            ['Hook', 'Provider', 'Ingest URL', 'Relays', 'Last event', 'Last hour'].map(
                (heading) => el('th', {scope: 'col'}, heading)))),
      body);
  // On a narrow window the table scrolls in its own box rather than widening the page.
  main.append(el('h1', {}, 'Hooks'), status, el('div', {class: 'table-scroll'}, table));

  let stopped = false;
  let timer = 0;

  async function load() {
    try {
      const {hooks} = await api('GET', '/api/v1/hooks');
      if (stopped) return;
      status.textContent = hooks.length === 0 ?
          'No hooks yet. Create one with `anonymily relay --hook NAME`.' :
          `${hooks.length} ${hooks.length === 1 ? 'hook' : 'hooks'}`;
      const activities = await Promise.all(hooks.map((hook) => activityOf(hook.id)));
      if (stopped) return;
      // A refresh must not take the keyboard's place away: the control that had the focus
      // gets it back in the new rows.
      const focusKey = body.contains(document.activeElement) ?
          document.activeElement.getAttribute('data-focus-key') :
          null;
      replaceChildren(body, hooks.map((hook, i) => hookRow(hook, activities[i])));
      if (focusKey) {
        const again = [...body.querySelectorAll('[data-focus-key]')].find(
            (element) => element.getAttribute('data-focus-key') === focusKey);
        if (again) again.focus();
      }
    } catch (error) {
      if (!stopped) status.textContent = `Could not load the hooks: ${error.message}`;
    }
    if (!stopped) timer = setTimeout(load, kRefreshMs);
  }

  load();
  return {
    destroy() {
      stopped = true;
      clearTimeout(timer);
    },
    back: null,
  };
}

/** The hook's last hour, or null when the edge cannot say. */
async function activityOf(hookId) {
  try {
    return await api('GET', hookPath(hookId, 'activity') + '?minutes=60');
  } catch (error) {
    if (error instanceof ApiError) return null;
    throw error;
  }
}

function hookRow(hook, activity) {
  const name = hook.name || `anonymous ${hook.id.slice(0, 8)}…`;
  const hookHash = `#/hooks/${encodeURIComponent(hook.id)}`;
  const url = el('code', {class: 'ingest-url'}, hook.ingest_url);
  const copy = el('button', {
    type: 'button',
    class: 'quiet copy',
    'aria-label': `Copy the ingest URL of ${name}`,
    'data-focus-key': `${hook.id} copy`,
    on: {click: () => copyText(hook.ingest_url, url)},
  });
  copy.textContent = 'Copy';

  let lastEvent = 'never';
  if (hook.last_event_at_ms) {
    const at = hook.last_event_at_ms;
    lastEvent = el('time', {datetime: new Date(at).toISOString(), title: dateTime(at)}, ago(at));
  }
  const provider = hook.provider || (hook.standard_webhooks ? 'Standard Webhooks' : 'none');
  const chart = activity ? activityChart(activity) : el('span', {class: 'hint'}, 'no data');
  const links = [
    el('a', {href: hookHash, class: 'hook-name', 'data-focus-key': `${hook.id} events`}, name),
    ' ',
    el('a',
       {href: `${hookHash}/issues`, class: 'quiet-link', 'data-focus-key': `${hook.id} issues`},
       'issues'),
  ];
  return el(
      'tr', {'data-hook': hook.id}, el('th', {scope: 'row'}, links), el('td', {}, provider),
      el('td', {class: 'url-cell'}, url, ' ', copy),
      el('td', {class: 'number', 'data-relays': hook.relays}, String(hook.relays ?? 0)),
      el('td', {}, lastEvent), el('td', {}, chart));
}
