// core/dashboard/web/app/virtual_list.js: a scrolling grid that keeps only the rows in view in the
// document.
//
// A hook may hold 100 000 events; a row element for each would make the page slow to scroll
// and to update. The list knows how many rows there are and how tall one is (the CSS variable
// --row-height, in px); it draws the rows in view plus a few on either side into a small pool of
// elements and moves that pool with two CSS variables set through the CSSOM (no style
// attribute, so the page's Content-Security-Policy needs no 'unsafe-inline').
//
// Keyboard: the grid is one tab stop; ArrowUp/ArrowDown or k/j move the active row, PageUp,
// PageDown, Home and End jump, Enter opens. The active row is announced through
// aria-activedescendant, so focus stays on the grid while rows come and go.
// SPDX-License-Identifier: Apache-2.0

import {el} from './dom.js';

// Browsers cap an element's height (near 33.5 million px in chromium, 17.9 million in
// firefox). Past kMaxSpacerPx the spacer stays that tall and a scroll position stands for a
// proportional place in the list, so that a hook with any number of events scrolls end to end.
export const kMaxSpacerPx = 8_000_000;

const kOverscanRows = 8;

export class VirtualList {
  /**
   * @param {object} options
   * @param {string} options.label the grid's accessible name
   * @param {string[]} options.columns column headings
   * @param {string} options.idPrefix prefix of row element ids
   * @param {(index: number, cells: HTMLElement[], row: HTMLElement) => void} options.renderRow
   *     fills the cells of row `index` (called only for rows in view)
   * @param {(index: number) => void} options.onOpen Enter or a click on row `index`
   * @param {(first: number, last: number) => void} [options.onRangeShown] rows first..last
   *     were drawn; used to load them
   */
  constructor({label, columns, idPrefix, renderRow, onOpen, onRangeShown = () => {}}) {
    this.columns = columns;
    this.idPrefix = idPrefix;
    this.renderRow = renderRow;
    this.onOpen = onOpen;
    this.onRangeShown = onRangeShown;
    this.count = 0;
    this.active = -1;
    this.pool = [];
    this.frame = 0;
    this.pinned = null;  // {listTop, scrollTop}: the last place scrollToListTop set

    this.header =
        el('div', {class: 'vlist-header', role: 'row', 'aria-rowindex': 1},
           columns.map((name) => el('span', {role: 'columnheader', class: 'vlist-cell'}, name)));
    this.rows = el('div', {class: 'vlist-rows', role: 'rowgroup'});
    this.spacer = el('div', {class: 'vlist-spacer'}, this.rows);
    this.viewport = el('div', {class: 'vlist-viewport'}, this.spacer);
    const head = el('div', {role: 'rowgroup', class: 'vlist-head'}, this.header);
    this.element = el('div', {
      class: 'vlist',
      role: 'grid',
      tabindex: 0,
      'aria-label': label,
      'aria-colcount': columns.length,
      on: {keydown: (event) => this.onKey(event)},
    });
    this.element.append(head, this.viewport);

    this.viewport.addEventListener('scroll', () => this.schedule(), {passive: true});
    this.resizeObserver = new ResizeObserver(() => this.schedule());
    this.resizeObserver.observe(this.viewport);
  }

  /** Stops observing; call when the view goes away. */
  destroy() {
    this.resizeObserver.disconnect();
    cancelAnimationFrame(this.frame);
  }

  rowHeight() {
    if (!this.cachedRowHeight) {
      const value = parseFloat(getComputedStyle(this.element).getPropertyValue('--row-height'));
      this.cachedRowHeight = value > 0 ? value : 32;
    }
    return this.cachedRowHeight;
  }

  /** Sets the number of rows and redraws. */
  setCount(count) {
    this.count = count;
    this.element.setAttribute('aria-rowcount', String(count + 1));
    this.spacer.style.setProperty('--spacer-height', `${this.spacerHeight()}px`);
    if (this.active >= count) this.setActive(count - 1, false);
    this.schedule();
  }

  /** The whole list's height, as if every row were drawn. */
  listHeight() {
    return this.count * this.rowHeight();
  }

  spacerHeight() {
    return Math.min(this.listHeight(), kMaxSpacerPx);
  }

  /**
   * How many list pixels one scrolled pixel stands for: 1 until the list is taller than the
   * spacer, then the ratio of what is left to scroll in each.
   */
  scrollScale() {
    const view = this.viewport.clientHeight;
    const scrollable = this.spacerHeight() - view;
    const listScrollable = this.listHeight() - view;
    if (scrollable <= 0 || listScrollable <= scrollable) return 1;
    return listScrollable / scrollable;
  }

  /** Where in the list the top of the viewport is. */
  listTop() {
    // A place set by the keyboard stays exact while the scroll position is the one it gave,
    // which the browser rounds; a scroll by the user moves away from it.
    const scrolled = this.viewport.scrollTop;
    if (this.pinned && Math.abs(scrolled - this.pinned.scrollTop) < 1) return this.pinned.listTop;
    this.pinned = null;
    return scrolled * this.scrollScale();
  }

  /** Scrolls so that the top of the viewport is at `top` in the list. */
  scrollToListTop(top) {
    const bottom = Math.max(0, this.listHeight() - this.viewport.clientHeight);
    const listTop = Math.max(0, Math.min(top, bottom));
    this.viewport.scrollTop = listTop / this.scrollScale();
    this.pinned = {listTop, scrollTop: this.viewport.scrollTop};
  }

  /** Redraws the rows in view, e.g. after their data arrived. */
  refresh() {
    this.schedule();
  }

  /**
   * Keeps the rows in view where they are after `added` rows were put in at the top (live
   * events), so that a reader is not pushed down the list.
   */
  insertedAtTop(added) {
    // The list is longer first: the place kept below is clamped to the list's height.
    this.setCount(this.count + added);
    if (this.active >= 0) this.active += added;
    if (this.viewport.scrollTop > 0)
      this.scrollToListTop(this.listTop() + added * this.rowHeight());
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  /** Draws now (the tests and the keyboard need the active row at once). */
  draw() {
    const height = this.rowHeight();
    const top = this.listTop();
    const visible = Math.ceil(this.viewport.clientHeight / height) + 1;
    const first = Math.max(0, Math.floor(top / height) - kOverscanRows);
    const last = Math.min(this.count - 1, first + visible + 2 * kOverscanRows);
    const wanted = Math.max(0, last - first + 1);

    // The pool grows to what a screen needs and is reused from then on.
    while (this.pool.length < wanted) this.pool.push(this.makeRow());
    while (this.pool.length > wanted) this.pool.pop().row.remove();

    // The drawn rows sit where the viewport is, shifted by how far the first one is above it.
    const offset = this.viewport.scrollTop + (first * height - top);
    this.rows.style.setProperty('--rows-offset', `${offset}px`);
    for (let i = 0; i < wanted; i++) {
      const index = first + i;
      const {row, cells} = this.pool[i];
      if (!row.isConnected || row.parentNode !== this.rows) this.rows.appendChild(row);
      row.id = `${this.idPrefix}-${index}`;
      row.dataset.index = String(index);
      row.setAttribute('aria-rowindex', String(index + 2));
      row.classList.toggle('is-active', index === this.active);
      row.setAttribute('aria-selected', index === this.active ? 'true' : 'false');
      this.renderRow(index, cells, row);
    }
    this.updateActiveDescendant();
    if (wanted > 0) this.onRangeShown(first, last);
  }

  makeRow() {
    const cells = this.columns.map(() => el('span', {role: 'gridcell', class: 'vlist-cell'}));
    const row =
        el('div', {
          class: 'vlist-row',
          role: 'row',
          on: {
            click: () => {
              const index = Number(row.dataset.index);
              this.setActive(index, false);
              this.element.focus({preventScroll: true});
              this.onOpen(index);
            },
          },
        },
           cells);
    return {row, cells};
  }

  /** Makes row `index` the active one and scrolls it into view when `reveal`. */
  setActive(index, reveal = true) {
    if (this.count === 0) {
      this.active = -1;
      this.updateActiveDescendant();
      return;
    }
    this.active = Math.max(0, Math.min(this.count - 1, index));
    if (reveal) this.reveal(this.active);
    this.draw();
  }

  reveal(index) {
    const height = this.rowHeight();
    const top = index * height;
    const listTop = this.listTop();
    const view = this.viewport.clientHeight;
    if (top < listTop) {
      this.scrollToListTop(top);
    } else if (top + height > listTop + view) {
      this.scrollToListTop(top + height - view);
    }
  }

  updateActiveDescendant() {
    const inView = this.active >= 0 && document.getElementById(`${this.idPrefix}-${this.active}`);
    if (inView) {
      this.element.setAttribute('aria-activedescendant', `${this.idPrefix}-${this.active}`);
    } else {
      this.element.removeAttribute('aria-activedescendant');
    }
  }

  onKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const page = Math.max(1, Math.floor(this.viewport.clientHeight / this.rowHeight()) - 1);
    const from = this.active < 0 ? -1 : this.active;
    const moves = {
      ArrowDown: from + 1,
      j: from + 1,
      ArrowUp: Math.max(0, from - 1),
      k: Math.max(0, from - 1),
      PageDown: from + page,
      PageUp: Math.max(0, from - page),
      Home: 0,
      End: this.count - 1,
    };
    if (event.key in moves) {
      event.preventDefault();
      this.setActive(moves[event.key]);
      return;
    }
    if (event.key === 'Enter' && this.active >= 0) {
      event.preventDefault();
      this.onOpen(this.active);
    }
  }
}
