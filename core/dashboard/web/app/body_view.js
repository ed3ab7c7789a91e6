// core/dashboard/web/app/body_view.js: a body three ways: pretty-printed where it is JSON, a form
// or XML; raw text; and hex, byte for byte, for any body including binary ones.
// SPDX-License-Identifier: Apache-2.0

import {lenientUtf8Text, looksLikeText, strictUtf8Text} from './bytes.js';
import {append, el, replaceChildren} from './dom.js';
import {hexRow, hexRowCount} from './hexdump.js';
import {prettyPrint} from './pretty.js';
import {VirtualList} from './virtual_list.js';
import {visibleText} from './visible.js';

// Past this size a pretty layout would cost more than it helps; raw and hex still work.
const kMaxPrettyBytes = 2 << 20;

/** The body panel of an event: `bytes` with the Content-Type `contentType`. */
export function bodyView(bytes, contentType) {
  const text = strictUtf8Text(bytes);
  // A leading byte order mark is no part of the JSON or XML after it: the printers read past it
  // and the pretty view shows it in front, as raw does.
  const bom = text !== null && text.startsWith('\ufeff');
  const printed = text !== null && bytes.length <= kMaxPrettyBytes ?
      prettyPrint(bom ? text.slice(1) : text, contentType) :
      null;
  const modes = [
    {
      id: 'pretty',
      label: printed ? `Pretty (${printed.kind === 'form' ? 'form' : printed.kind.toUpperCase()})` :
                       'Pretty',
      enabled: printed !== null
    },
    {id: 'raw', label: 'Raw', enabled: true},
    {id: 'hex', label: 'Hex', enabled: true},
  ];
  const initial = printed ? 'pretty' : looksLikeText(bytes) ? 'raw' : 'hex';

  const output = el('div', {class: 'body-output'});
  let hexList = null;
  const radios = modes.map(
      (mode) =>
          el('label', {class: mode.enabled ? '' : 'disabled'}, el('input', {
               type: 'radio',
               name: 'body-mode',
               value: mode.id,
               checked: mode.id === initial,
               disabled: !mode.enabled,
               on: {change: () => show(mode.id)},
             }),
             ' ', mode.label));
  const summary =
      el('p', {class: 'hint'}, `${bytes.length} bytes`, contentType ? `, ${contentType}` : '',
         text === null ? ', not UTF-8 text' : '');
  const picker = el(
      'div', {class: 'body-modes', role: 'radiogroup', 'aria-label': 'Show the body as'}, radios);

  function show(mode) {
    if (hexList) {
      hexList.destroy();
      hexList = null;
    }
    output.dataset.mode = mode;
    if (bytes.length === 0) {
      replaceChildren(output, el('p', {class: 'hint'}, 'The body is empty.'));
      return;
    }
    if (mode === 'pretty') {
      replaceChildren(output, prettyBlock(printed.lines, bom));
    } else if (mode === 'raw') {
      replaceChildren(
          output,
          el('pre', {class: 'code raw-body', tabindex: 0}, visibleText(lenientUtf8Text(bytes))));
    } else {
      hexList = hexView(bytes);
      replaceChildren(output, hexList.element);
    }
  }

  show(initial);
  return el('div', {class: 'body-view'}, el('div', {class: 'body-bar'}, picker, summary), output);
}

/**
 * Printed lines as a <pre>, each piece a span whose class says what it is, after the escape of
 * a byte order mark when the body starts with one.
 */
function prettyBlock(lines, bom) {
  const pre = el('pre', {class: 'code pretty-body', tabindex: 0});
  const fragment = document.createDocumentFragment();
  if (bom) append(fragment, visibleText('\ufeff'));
  lines.forEach((line, i) => {
    if (i > 0) fragment.appendChild(document.createTextNode('\n'));
    for (const piece of line) {
      if (piece.kind === 'indent' || piece.kind === 'punct') {
        fragment.appendChild(document.createTextNode(piece.text));
      } else {
        fragment.appendChild(el('span', {class: `tok-${piece.kind}`}, visibleText(piece.text)));
      }
    }
  });
  pre.appendChild(fragment);
  return pre;
}

/** Sixteen bytes a row in a virtual grid, so that a 10 MiB body scrolls like a small one. */
function hexView(bytes) {
  const list = new VirtualList({
    label: 'Body as hex',
    columns: ['Offset', 'Hex', 'ASCII'],
    idPrefix: 'hex-row',
    renderRow: (index, [offset, hex, ascii]) => {
      const row = hexRow(bytes, index);
      offset.textContent = row.offset;
      hex.textContent = row.hex;
      ascii.textContent = row.ascii;
    },
    onOpen: () => {},
  });
  list.element.classList.add('hex-grid');
  list.setCount(hexRowCount(bytes.length));
  return list;
}
