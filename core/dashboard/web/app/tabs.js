// core/dashboard/web/app/tabs.js: a tab list by the ARIA pattern: one tab stop, arrows move and
// select, Home and End.
// SPDX-License-Identifier: Apache-2.0

import {el} from './dom.js';

/**
 * Tabs over `panels` ([{id, label, content}]). Returns {element, select(id)}. The selected
 * tab is the only one in the tab order; its panel is the only one shown.
 */
export function tabs(label, panels, selectedId = panels[0].id) {
  const tabButtons = [];
  const panelElements = [];
  const list = el('div', {role: 'tablist', 'aria-label': label, class: 'tablist'});
  for (const panel of panels) {
    const tab =
        el('button', {
          type: 'button',
          role: 'tab',
          id: `tab-${panel.id}`,
          'aria-controls': `panel-${panel.id}`,
          class: 'tab',
          on: {click: () => select(panel.id)},
        },
           panel.label);
    const body =
        el('section', {
          role: 'tabpanel',
          id: `panel-${panel.id}`,
          'aria-labelledby': `tab-${panel.id}`,
          tabindex: 0,
          class: 'tabpanel',
        },
           panel.content);
    tabButtons.push(tab);
    panelElements.push(body);
    list.appendChild(tab);
  }

  list.addEventListener('keydown', (event) => {
    const at = tabButtons.indexOf(document.activeElement);
    if (at < 0) return;
    const moves = {
      ArrowRight: (at + 1) % tabButtons.length,
      ArrowLeft: (at - 1 + tabButtons.length) % tabButtons.length,
      Home: 0,
      End: tabButtons.length - 1,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    select(panels[moves[event.key]].id);
    tabButtons[moves[event.key]].focus();
  });

  function select(id) {
    panels.forEach((panel, i) => {
      const selected = panel.id === id;
      tabButtons[i].setAttribute('aria-selected', String(selected));
      tabButtons[i].tabIndex = selected ? 0 : -1;
      panelElements[i].hidden = !selected;
    });
  }

  select(selectedId);
  return {element: el('div', {class: 'tabs'}, list, panelElements), select};
}
