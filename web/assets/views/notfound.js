// Any path that is not a client route.

import { h } from '../ui.js';

export function notFoundView() {
  document.title = 'Page not found · AudioStorm';
  return h('div.page-message',
    h('p.eyebrow', '404'),
    h('h1', 'This page went quiet'),
    h('p.muted', 'The link may be broken, or the page may have been removed.'),
    h('a.btn.btn-primary', { href: '/' }, 'Back to home'),
  );
}
