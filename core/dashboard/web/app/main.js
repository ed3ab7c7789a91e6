// core/dashboard/web/app/main.js: the dashboard's start, its routes and its keyboard shortcuts.
//
// Views are addressed by the URL fragment (docs/dashboard.md): #/hooks, #/hooks/<id>,
// #/hooks/<id>/events/<n> and #/hooks/<id>/issues. Each view is a function that fills the main
// element and returns {destroy, back}, where back is where Esc leads.
// SPDX-License-Identifier: Apache-2.0

import {whenSignedOut} from './api.js';
import {announce} from './dom.js';
import {eventView} from './event_view.js';
import {eventsView} from './events_view.js';
import {hooksView} from './hooks_view.js';
import {issuesView} from './issues_view.js';
import {currentSession, dropSession, resume, signOut, whenExpired} from './session.js';
import {signInView} from './signin_view.js';

const main = document.getElementById('main');
let currentView = null;

/** The view for a fragment, with its parameters. */
function routeOf(hash) {
  const path = hash.replace(/^#/, '');
  const [route, query = ''] = path.split('?');
  const parts = route.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  if (parts[0] !== 'hooks') return {view: hooksView, params: {}};
  if (parts.length === 1) return {view: hooksView, params: {}};
  const hookId = parts[1];
  if (parts.length === 2) return {view: eventsView, params: {hookId, query: params.get('q') || ''}};
  if (parts[2] === 'issues') return {view: issuesView, params: {hookId}};
  if (parts[2] === 'events' && /^[0-9]+$/.test(parts[3] || '')) {
    return {view: eventView, params: {hookId, eventId: Number(parts[3])}};
  }
  return {view: hooksView, params: {}};
}

function show() {
  if (currentView) currentView.destroy();
  currentView = null;
  main.textContent = '';
  if (!currentSession()) {
    currentView = signInView(main, {onSignedIn: signedIn});
    setAccountBar();
    return;
  }
  const {view, params} = routeOf(location.hash);
  currentView = view(main, params);
  setAccountBar();
}

function setAccountBar() {
  const session = currentSession();
  document.getElementById('account').hidden = !session;
  document.getElementById('account-name').textContent =
      session ? `${session.member.name} · ${session.account.name}` : '';
}

function signedIn() {
  // A new fragment shows its view through hashchange; the same one is shown here.
  if (!location.hash || location.hash === '#') {
    location.hash = '#/hooks';
    return;
  }
  show();
  main.focus();
}

function signedOut(message) {
  dropSession();
  show();
  if (message) announce(message);
}

/** Whether a key press is meant for a text field rather than for a shortcut. */
function isTyping(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  if (target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  if (target instanceof HTMLInputElement) {
    return !['button', 'checkbox', 'radio', 'submit', 'reset'].includes(target.type);
  }
  return false;
}

function onKey(event) {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  if (document.querySelector('dialog[open]')) return;
  const typing = isTyping(event.target);

  if (event.key === 'Escape') {
    // In a field, Esc first leaves the field; a second Esc goes back.
    if (typing) {
      event.target.blur();
      return;
    }
    if (currentView && currentView.back) {
      event.preventDefault();
      location.hash = currentView.back;
    }
    return;
  }
  if (typing) return;

  if (event.key === '/') {
    const search = main.querySelector('[data-shortcut="search"]');
    if (search) {
      event.preventDefault();
      search.focus();
      search.select();
    }
    return;
  }
  if (event.key === '?') {
    event.preventDefault();
    document.getElementById('shortcuts').showModal();
    return;
  }

  // j, k and the arrows reach the list from anywhere outside a field.
  if (['j', 'k', 'ArrowDown', 'ArrowUp'].includes(event.key)) {
    const list = main.querySelector('[role="grid"]');
    if (list && document.activeElement !== list && !list.contains(document.activeElement)) {
      event.preventDefault();
      list.focus();
      list.dispatchEvent(new KeyboardEvent('keydown', {key: event.key, bubbles: false}));
    }
    return;
  }

  // ← and → switch an event's tabs from anywhere outside a field, as on the tab bar itself. A
  // radio button keeps them: they choose within its group.
  if (event.key === 'ArrowLeft' || event.key === 'ArrowRight') {
    const tabList = main.querySelector('[role="tablist"]');
    const radio = event.target instanceof HTMLInputElement && event.target.type === 'radio';
    if (tabList && !radio && !tabList.contains(document.activeElement)) {
      event.preventDefault();
      tabList.querySelector('[role="tab"][aria-selected="true"]').focus();
      tabList.dispatchEvent(new KeyboardEvent('keydown', {key: event.key, bubbles: false}));
    }
  }
}

async function start() {
  whenSignedOut(() => signedOut('The session ended; sign in again.'));
  whenExpired(() => signedOut('The session expired; sign in again.'));
  document.getElementById('sign-out').addEventListener('click', async () => {
    await signOut();
    signedOut('Signed out.');
  });
  document.getElementById('shortcuts-button').addEventListener('click', () => {
    document.getElementById('shortcuts').showModal();
  });
  document.addEventListener('keydown', onKey);
  window.addEventListener('hashchange', () => {
    show();
    main.focus({preventScroll: true});
  });

  try {
    await resume();
  } catch {
    // An edge that cannot answer now: the sign-in view says so when it is used.
  }
  show();
}

start();
