// core/dashboard/web/app/format.js: times, sizes and statuses as the views show them.
// SPDX-License-Identifier: Apache-2.0

const timeOfDay = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});
const fullDate = new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeStyle: 'medium'});

/** "14:03:07.125": the time of day with milliseconds, which tell close events apart. */
export function clockTime(ms) {
  const date = new Date(ms);
  return `${timeOfDay.format(date)}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

/** The full local date and time, for a title or a detail line. */
export function dateTime(ms) {
  return fullDate.format(new Date(ms));
}

/** "3 min ago", or "never" for 0. */
export function ago(ms, now = Date.now()) {
  if (!ms) return 'never';
  const seconds = Math.max(0, Math.round((now - ms) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.round(hours / 24)} days ago`;
}

/** Bytes in binary units: "512 B", "1.5 KiB". */
export function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** The class a delivery status is drawn with: ok (2xx), redirect (3xx) or failed. */
export function deliveryClass(delivery) {
  if (delivery.status >= 200 && delivery.status < 300) return 'ok';
  if (delivery.status >= 300 && delivery.status < 400) return 'redirect';
  return 'failed';
}

/** A delivery in a few characters: its status, or what went wrong when no answer came. */
export function deliveryLabel(delivery) {
  if (delivery.status > 0) return String(delivery.status);
  return delivery.error || 'no answer';
}
