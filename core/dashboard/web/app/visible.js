// core/dashboard/web/app/visible.js: webhook text with the characters that hide or reorder it shown
// as escapes.
//
// A sender chooses every character of a path, a header value or a body. Bidirectional controls
// (U+202E turns "gpj.exe" into "exe.jpg" on screen) would reorder what the page shows, and
// invisible ones (a byte order mark, a zero-width space, C1 controls) would hide a difference
// that matters, e.g. a BOM that broke a signature. Each such character is shown as its escape
// (\u202e for U+202E) in a marked span, the way bytes that are not UTF-8 are shown as \xHH,
// so that no character in the page can act on its neighbours.
// SPDX-License-Identifier: Apache-2.0

import {el} from './dom.js';

// C1 controls, the Arabic letter mark, zero-width space, the left-to-right and right-to-left
// marks, embeddings and overrides, word joiner, isolates, and the byte order mark. ZWJ and ZWNJ
// (U+200C, U+200D) are left alone: emoji sequences and several scripts need them to read right.
const kHidden = /[\u0080-\u009f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]/g;

const kNames = {
  0x061c: 'ARABIC LETTER MARK',
  0x200b: 'ZERO WIDTH SPACE',
  0x200e: 'LEFT-TO-RIGHT MARK',
  0x200f: 'RIGHT-TO-LEFT MARK',
  0x202a: 'LEFT-TO-RIGHT EMBEDDING',
  0x202b: 'RIGHT-TO-LEFT EMBEDDING',
  0x202c: 'POP DIRECTIONAL FORMATTING',
  0x202d: 'LEFT-TO-RIGHT OVERRIDE',
  0x202e: 'RIGHT-TO-LEFT OVERRIDE',
  0x2060: 'WORD JOINER',
  0x2066: 'LEFT-TO-RIGHT ISOLATE',
  0x2067: 'RIGHT-TO-LEFT ISOLATE',
  0x2068: 'FIRST STRONG ISOLATE',
  0x2069: 'POP DIRECTIONAL ISOLATE',
  0xfeff: 'BYTE ORDER MARK',
};

function escapeOf(character) {
  return '\\u' + character.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
}

/** `text` as a string with every hidden or reordering character written as its escape. */
export function visibleString(text) {
  return String(text).replace(kHidden, escapeOf);
}

/**
 * `text` as nodes for el() and append(): the text as it is, each hidden or reordering
 * character as a span of class "escape" reading its escape (\u202e), titled with its name.
 */
export function visibleText(text) {
  const value = String(text);
  const parts = [];
  let at = 0;
  for (const match of value.matchAll(kHidden)) {
    if (match.index > at) parts.push(value.slice(at, match.index));
    const code = match[0].charCodeAt(0);
    const name = kNames[code] || 'C1 CONTROL';
    parts.push(
        el('span', {class: 'escape', title: `U+${escapeOf(match[0]).slice(2)} ${name}`},
           escapeOf(match[0])));
    at = match.index + match[0].length;
  }
  if (at < value.length || parts.length === 0) parts.push(value.slice(at));
  return parts;
}
