// core/dashboard/web/app/api.js: the REST API (docs/protocol.md, docs/dashboard.md) from the page.
//
// Requests go to this origin with the session cookie, which the page's scripts cannot read;
// every request that changes something carries X-Anonymily-CSRF, which another site cannot
// make a browser send.
// SPDX-License-Identifier: Apache-2.0

const kCsrfHeader = 'X-Anonymily-CSRF';

/** A refusal from the API: the status and the parsed {"error", ...} body. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body && typeof body.error === 'string' ? body.error : `the edge answered ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

let onSignedOut = () => {};

/**
 * Called with no arguments when a request finds the session gone (401 from an account route),
 * so that the page can ask to sign in again.
 */
export function whenSignedOut(listener) {
  onSignedOut = listener;
}

/**
 * A request to `path` (starting with /api/v1/). `body` is sent as JSON when given. Resolves
 * to the parsed JSON answer (null for 204), rejects with ApiError for any other status.
 */
export async function api(method, path, body) {
  const headers = {Accept: 'application/json'};
  if (method !== 'GET' && method !== 'HEAD') headers[kCsrfHeader] = '1';
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
  });
  const parsed = await parsedBody(response);
  if (response.ok) return parsed;
  if (response.status === 401 && !path.startsWith('/api/v1/auth/')) onSignedOut();
  throw new ApiError(response.status, parsed);
}

async function parsedBody(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return {error: text.slice(0, 200)};
  }
}

/**
 * /api/v1/hooks/<id>/<rest...> with each segment escaped. ':' and '@' may stand in a path
 * segment as they are (RFC 3986 pchar) and are left so: an issue key is "<code>:<status>".
 */
export function hookPath(hookId, ...rest) {
  const segment = (part) => encodeURIComponent(part).replace(/%3A/gi, ':').replace(/%40/g, '@');
  return ['/api/v1/hooks', ...[hookId, ...rest].map(segment)].join('/');
}

/** A query string from an object, skipping null, undefined and '' values. */
export function queryString(parameters) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(parameters)) {
    if (value === null || value === undefined || value === '') continue;
    search.set(name, String(value));
  }
  const text = search.toString();
  return text ? '?' + text : '';
}
