// core/dashboard/web/app/event_view.js: one event: what arrived, byte for byte; the verdict; every
// delivery; why one failed; and replay, edited replay and "copy as curl".
// SPDX-License-Identifier: Apache-2.0

import {api, ApiError, hookPath} from './api.js';
import {bodyView} from './body_view.js';
import {base64ToBytes, decodeHeaderField} from './bytes.js';
import {copyText} from './clipboard.js';
import {curlCommand} from './curl.js';
import {announce, el, replaceChildren} from './dom.js';
import {dateTime, deliveryClass, deliveryLabel, size} from './format.js';
import {openEditReplay} from './replay.js';
import {tabs} from './tabs.js';
import {visibleText} from './visible.js';

// Set once the edge said model explanations are off; the button stays hidden from then on.
let explainOff = false;

/**
 * The model's answer (docs/diagnosis.md, "Model explanation"), every part as text: the model
 * read webhook contents, so what it says is no safer than they are.
 */
function explanationView(answer) {
  const evidence = Array.isArray(answer.evidence) ? answer.evidence : [];
  const confidence = Number(answer.confidence);
  const source = `${answer.model || 'the model'}${answer.cached ? ', answered before' : ''}`;
  return [
    el('h2', {}, 'Explanation'),
    el('p', {class: 'prose', 'data-part': 'summary'}, String(answer.summary ?? '')),
    el('dl', {class: 'facts'}, el('dt', {}, 'Cause'),
       el('dd', {'data-part': 'cause'}, String(answer.cause ?? '')), el('dt', {}, 'Evidence'),
       el('dd', {},
          el('ul', {'data-part': 'evidence'},
             ...evidence.map((item) => el('li', {}, String(item))))),
       el('dt', {}, 'Fix'), el('dd', {'data-part': 'fix'}, String(answer.fix ?? '')),
       el('dt', {}, 'Confidence'),
       el('dd', {'data-part': 'confidence'},
          Number.isFinite(confidence) ? `${Math.round(confidence * 100)} %` : 'not given')),
    el('p', {class: 'hint'},
       `From ${source}; a model can be wrong, the findings above are the edge's own checks.`),
  ];
}

export function eventView(main, {hookId, eventId}) {
  const hookHash = `#/hooks/${encodeURIComponent(hookId)}`;
  const eventHash = (id) => `${hookHash}/events/${id}`;
  main.append(
      el('p', {class: 'subnav'}, el('a', {href: hookHash}, '← Events')),
      el('h1', {}, `Event ${eventId}`));
  const status = el('p', {class: 'status', role: 'status'}, 'Loading the event…');
  main.appendChild(status);
  let stopped = false;

  Promise
      .all([
        api('GET', hookPath(hookId, 'events', String(eventId))),
        api('GET', hookPath(hookId)).catch(() => null),
      ])
      .then(([event, hook]) => {
        if (stopped) return;
        status.textContent = '';
        render(event, hook);
      })
      .catch((error) => {
        if (!stopped) status.textContent = `Could not load the event: ${error.message}`;
      });

  function render(event, hook) {
    const body = base64ToBytes(event.body_base64 || '');
    const fields = (event.headers || []).map(decodeHeaderField);
    const contentType =
        (fields.find((f) => f.name.toLowerCase() === 'content-type') || {}).value || '';
    const ingestUrl = hook ? hook.ingest_url : `${location.origin}/h/${hookId}`;

    const result = el('div', {class: 'action-result', role: 'status'});
    const explanation = el('div', {class: 'explanation'});
    const explainButton = el('button', {type: 'button', hidden: explainOff}, 'Explain');

    const actions =
        el('div', {class: 'actions'},
           el('button', {type: 'button', on: {click: () => replayAsIs()}}, 'Replay'),
           el('button',
              {type: 'button', on: {click: () => openEditReplay(hookId, event, body, replayed)}},
              'Edit and replay…'),
           el('button',
              {type: 'button', on: {click: () => showCurl(curlCommand(event, body, ingestUrl))}},
              'Copy as curl'),
           explainButton);
    explainButton.addEventListener('click', explain);

    const panels = [
      {id: 'body', label: `Body (${size(body.length)})`, content: bodyView(body, contentType)},
      {id: 'headers', label: `Headers (${fields.length})`, content: headersTable(fields)},
      {
        id: 'deliveries',
        label: `Deliveries (${event.deliveries_total ?? (event.deliveries || []).length})`,
        content: deliveriesTable(event)
      },
      {
        id: 'diagnosis',
        label: `Diagnosis (${(event.diagnosis || []).length})`,
        content: diagnosisList(event.diagnosis || [])
      },
    ];
    main.append(
        summaryList(event, eventHash), actions, result, explanation, tabs('Event', panels).element);

    async function replayAsIs() {
      try {
        const copy = await api('POST', hookPath(hookId, 'events', String(event.id), 'replay'));
        replayed(copy);
      } catch (error) {
        replaceChildren(result, el('p', {class: 'error'}, `Replay failed: ${error.message}`));
      }
    }

    function replayed(copy, warning) {
      replaceChildren(
          result,
          el('p', {}, 'Replayed as ',
             el('a', {href: eventHash(copy.id), 'data-replay': copy.id}, `event ${copy.id}`), '.',
             warning ? el('span', {class: 'warning'}, ` ${warning}`) : null));
      announce(`Replayed as event ${copy.id}.`);
    }

    async function explain() {
      explainButton.disabled = true;
      replaceChildren(explanation, el('p', {class: 'hint'}, 'Asking the model…'));
      try {
        const answer = await api('POST', hookPath(hookId, 'events', String(event.id), 'explain'));
        replaceChildren(explanation, ...explanationView(answer));
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) {
          explainOff = true;
          explainButton.hidden = true;
          replaceChildren(
              explanation, el('p', {class: 'hint'}, 'Model explanations are off on this edge.'));
        } else {
          replaceChildren(
              explanation, el('p', {class: 'error'}, `No explanation: ${error.message}`));
        }
      } finally {
        explainButton.disabled = false;
      }
    }
  }

  return {
    destroy() {
      stopped = true;
    },
    back: hookHash,
  };
}

/** The facts of the event: when, what, the verdict and its reason, its replay links. */
function summaryList(event, eventHash) {
  const facts = el('dl', {class: 'facts'});
  const fact = (term, ...detail) => facts.append(el('dt', {}, term), el('dd', {}, detail));
  const eventLink = (id, attribute) =>
      el('a', {href: eventHash(id), [attribute]: id}, `event ${id}`);

  const target = (event.path || '/') + (event.query ? `?${event.query}` : '');
  const verdict = event.integrity_error ? 'unreadable' : event.verdict;
  fact('Received', dateTime(event.received_at_ms));
  fact('Request', el('code', {class: 'long-value'}, visibleText(`${event.method} ${target}`)));
  fact(
      'Verdict', el('span', {class: `verdict verdict-${verdict}`}, verdict),
      event.reason ? ` ${event.reason}` : '',
      event.message ? [' — ', el('bdi', {}, visibleText(event.message))] : '');
  if (event.integrity_error) {
    fact('Contents', el('span', {class: 'error'}, event.integrity_error));
  }
  if (event.event_type) fact('Type', el('bdi', {}, visibleText(event.event_type)));
  if (event.delivery_id) fact('Delivery id', el('code', {}, visibleText(event.delivery_id)));
  fact('Size', `${event.size} bytes`);
  if (event.replay_of) fact('Replay of', eventLink(event.replay_of, 'data-original'));
  if (event.modified) {
    fact(
        'Edited',
        el('span', {class: 'badge badge-modified'},
           'edited: the provider’s signature no longer covers it'));
  }
  const replays = event.replays || [];
  if (replays.length > 0) {
    fact(
        'Replayed as',
        replays.flatMap((id, i) => [i > 0 ? ', ' : '', eventLink(id, 'data-replay')]));
  }
  return facts;
}

/** A table with a hidden caption, column headings and one row per item. */
function table(className, caption, headings, items, row) {
  return el(
      'table', {class: className}, el('caption', {class: 'visually-hidden'}, caption),
      el('thead', {}, el('tr', {}, headings.map((h) => el('th', {scope: 'col'}, h)))),
      el('tbody', {}, items.map(row)));
}

function headersTable(fields) {
  if (fields.length === 0) return el('p', {class: 'hint'}, 'No header fields.');
  const notUtf8 = () => el(
      'span', {class: 'badge', title: 'bytes that are not UTF-8 are shown as \\xHH'}, 'not UTF-8');
  return table(
      'headers', 'Header fields in the order they arrived', ['#', 'Name', 'Value'], fields,
      (field, i) =>
          el('tr', {}, el('td', {class: 'number'}, String(i + 1)),
             el('th', {scope: 'row'}, el('bdi', {}, visibleText(field.name))),
             el('td', {}, el('code', {class: 'long-value'}, visibleText(field.value)),
                field.exact ? null : notUtf8())));
}

function deliveriesTable(event) {
  const deliveries = event.deliveries || [];
  if (deliveries.length === 0) {
    return el('p', {class: 'hint'}, 'No relay has reported a delivery yet.');
  }
  const total = event.deliveries_total ?? deliveries.length;
  const latest = `The latest ${deliveries.length} of ${total} deliveries.`;
  const row = (delivery) => {
    const status = el(
        'span', {class: `delivery delivery-${deliveryClass(delivery)}`}, deliveryLabel(delivery));
    const limit = delivery.timeout_ms ? ` (limit ${delivery.timeout_ms} ms)` : '';
    const reported = delivery.reported_at_ms ? dateTime(delivery.reported_at_ms) : '';
    const answer = el('td', {});
    if (delivery.location) {
      answer.append(
          el('p', {},
             'Location: ', el('code', {class: 'long-value'}, visibleText(delivery.location))));
    }
    if (delivery.response_excerpt) {
      answer.append(el('pre', {class: 'code excerpt'}, visibleText(delivery.response_excerpt)));
    }
    return el(
        'tr', {}, el('td', {}, el('code', {}, visibleText(delivery.relay))), el('td', {}, status),
        el('td', {class: 'number'}, `${delivery.duration_ms} ms`, limit),
        el('td', {}, el('bdi', {}, visibleText(delivery.error || ''))), el('td', {}, reported),
        answer);
  };
  return el(
      'div', {}, total > deliveries.length ? el('p', {class: 'hint'}, latest) : null,
      table(
          'deliveries', 'Deliveries, oldest first',
          ['Relay', 'Status', 'Duration', 'Error', 'Reported', 'Answer'], deliveries, row));
}

// Parts of a finding drawn in their own way: the code as the link to its page, the title, the
// time and the evidence; status and relay only where a delivery gives them.
const kFindingOwnParts = new Set(['code', 'title', 'page', 'at_ms', 'evidence']);

/**
 * The findings, each linked to its page, with its time and its evidence (docs/diagnosis.md,
 * "Findings as JSON"). A finding's other text fields are shown as they come, so that a field
 * added to the diagnosis later is not lost here.
 */
function diagnosisList(findings) {
  if (findings.length === 0) {
    return el('p', {class: 'hint'}, 'No findings: nothing looks wrong with this event.');
  }
  return el('ul', {class: 'findings'}, findings.map((finding) => {
    const facts = [];
    const fact = (term, ...detail) => facts.push(el('dt', {}, term), el('dd', {}, detail));
    if (Number(finding.at_ms) > 0) fact('at', timeOf(Number(finding.at_ms)));
    for (const [key, value] of Object.entries(finding)) {
      if (kFindingOwnParts.has(key) || value === '' || (key === 'status' && value === 0)) continue;
      if (typeof value === 'string' || typeof value === 'number') {
        fact(key, el('bdi', {}, visibleText(String(value))));
      }
    }
    const evidence = finding.evidence && typeof finding.evidence === 'object' ?
        Object.entries(finding.evidence) :
        [];
    if (evidence.length > 0) {
      fact(
          'evidence',
          el('dl', {class: 'evidence'},
             evidence.map(
                 ([key, value]) => [el('dt', {}, key), el('dd', {}, evidenceValue(key, value))])));
    }
    return el(
        'li', {class: 'finding', 'data-code': finding.code},
        el('a', {href: `/diagnosis/${encodeURIComponent(finding.code)}`, class: 'finding-code'},
           el('code', {}, finding.code)),
        finding.title ? el('strong', {}, ` ${finding.title}`) : null,
        facts.length > 0 ? el('dl', {}, facts) : null);
  }));
}

/** A time as the page writes it, with the machine-readable form in a <time> element. */
function timeOf(ms) {
  return el('time', {datetime: new Date(ms).toISOString()}, dateTime(ms));
}

/**
 * One evidence value as text: a time in Unix seconds (the names ending in _at_s) also as a date,
 * anything that is not a string or a number as JSON.
 */
function evidenceValue(key, value) {
  if (typeof value === 'number' && key.endsWith('_at_s') && value > 0) {
    return [`${value} (`, timeOf(value * 1000), ')'];
  }
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return el('bdi', {class: 'long-value'}, visibleText(text));
}

/** The curl snippet in a dialog, with a button that copies it. */
function showCurl(snippet) {
  const code = el('pre', {class: 'code curl', tabindex: 0, id: 'curl-snippet'}, snippet);
  const dialog =
      el('dialog', {'aria-labelledby': 'curl-title', class: 'wide'},
         el('h2', {id: 'curl-title'}, 'Copy as curl'),
         el('p', {class: 'hint'},
            'Run it in an empty directory: it writes the body to body.bin, then sends the ' +
                'request with every header in its order.'),
         code,
         el('div', {class: 'dialog-actions'},
            el('button', {type: 'button', on: {click: () => copyText(snippet, code)}}, 'Copy'),
            el('button', {type: 'button', on: {click: () => dialog.close()}}, 'Close')));
  dialog.addEventListener('close', () => dialog.remove());
  document.body.appendChild(dialog);
  dialog.showModal();
  copyText(snippet, code);
}
