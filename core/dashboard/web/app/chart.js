// core/dashboard/web/app/chart.js: a hook's last hour as a small SVG bar chart, drawn by hand.
//
// One column a minute from GET .../activity: the events of that minute stacked by verdict
// (valid, unsigned, invalid), and below them a mark for each minute in which a delivery failed.
// Colours come from the style sheet through classes, so the chart follows the light or dark
// theme.
// SPDX-License-Identifier: Apache-2.0

import {svg} from './dom.js';

const kWidth = 240;
const kBarsHeight = 34;
const kMarkHeight = 3;
const kGap = 2;

/**
 * The chart of `activity` ({"bucket_ms", "buckets":[{at_ms, valid, invalid, unsigned,
 * delivered, failed}]}), with an accessible summary as its label.
 */
export function activityChart(activity) {
  const buckets = activity.buckets || [];
  const totals = {valid: 0, invalid: 0, unsigned: 0, delivered: 0, failed: 0};
  let tallest = 0;
  for (const bucket of buckets) {
    for (const key of Object.keys(totals)) totals[key] += bucket[key] || 0;
    tallest =
        Math.max(tallest, (bucket.valid || 0) + (bucket.invalid || 0) + (bucket.unsigned || 0));
  }
  const events = totals.valid + totals.invalid + totals.unsigned;
  const minutes = buckets.length;
  const label = `${events} events in the last ${minutes} minutes: ${totals.valid} valid, ` +
      `${totals.unsigned} unsigned, ${totals.invalid} invalid; ${totals.delivered} deliveries ` +
      `succeeded, ${totals.failed} failed`;

  const height = kBarsHeight + kGap + kMarkHeight;
  const chart =
      svg('svg', {
        class: 'activity-chart',
        viewBox: `0 0 ${kWidth} ${height}`,
        width: kWidth,
        height,
        role: 'img',
        'aria-label': label,
      },
          svg('title', {}, label));
  chart.appendChild(
      svg('line', {class: 'chart-base', x1: 0, x2: kWidth, y1: kBarsHeight, y2: kBarsHeight}));
  if (minutes === 0) return chart;

  const step = kWidth / minutes;
  const barWidth = Math.max(1, step - 1);
  const scale = tallest > 0 ? kBarsHeight / tallest : 0;
  buckets.forEach((bucket, i) => {
    const x = i * step;
    let top = kBarsHeight;
    for (const verdict of ['valid', 'unsigned', 'invalid']) {
      const count = bucket[verdict] || 0;
      if (count === 0) continue;
      const barHeight = Math.max(1, count * scale);
      top -= barHeight;
      chart.appendChild(svg('rect', {
        class: `bar-${verdict}`,
        x: x.toFixed(2),
        y: top.toFixed(2),
        width: barWidth.toFixed(2),
        height: barHeight.toFixed(2),
      }));
    }
    if (bucket.failed > 0) {
      chart.appendChild(svg('rect', {
        class: 'bar-failed',
        x: x.toFixed(2),
        y: kBarsHeight + kGap,
        width: barWidth.toFixed(2),
        height: kMarkHeight,
      }));
    }
  });
  return chart;
}
