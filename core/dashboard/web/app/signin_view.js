// core/dashboard/web/app/signin_view.js: the form that exchanges a personal access token for a
// session.
// SPDX-License-Identifier: Apache-2.0

import {ApiError} from './api.js';
import {el} from './dom.js';
import {signIn} from './session.js';

export function signInView(main, {onSignedIn}) {
  const input = el('input', {
    id: 'pat',
    name: 'pat',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    placeholder: 'anm_pat_…',
    'aria-describedby': 'pat-help signin-error',
  });
  const error = el('p', {id: 'signin-error', class: 'error', role: 'alert'});
  const button = el('button', {type: 'submit'}, 'Sign in');
  const form = el(
      'form', {class: 'signin', 'aria-labelledby': 'signin-title'},
      el('h1', {id: 'signin-title'}, 'Sign in'),
      el('label', {'for': 'pat'}, 'Personal access token'), input,
      el('p', {id: 'pat-help', class: 'hint'}, 'Create one with ',
         el('code', {}, 'anonymily tokens create'),
         ', or use the owner token the edge wrote at its first start. ',
         'It is sent once and not kept by the page: the edge answers with a short-lived session.'),
      error, button);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    button.disabled = true;
    try {
      await signIn(input.value.trim());
      input.value = '';
      onSignedIn();
    } catch (failure) {
      error.textContent =
          failure instanceof ApiError ? failure.message : 'The edge could not be reached.';
      input.focus();
      input.select();
    } finally {
      button.disabled = false;
    }
  });

  main.appendChild(form);
  input.focus();
  return {destroy() {}, back: null};
}
