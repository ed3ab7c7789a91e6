// core/dashboard/web/app/dom.js: building elements without ever parsing text as HTML.
//
// Webhook contents are written by whoever posted them. Everything the dashboard shows goes
// through el() and append(), which set textContent and attributes only, so no byte of a webhook
// can become markup or script.
// SPDX-License-Identifier: Apache-2.0

/**
 * An element with attributes and children: el('a', {href: '#/hooks', class: 'nav'}, 'Hooks').
 * Attribute values are set with setAttribute (never innerHTML); `on` maps event names to
 * listeners; null, undefined and false attributes and children are skipped.
 */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  return fill(element, attributes, children);
}

/** The same in the SVG namespace, for the hand-made charts. */
export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS('http://www.w3.org/2000/svg', tag);
  return fill(element, attributes, children);
}

function fill(element, attributes, children) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'on') {
      for (const [event, listener] of Object.entries(value)) {
        element.addEventListener(event, listener);
      }
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

/** Appends children: nodes as they are, strings and numbers as text, arrays flattened. */
export function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) {
      append(parent, child);
    } else if (child instanceof Node) {
      parent.appendChild(child);
    } else {
      parent.appendChild(document.createTextNode(String(child)));
    }
  }
}

/** Replaces every child of `parent`. */
export function replaceChildren(parent, ...children) {
  parent.textContent = '';
  append(parent, children);
}

/** Writes `message` into the page's polite live region, for screen readers. */
export function announce(message) {
  const region = document.getElementById('announcer');
  if (!region) return;
  // Clearing first makes a repeated message be read again.
  region.textContent = '';
  requestAnimationFrame(() => {
    region.textContent = message;
  });
}
