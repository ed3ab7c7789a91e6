// core/dashboard/web/app/events_view.js: a hook's events, newest first, live, searchable, one row
// per event.
// SPDX-License-Identifier: Apache-2.0

import {api, ApiError, hookPath} from './api.js';
import {byteOffsetToIndex} from './bytes.js';
import {el, replaceChildren} from './dom.js';
import {EventsModel, latestPerRelay} from './events_model.js';
import {clockTime, dateTime, deliveryClass, deliveryLabel, size} from './format.js';
import {openBulkReplay} from './replay.js';
import {VirtualList} from './virtual_list.js';
import {visibleString, visibleText} from './visible.js';

// A list left for an event is kept this long, so that Esc comes back to the same place.
const kKeepListMs = 10 * 60_000;

let kept = null;  // {key, model, scrollTop, active, timer}

function keptModel(key) {
  if (kept && kept.key === key) {
    clearTimeout(kept.timer);
    const found = kept;
    kept = null;
    return found;
  }
  if (kept) {
    clearTimeout(kept.timer);
    kept.model.close();
    kept = null;
  }
  return null;
}

export function eventsView(main, {hookId, query}) {
  const key = `${hookId}\n${query}`;
  const title = el('h1', {}, 'Events');
  const hookLinks =
      el('p', {class: 'subnav'}, el('a', {href: '#/hooks'}, '← Hooks'), ' · ',
         el('a', {href: `#/hooks/${encodeURIComponent(hookId)}/issues`}, 'Issues'));

  // The search box, and the place under it where a query error is shown at its position.
  const input = el('input', {
    id: 'search',
    type: 'search',
    name: 'q',
    value: query,
    autocomplete: 'off',
    spellcheck: 'false',
    'data-shortcut': 'search',
    'aria-describedby': 'search-help search-error',
    placeholder: 'e.g. status:[500 TO 599] type:invoice.*',
  });
  input.value = query;
  const searchError = el('div', {id: 'search-error', class: 'search-error', role: 'alert'});
  const bulkButton = el('button', {type: 'button', hidden: query === ''}, 'Replay matching…');
  const form = el(
      'form', {class: 'search', role: 'search'}, el('label', {'for': 'search'}, 'Search'),
      el('div', {class: 'search-row'}, input, el('button', {type: 'submit'}, 'Search'), bulkButton),
      el('p', {id: 'search-help', class: 'hint'}, 'Press / to search. Empty shows every event.'),
      searchError);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const q = input.value.trim();
    location.hash =
        `#/hooks/${encodeURIComponent(hookId)}` + (q ? `?q=${encodeURIComponent(q)}` : '');
  });
  bulkButton.addEventListener('click', () => openBulkReplay(hookId, query));

  const status = el('p', {class: 'status', role: 'status', 'aria-live': 'polite'});
  const newMatches = el('p', {class: 'notice', hidden: true});

  const list = new VirtualList({
    label: query ? `Events matching ${query}` : 'Events',
    columns: ['Time', 'Method', 'Path', 'Type', 'Verdict', 'Deliveries', 'Size'],
    idPrefix: 'event-row',
    renderRow: (index, cells, row) => renderRow(model.rows[index], cells, row),
    onOpen: (index) => {
      const summary = model.rows[index];
      if (summary) location.hash = `#/hooks/${encodeURIComponent(hookId)}/events/${summary.id}`;
    },
    onRangeShown: (first, last) => model.want(last),
  });

  main.append(title, hookLinks, form, status, newMatches, list.element);

  const restored = keptModel(key);
  let model = restored ? restored.model : new EventsModel(hookId, query, () => {});
  model.onChange = update;
  model.onInserted = (added) => list.insertedAtTop(added);

  /** Starts over: the same search from the newest event. */
  function restart() {
    model.close();
    model = new EventsModel(hookId, query, update);
    model.onInserted = (added) => list.insertedAtTop(added);
    list.viewport.scrollTop = 0;
    list.setActive(0, false);
    update();
  }

  function update() {
    list.setCount(model.rowCount());
    list.refresh();
    showStatus();
    showError();
  }

  function showStatus() {
    const live = {
      live: 'live',
      connecting: 'connecting…',
      reconnecting: 'reconnecting…',
      off: 'not live'
    }[model.liveState];
    status.dataset.live = model.liveState;
    if (model.error) {
      status.textContent = `${model.query ? 'The search' : 'The list'} stopped · ${live}`;
    } else if (model.query) {
      const more = model.nextBefore === 0 ? '' : ' so far';
      status.textContent =
          `${model.rows.length} found${more} in ${model.scanned} events read · ${live}`;
    } else {
      const count = model.total ?? model.rows.length;
      status.textContent = `${count} ${count === 1 ? 'event' : 'events'} · ${live}`;
    }
    newMatches.hidden = model.unmatchedLive === 0;
    if (model.unmatchedLive > 0) {
      replaceChildren(
          newMatches, `${model.unmatchedLive} new events arrived since this search. `,
          el('button', {type: 'button', class: 'quiet', on: {click: restart}}, 'Search again'));
    }
  }

  function showError() {
    const error = model.error;
    if (!error) {
      searchError.textContent = '';
      input.removeAttribute('aria-invalid');
      return;
    }
    if (error instanceof ApiError && error.status === 400 &&
        Number.isInteger(error.body.position)) {
      input.setAttribute('aria-invalid', 'true');
      replaceChildren(searchError, queryErrorFigure(model.query, error.body));
      return;
    }
    replaceChildren(
        searchError, el('p', {class: 'error'}, `Could not load events: ${error.message}`));
  }

  // The hook's name for the heading.
  api('GET', hookPath(hookId))
      .then((hook) => {
        title.textContent = hook.name ? `Events of ${hook.name}` : `Events of hook ${hook.id}`;
        document.title = `${hook.name || hook.id} · Anonymily`;
      })
      .catch((error) => {
        title.textContent = error.status === 404 ? 'No such hook' : 'Events';
      });

  update();
  if (restored) {
    list.viewport.scrollTop = restored.scrollTop;
    list.setActive(restored.active, false);
    requestAnimationFrame(() => list.element.focus({preventScroll: true}));
  }

  return {
    destroy() {
      list.destroy();
      model.onChange = () => {};
      model.onInserted = () => {};
      kept = {
        key,
        model,
        scrollTop: list.viewport.scrollTop,
        active: list.active,
        timer: setTimeout(
            () => {
              model.close();
              kept = null;
            },
            kKeepListMs),
      };
    },
    back: '#/hooks',
  };
}

/**
 * The query with the span the edge could not read underlined, and the edge's message:
 * {"error", "position", "length"} with position and length in bytes of the UTF-8 query.
 */
function queryErrorFigure(query, {error, position, length}) {
  const start = byteOffsetToIndex(query, position);
  const end = Math.max(start, byteOffsetToIndex(query, position + Math.max(0, length || 0)));
  // A span at the end of the query (something missing) is shown as one marked space.
  const bad = query.slice(start, end) || ' ';
  return el(
      'div', {class: 'query-error'},
      el('pre', {class: 'query-echo', 'aria-hidden': 'true'}, query.slice(0, start),
         el('mark', {class: 'query-bad'}, bad), query.slice(end)),
      // Characters as a reader counts them: code points, as the terminal's ^ marks do, not the
      // UTF-16 units of the string index (an emoji is one character, not two).
      el('p', {class: 'error'},
         `${error} (at character ${[...query.slice(0, start)].length + 1})`));
}

function renderRow(summary, cells, row) {
  const [time, method, path, type, verdict, deliveries, bytes] = cells;
  row.classList.toggle('is-placeholder', !summary);
  if (!summary) {
    for (const cell of cells) cell.textContent = '';
    time.textContent = '…';
    row.removeAttribute('data-event');
    return;
  }
  row.dataset.event = String(summary.id);
  time.textContent = clockTime(summary.received_at_ms);
  time.title = dateTime(summary.received_at_ms);
  method.textContent = summary.method;
  const target = summary.path + (summary.query ? `?${summary.query}` : '');
  replaceChildren(
      path,
      summary.replay_of ?
          el('span', {class: 'badge', title: `replay of event ${summary.replay_of}`}, 'replay') :
          null,
      summary.modified ? el('span', {class: 'badge badge-modified'}, 'edited') : null,
      el('bdi', {}, visibleText(target || '/')));
  path.title = visibleString(target);
  replaceChildren(type, el('bdi', {}, visibleText(summary.event_type || '')));
  const verdictText = summary.integrity_error ? 'unreadable' : summary.verdict;
  replaceChildren(verdict, el('span', {class: `verdict verdict-${verdictText}`}, verdictText));
  replaceChildren(
      deliveries,
      latestPerRelay(summary.deliveries)
          .map(
              (delivery) =>
                  el('span', {
                    class: `delivery delivery-${deliveryClass(delivery)}`,
                    title: `relay ${delivery.relay}`
                  },
                     deliveryLabel(delivery))));
  if (!summary.deliveries || summary.deliveries.length === 0) deliveries.textContent = '–';
  bytes.textContent = size(summary.size);
}
