// core/dashboard/web/app/events_model.js: a hook's events newest first, paged from the edge as the
// list needs them, and kept current by the hook's live stream.
//
// Pages come from GET .../events?order=desc&before=<id>&limit=200 (with q= for a search), one
// request at a time and only as far down as the list has been scrolled. Live events come from
// GET .../watch (Server-Sent Events, with the session cookie). The stream is opened before the
// first page is asked for, and what it brings in the meantime is held back and merged by id,
// so that an event stored between the two is neither lost nor shown twice.
// SPDX-License-Identifier: Apache-2.0

import {api, hookPath, queryString} from './api.js';

const kPageSize = 200;
// Most deliveries a summary keeps, as the API does (kMaxListedDeliveries).
const kListedDeliveries = 20;

export class EventsModel {
  /**
   * @param {string} hookId
   * @param {string} query the search, '' for every event
   * @param {() => void} onChange called when rows, counts or the stream's state change
   */
  constructor(hookId, query, onChange) {
    this.hookId = hookId;
    this.query = query;
    this.onChange = onChange;
    this.rows = [];
    this.byId = new Map();
    this.nextBefore = null;  // null: no page asked for yet; 0: no more
    this.total = null;       // the hook's event count, when known (never for a search)
    this.scanned = 0;
    this.loading = false;
    this.wantedIndex = -1;
    this.error = null;
    this.liveState = 'connecting';
    this.unmatchedLive = 0;  // events that arrived during a search and are not in the rows
    this.pendingLive = [];
    this.closed = false;
    this.firstPageDone = false;
    this.openStream();
  }

  /** Rows the list should have: the loaded ones, the known rest, one for "loading more". */
  rowCount() {
    if (this.error) return this.rows.length;
    if (this.total !== null && this.query === '') return Math.max(this.total, this.rows.length);
    return this.rows.length + (this.nextBefore === 0 ? 0 : 1);
  }

  /** Makes sure rows up to `index` are loaded (or being loaded). */
  want(index) {
    this.wantedIndex = Math.max(this.wantedIndex, index);
    this.pump();
  }

  close() {
    this.closed = true;
    if (this.stream) this.stream.close();
  }

  async pump() {
    if (this.loading || this.closed || !this.firstPageAllowed) return;
    this.loading = true;
    try {
      while (!this.closed && this.nextBefore !== 0 && this.rows.length <= this.wantedIndex) {
        await this.loadPage();
        this.onChange();
      }
    } catch (error) {
      this.error = error;
      this.onChange();
    } finally {
      this.loading = false;
    }
  }

  async loadPage() {
    const page = await api('GET', hookPath(this.hookId, 'events') + queryString({
                                    order: 'desc',
                                    before: this.nextBefore || '',
                                    limit: kPageSize,
                                    q: this.query,
                                  }));
    if (this.closed) return;
    for (const summary of page.events) {
      if (this.byId.has(summary.id)) continue;
      this.byId.set(summary.id, summary);
      this.rows.push(summary);
    }
    this.scanned += page.scanned || 0;
    this.nextBefore = page.next_before || 0;
    if (this.nextBefore === 0 && this.query === '') this.total = this.rows.length;
    if (!this.firstPageDone) {
      this.firstPageDone = true;
      this.mergePendingLive();
    }
  }

  async loadCount() {
    if (this.query !== '') return;
    try {
      const {count} = await api('GET', hookPath(this.hookId, 'events', 'count'));
      // A count read after the pages ended is no better than the rows themselves. Live events
      // that came meanwhile may be in it or not; the end of the list sets it right.
      if (!this.closed && this.nextBefore !== 0) this.total = count;
      this.onChange();
    } catch {
      // Without a count the list grows as it is scrolled.
    }
  }

  /** Allows the first page once the stream is open (or could not be), then loads it. */
  allowPages() {
    if (this.firstPageAllowed) return;
    this.firstPageAllowed = true;
    this.loadCount();
    this.want(0);
  }

  openStream() {
    // Same origin: the browser sends the session cookie. On a dropped connection EventSource
    // reconnects by itself with Last-Event-ID, and the edge resumes after that event.
    this.stream = new EventSource(hookPath(this.hookId, 'watch'));
    this.stream.addEventListener('open', () => {
      this.liveState = 'live';
      this.allowPages();
      this.onChange();
    });
    this.stream.addEventListener('error', () => {
      this.liveState = this.stream.readyState === EventSource.CLOSED ? 'off' : 'reconnecting';
      this.allowPages();
      this.onChange();
    });
    this.stream.addEventListener('summary', (message) => this.onSummary(JSON.parse(message.data)));
    this.stream.addEventListener(
        'delivery', (message) => this.onDelivery(JSON.parse(message.data)));
  }

  onSummary(summary) {
    if (!this.firstPageDone) {
      this.pendingLive.push(summary);
      return;
    }
    this.addLive([summary]);
  }

  mergePendingLive() {
    const pending = this.pendingLive;
    this.pendingLive = [];
    this.addLive(pending);
  }

  /** Puts new events at the top, newest first, skipping those already listed. */
  addLive(summaries) {
    const newest = this.rows.length > 0 ? this.rows[0].id : 0;
    const fresh =
        summaries.filter((s) => s.id > newest && !this.byId.has(s.id)).sort((a, b) => b.id - a.id);
    if (fresh.length === 0) return;
    // A search cannot tell whether a new event matches; it says how many came instead.
    if (this.query !== '') {
      this.unmatchedLive += fresh.length;
      this.onChange();
      return;
    }
    for (const summary of fresh) this.byId.set(summary.id, summary);
    this.rows.unshift(...fresh);
    if (this.total !== null) this.total += fresh.length;
    this.onInserted(fresh.length);
    // The count and the status change too; without a relay no delivery report would redraw them.
    this.onChange();
  }

  /** Set by the view: `count` rows were put in at the top. */
  onInserted() {}

  onDelivery(report) {
    const summary = this.byId.get(report.event);
    if (!summary) return;
    const {event: _event, ...delivery} = report;
    summary.deliveries = [...(summary.deliveries || []), delivery].slice(-kListedDeliveries);
    summary.deliveries_total = (summary.deliveries_total || 0) + 1;
    this.onChange();
  }
}

/** The latest delivery per relay, in the order relays first reported. */
export function latestPerRelay(deliveries = []) {
  const latest = new Map();
  for (const delivery of deliveries) latest.set(delivery.relay, delivery);
  return [...latest.values()];
}
