// core/dashboard/web/app/replay.js: replays that need a dialog: an edited copy of one event, and
// every event of a search or an issue as a job on the edge, counted before it starts and followed
// while it runs.
// SPDX-License-Identifier: Apache-2.0

import {api, ApiError, hookPath} from './api.js';
import {bytesToBase64, decodeHeaderField, strictUtf8Text, utf8Bytes} from './bytes.js';
import {announce, el, replaceChildren} from './dom.js';

// How often a running job is asked for its progress.
const kJobPollMs = 500;
// The words the edge uses for the warning, in case it sends none.
const kSignatureWarning = 'The provider’s signature covers the original request; ' +
    'the local handler’s check will fail for an edited one.';

/** A modal dialog that removes itself when closed. */
function dialog(titleId, title, ...content) {
  const element =
      el('dialog', {'aria-labelledby': titleId}, el('h2', {id: titleId}, title), content);
  element.addEventListener('close', () => element.remove());
  document.body.appendChild(element);
  element.showModal();
  return element;
}

/**
 * The edited replay form: method, path, query, headers and body, prefilled from `event`.
 * Only what was changed is sent; the edge stores the copy as modified and unsigned.
 */
export function openEditReplay(hookId, event, bodyBytes, onReplayed) {
  const fields = (event.headers || []).map(decodeHeaderField);
  const headersEditable = fields.every((field) => field.exact);
  const headerText = fields.map((field) => `${field.name}: ${field.value}`).join('\n');
  const bodyText = strictUtf8Text(bodyBytes);

  const method = el('input', {
    id: 'edit-method',
    name: 'method',
    value: event.method,
    required: true,
    spellcheck: 'false'
  });
  const path =
      el('input', {id: 'edit-path', name: 'path', value: event.path || '', spellcheck: 'false'});
  const query =
      el('input', {id: 'edit-query', name: 'query', value: event.query || '', spellcheck: 'false'});
  const headers = el('textarea', {
    id: 'edit-headers',
    rows: Math.min(12, fields.length + 1),
    spellcheck: 'false',
    disabled: !headersEditable,
    'aria-describedby': 'edit-headers-help'
  });
  headers.value = headerText;
  // What the fields give back untouched is the baseline: a textarea turns every CRLF and CR
  // into LF, so its text differs from the original whenever the original had either.
  const shownHeaders = headers.value;
  const body = el('textarea', {
    id: 'edit-body',
    rows: 10,
    spellcheck: 'false',
    disabled: bodyText === null,
    'aria-describedby': 'edit-body-help'
  });
  body.value = bodyText ?? '';
  const shownBody = body.value;
  const lineEnd = bodyText === null ? 'lf' : lineEndsOf(bodyText);
  const error = el('p', {class: 'error', role: 'alert'});
  const modified = el('p', {class: 'badge badge-modified', hidden: true}, 'modified');

  // The path and query are edited as text; ones that were not UTF-8 stay as they were.
  const exactPath = event.path_b64 === undefined;
  const exactQuery = event.query_b64 === undefined;
  path.disabled = !exactPath;
  query.disabled = !exactQuery;

  const form = el(
      'form', {class: 'edit-replay'},
      el('p', {class: 'warning', id: 'edit-warning'}, kSignatureWarning),
      el('div', {class: 'field-row'},
         el('div', {}, el('label', {'for': 'edit-method'}, 'Method'), method),
         el('div', {class: 'grow'}, el('label', {'for': 'edit-path'}, 'Path after the hook'), path),
         el('div', {class: 'grow'}, el('label', {'for': 'edit-query'}, 'Query'), query)),
      el('label', {'for': 'edit-headers'}, 'Headers, one "Name: value" a line, in order'), headers,
      el('p', {id: 'edit-headers-help', class: 'hint'},
         headersEditable ?
             'Content-Length follows the body as it is edited.' :
             'Some header bytes are not UTF-8: the headers are replayed as they were.'),
      el('label', {'for': 'edit-body'}, 'Body'), body,
      el('p', {id: 'edit-body-help', class: 'hint'}, bodyHelp(bodyText, lineEnd)), modified, error,
      el('div', {class: 'dialog-actions'}, el('button', {type: 'submit'}, 'Replay edited copy'),
         el('button', {type: 'button', on: {click: () => box.close()}}, 'Cancel')));

  // The edited text with the original's line ends back in place of the textarea's LF.
  const editedBody = () => utf8Bytes(withLineEnds(body.value, lineEnd));
  const changes = () => {
    const out = {};
    if (method.value !== event.method) out.method = method.value;
    if (exactPath && path.value !== (event.path || '')) out.path = path.value;
    if (exactQuery && query.value !== (event.query || '')) out.query = query.value;
    if (headersEditable && headers.value !== shownHeaders) {
      out.headers = parseHeaderLines(headers.value);
    }
    if (bodyText !== null && body.value !== shownBody) {
      out.body_base64 = bytesToBase64(editedBody());
    }
    return out;
  };
  // A changed body with its old Content-Length would be cut short or waited on by the local
  // server, and "copy as curl" of the copy would send it so.
  body.addEventListener('input', () => {
    if (!headersEditable) return;
    const length = editedBody().length;
    headers.value = headers.value.replace(/^(content-length:[ \t]*)[0-9]*/gim, `$1${length}`);
  });
  form.addEventListener('input', () => {
    modified.hidden = Object.keys(changes()).length === 0;
  });
  form.addEventListener('submit', async (submitted) => {
    submitted.preventDefault();
    error.textContent = '';
    let edits;
    try {
      edits = changes();
    } catch (failure) {
      error.textContent = failure.message;
      return;
    }
    if (Object.keys(edits).length === 0) {
      error.textContent = 'Nothing was changed: use Replay to send it as it was.';
      return;
    }
    try {
      const copy = await api('POST', hookPath(hookId, 'events', String(event.id), 'replay'), edits);
      box.close();
      onReplayed(copy, copy.warning || kSignatureWarning);
    } catch (failure) {
      error.textContent = failure.message;
    }
  });

  const box = dialog('edit-title', `Edit and replay event ${event.id}`, form);
  box.classList.add('wide');
  method.focus();
}

const kLineEnds = {
  crlf: '\r\n',
  cr: '\r',
  lf: '\n'
};

/**
 * How the lines of `text` end: 'crlf' or 'cr' when every line break is that one, 'lf' when
 * every one is LF or there is none, 'mixed' otherwise.
 */
export function lineEndsOf(text) {
  const crlf = (text.match(/\r\n/g) || []).length;
  const cr = (text.match(/\r(?!\n)/g) || []).length;
  const lf = (text.match(/(?<!\r)\n/g) || []).length;
  if (crlf > 0 && cr === 0 && lf === 0) return 'crlf';
  if (cr > 0 && crlf === 0 && lf === 0) return 'cr';
  return crlf + cr === 0 ? 'lf' : 'mixed';
}

/** Text from a textarea (LF line ends) with the line ends `lineEnd` names; mixed ones as LF. */
export function withLineEnds(text, lineEnd) {
  const end = kLineEnds[lineEnd] || '\n';
  return end === '\n' ? text : text.replace(/\n/g, end);
}

/** What the dialog says about the body: what is kept of it when it is edited. */
function bodyHelp(bodyText, lineEnd) {
  if (bodyText === null) return 'The body is not UTF-8 text: it is replayed as it was.';
  const notes = ['Left as it is, the body is replayed byte for byte.'];
  if (bodyText.startsWith('\ufeff')) {
    notes.push('It starts with a byte order mark (EF BB BF), which an edit keeps.');
  }
  if (lineEnd === 'crlf' || lineEnd === 'cr') {
    notes.push(`Its lines end in ${lineEnd.toUpperCase()}, and an edited body is sent so too.`);
  } else if (lineEnd === 'mixed') {
    notes.push('Its lines end in more than one way; an edited body is sent with LF line ends.');
  }
  return notes.join(' ');
}

/** "Name: value" lines as [name, value] pairs; a line without a colon is an error. */
function parseHeaderLines(text) {
  return text.split('\n').filter((line) => line.trim() !== '').map((line, i) => {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`header line ${i + 1} has no "Name:" part`);
    return [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
  });
}

/**
 * Replays every event `query` matches: asks the count first (dry_run), starts the job with
 * that count as the expectation, then shows its progress with a Cancel button.
 */
export async function openBulkReplay(hookId, query) {
  const status = el('p', {role: 'status'}, 'Counting the events that match…');
  // The status says why the button is off when it stays off.
  const confirm = el(
      'button', {type: 'button', disabled: true, 'aria-describedby': 'bulk-status'}, 'Replay them');
  const close = el('button', {type: 'button', on: {click: () => box.close()}}, 'Cancel');
  const box = dialog(
      'bulk-title', 'Replay every matching event', el('p', {}, 'Query: ', el('code', {}, query)),
      status, el('div', {class: 'dialog-actions'}, confirm, close));
  box.dataset.dialog = 'bulk-replay';

  const path = hookPath(hookId, 'replays');
  let expected = 0;
  const count = async () => {
    const answer = await api('POST', path, {q: query, dry_run: true});
    expected = answer.count;
    status.dataset.count = String(expected);
    if (answer.over_limit) {
      // The edge would refuse the job: it counts one past its limit and stops there.
      status.dataset.overLimit = 'true';
      status.textContent = `More than ${expected - 1} events match, and one job replays at ` +
          `most ${expected - 1}. Narrow the query, e.g. with a time:[… TO …] range, to ` +
          'replay them in parts.';
      confirm.disabled = true;
      close.focus();
      return;
    }
    status.textContent = expected === 1 ? '1 event matches.' : `${expected} events match.`;
    confirm.disabled = expected === 0;
    confirm.focus();
  };
  try {
    await count();
  } catch (error) {
    status.textContent = `Could not count: ${error.message}`;
    return;
  }

  confirm.addEventListener('click', async () => {
    confirm.disabled = true;
    try {
      const job = await api('POST', path, {q: query, expect: expected});
      box.close();
      followJob(hookId, job);
    } catch (error) {
      // The events matching changed between the count and the start: show the new count.
      if (error instanceof ApiError && error.status === 409 && Number.isInteger(error.body.count)) {
        expected = error.body.count;
        status.textContent = `The query now matches ${expected} events. Replay them?`;
        status.dataset.count = String(expected);
        confirm.disabled = expected === 0;
        return;
      }
      status.textContent = `Could not start: ${error.message}`;
    }
  });
}

/** A running replay job's progress, polled until it ends, with Cancel while it runs. */
export function followJob(hookId, job) {
  const progress = el('progress', {max: Math.max(1, job.total), value: job.done});
  const status = el('p', {role: 'status'});
  const replays = el('p', {class: 'replay-links'});
  const cancel = el('button', {type: 'button'}, 'Cancel the job');
  const close = el('button', {type: 'button', on: {click: () => box.close()}}, 'Close');
  const box = dialog(
      'job-title', 'Replaying', progress, status, replays,
      el('div', {class: 'dialog-actions'}, cancel, close));
  box.dataset.dialog = 'replay-job';
  let timer = 0;
  let current = job;

  const show = () => {
    progress.max = Math.max(1, current.total);
    progress.value = current.done;
    status.dataset.state = current.state;
    status.textContent = `${current.done} of ${current.total} replayed` +
        (current.failed ? `, ${current.failed} failed` : '') +
        (current.state === 'running' ? '…' : ` (${current.state}).`);
    cancel.hidden = current.state !== 'running';
    const ids = current.replays || [];
    replaceChildren(replays, ids.length === 0 ? null : [
      'New events: ',
      ids.flatMap(
          (id, i) =>
              [i > 0 ? ', ' : '',
               el('a', {
                 href: `#/hooks/${encodeURIComponent(hookId)}/events/${id}`,
                 on: {click: () => box.close()}
               },
                  String(id))])
    ]);
  };
  const poll = async () => {
    try {
      current = await api('GET', hookPath(hookId, 'replays', current.id));
      show();
    } catch (error) {
      status.textContent = `Lost track of the job: ${error.message}`;
      return;
    }
    if (current.state === 'running' && box.open) {
      timer = setTimeout(poll, kJobPollMs);
    } else {
      announce(`Replay job ${current.state}: ${current.done} of ${current.total}.`);
    }
  };
  cancel.addEventListener('click', async () => {
    try {
      current = await api('DELETE', hookPath(hookId, 'replays', current.id));
      show();
    } catch (error) {
      status.textContent = `Could not cancel: ${error.message}`;
    }
  });
  box.addEventListener('close', () => clearTimeout(timer));
  show();
  if (current.state === 'running') timer = setTimeout(poll, kJobPollMs);
}
