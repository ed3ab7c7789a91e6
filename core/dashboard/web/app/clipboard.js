// core/dashboard/web/app/clipboard.js: copying text, with a fallback for pages the browser will not
// let write to the clipboard (plain http on another host than localhost).
// SPDX-License-Identifier: Apache-2.0

import {announce} from './dom.js';

/** Copies `text`; when the clipboard refuses, selects `fallbackElement`'s text instead. */
export async function copyText(text, fallbackElement) {
  try {
    await navigator.clipboard.writeText(text);
    announce('Copied.');
    return true;
  } catch {
    if (fallbackElement) {
      const range = document.createRange();
      range.selectNodeContents(fallbackElement);
      const selection = getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      announce('Could not copy; the text is selected, copy it with the keyboard.');
    }
    return false;
  }
}
