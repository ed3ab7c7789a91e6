// core/dashboard/web/app/session.js: signing in with a personal access token, keeping the session
// alive while the page is open, and signing out (docs/dashboard.md, "Signing in").
//
// The edge turns the PAT into a short-lived access token held in an HttpOnly cookie: the page
// never sees a token after sending the PAT once, and keeps nothing in storage.
// SPDX-License-Identifier: Apache-2.0

import {api, ApiError} from './api.js';

// Renew this long before the access token expires, as the CLI does.
const kRenewAheadMs = 60_000;
// Never renew more often than this, whatever the clocks say.
const kShortestRenewDelayMs = 5_000;

let renewTimer = 0;
let current = null;

/** The signed-in account and member, or null. */
export function currentSession() {
  return current;
}

/** Signs in with `pat`; resolves to the session, rejects with ApiError. */
export async function signIn(pat) {
  return started(await api('POST', '/api/v1/auth/session', {token: pat}));
}

/**
 * Picks up a session the cookie still holds (a reload) by renewing it, which also says when it
 * expires. Resolves to the session, or null when there is none.
 */
export async function resume() {
  try {
    return started(await api('POST', '/api/v1/auth/session/renew'));
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) return null;
    throw error;
  }
}

/** Ends the session on the edge and here. */
export async function signOut() {
  stopRenewing();
  current = null;
  try {
    await api('DELETE', '/api/v1/auth/session');
  } catch {
    // The cookie may already be gone; the page forgets the session either way.
  }
}

/** Forgets the session without asking the edge (it told us the session is gone). */
export function dropSession() {
  stopRenewing();
  current = null;
}

let onExpired = () => {};

/** Called when a renewal fails and the member has to sign in again. */
export function whenExpired(listener) {
  onExpired = listener;
}

function started(answer) {
  current = {account: answer.account, member: answer.member, expiresAtMs: answer.expires_at_ms};
  scheduleRenewal(answer.expires_at_ms);
  return current;
}

function scheduleRenewal(expiresAtMs) {
  stopRenewing();
  const delay = Math.max(kShortestRenewDelayMs, expiresAtMs - Date.now() - kRenewAheadMs);
  renewTimer = setTimeout(async () => {
    try {
      started(await api('POST', '/api/v1/auth/session/renew'));
    } catch {
      current = null;
      onExpired();
    }
  }, delay);
}

function stopRenewing() {
  clearTimeout(renewTimer);
  renewTimer = 0;
}
