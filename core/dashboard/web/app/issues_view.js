// core/dashboard/web/app/issues_view.js: a hook's failures grouped per diagnosis code and status,
// open or resolved, with resolve, reopen and "replay them all".
// SPDX-License-Identifier: Apache-2.0

import {api, hookPath} from './api.js';
import {el, replaceChildren} from './dom.js';
import {ago, dateTime} from './format.js';
import {followJob} from './replay.js';

// How many of an issue's events are linked from its row.
const kLinkedEvents = 5;

export function issuesView(main, {hookId}) {
  const hookHash = `#/hooks/${encodeURIComponent(hookId)}`;
  let state = 'open';
  const status = el('p', {class: 'status', role: 'status'}, 'Loading issues…');
  const body = el('tbody');
  const filter =
      el('div', {class: 'segmented', role: 'radiogroup', 'aria-label': 'Show'},
         ['open', 'resolved', 'all'].map(
             (value) =>
                 el('label', {}, el('input', {
                      type: 'radio',
                      name: 'issue-state',
                      value,
                      checked: value === state,
                      on: {
                        change: () => {
                          state = value;
                          load();
                        }
                      }
                    }),
                    ' ', value)));
  main.append(
      el('p', {class: 'subnav'}, el('a', {href: hookHash}, '← Events')), el('h1', {}, 'Issues'),
      filter, status,
      el('table', {class: 'issues'},
         el('caption', {class: 'visually-hidden'}, 'Failures grouped per code and status'),
         el('thead', {},
            el('tr', {},
               ['Issue', 'Status', 'Events', 'First', 'Last', 'State',
                ''].map((heading) => el('th', {scope: 'col'}, heading)))),
         body));

  let stopped = false;

  async function load() {
    try {
      const {issues} = await api('GET', hookPath(hookId, 'issues') + `?state=${state}`);
      if (stopped) return;
      status.textContent = issues.length === 0 ?
          `No ${state === 'all' ? '' : state + ' '}issues.` :
          `${issues.length} ${issues.length === 1 ? 'issue' : 'issues'}`;
      replaceChildren(body, issues.map(issueRow));
    } catch (error) {
      if (!stopped) status.textContent = `Could not load the issues: ${error.message}`;
    }
  }

  function issueRow(issue) {
    const act = async (action) => {
      try {
        await api('POST', hookPath(hookId, 'issues', issue.key, action));
        await load();
      } catch (error) {
        status.textContent = `Could not ${action}: ${error.message}`;
      }
    };
    const replayAll = async () => {
      try {
        const job = await api('POST', hookPath(hookId, 'issues', issue.key, 'replay'));
        followJob(hookId, job);
      } catch (error) {
        status.textContent = `Could not replay: ${error.message}`;
      }
    };
    const events = issue.events || [];
    return el(
        'tr', {'data-issue': issue.key},
        el('th', {scope: 'row'},
           el('a', {href: `/diagnosis/${encodeURIComponent(issue.code)}`},
              el('code', {}, issue.code)),
           issue.title ? el('div', {}, el('strong', {}, issue.title)) : null,
           events.length > 0 ?
               el('div', {class: 'hint'}, 'events ',
                  events.slice(0, kLinkedEvents)
                      .flatMap(
                          (id, i) =>
                              [i > 0 ? ', ' : '',
                               el('a', {href: `${hookHash}/events/${id}`}, String(id))]),
                  events.length > kLinkedEvents ? ', …' : '') :
               null),
        el('td', {class: 'number'}, issue.status ? String(issue.status) : '–'),
        el('td', {class: 'number'}, String(issue.count)),
        el('td', {title: dateTime(issue.first_at_ms)}, ago(issue.first_at_ms)),
        el('td', {title: dateTime(issue.last_at_ms)}, ago(issue.last_at_ms)),
        el('td', {}, stateBadge(issue)),
        el('td', {class: 'row-actions'},
           issue.state === 'open' ?
               el('button', {type: 'button', on: {click: () => act('resolve')}}, 'Resolve') :
               el('button', {type: 'button', on: {click: () => act('reopen')}}, 'Reopen'),
           ' ', el('button', {type: 'button', on: {click: replayAll}}, 'Replay all')));
  }

  load();
  return {
    destroy() {
      stopped = true;
    },
    back: hookHash,
  };
}

/**
 * An issue's state; "reopened" for one marked resolved that failed again after the mark, so
 * that a fix that did not hold is not taken for a failure never looked at.
 */
function stateBadge(issue) {
  const state = issue.reopened ? 'reopened' : issue.state;
  const badge = el('span', {class: `issue-state issue-${state}`}, state);
  if (issue.reopened && issue.resolved_at_ms > 0) {
    badge.title = `failed again after it was resolved on ${dateTime(issue.resolved_at_ms)}`;
  }
  return badge;
}
