// History-API router. Client routes use singular nouns (/song/…, /user/…) so they never collide
// with the API's plural prefixes (/songs, /users) on the same origin.

const routes = [];
let outlet = null;
let current = null; // {cleanup, controller}
let notFound = null;
let onChange = () => {};

/** Registers `pattern` ("/song/:id") → `view(ctx)` returning an Element (or a Promise of one). */
export function route(pattern, view) {
  const keys = [];
  const re = new RegExp('^' + pattern.replace(/\/:(\w+)/g, (_, k) => { keys.push(k); return '/([^/]+)'; }) + '/?$');
  routes.push({ re, keys, view, pattern });
}

export function setNotFound(view) {
  notFound = view;
}

/** Called after every navigation with the matched pattern. */
export function onRouteChange(fn) {
  onChange = fn;
}

export function navigate(to, { replace = false } = {}) {
  const url = new URL(to, location.origin);
  if (url.origin !== location.origin) { location.href = to; return; }
  const target = url.pathname + url.search + url.hash;
  if (!replace) {
    // Remember where we were, to restore it on Back.
    history.replaceState({ ...(history.state || {}), scroll: window.scrollY }, '');
    history.pushState({ scroll: 0 }, '', target);
  } else {
    history.replaceState({ scroll: 0 }, '', target);
  }
  render();
}

/** Re-renders the current route (e.g. after sign-in/out). */
export function refresh() {
  render({ keepScroll: true });
}

export function start(el) {
  outlet = el;
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = e.target.closest('a[href]');
    if (!a || a.target || a.hasAttribute('download') || a.dataset.external !== undefined) return;
    const url = new URL(a.href, location.origin);
    if (url.origin !== location.origin || !isClientRoute(url.pathname)) return;
    e.preventDefault();
    if (url.pathname + url.search === location.pathname + location.search && url.hash) { location.hash = url.hash; return; }
    navigate(url.pathname + url.search + url.hash);
  });
  window.addEventListener('popstate', (e) => render({ scroll: e.state && e.state.scroll }));
  if ('scrollRestoration' in history) history.scrollRestoration = 'manual';
  render();
}

function isClientRoute(path) {
  return routes.some((r) => r.re.test(path));
}

async function render({ scroll = 0, keepScroll = false } = {}) {
  const path = location.pathname;
  let match = null;
  let params = {};
  for (const r of routes) {
    const m = r.re.exec(path);
    if (m) {
      match = r;
      r.keys.forEach((k, i) => { params[k] = decodeURIComponent(m[i + 1]); });
      break;
    }
  }
  if (current) {
    current.controller.abort();
    if (typeof current.cleanup === 'function') try { current.cleanup(); } catch { /* view already gone */ }
  }
  const controller = new AbortController();
  const ctx = {
    params,
    query: new URLSearchParams(location.search),
    signal: controller.signal,
    path,
    cleanup: null,
    /** Views register teardown (timers, listeners) here. */
    onLeave(fn) { const prev = ctx.cleanup; ctx.cleanup = () => { if (prev) prev(); fn(); }; },
  };
  current = { controller, get cleanup() { return ctx.cleanup; } };
  const view = match ? match.view : notFound;
  onChange(match ? match.pattern : null, ctx);
  outlet.setAttribute('aria-busy', 'true');
  let el;
  try {
    el = await view(ctx);
  } catch (err) {
    if (controller.signal.aborted) return;
    el = errorView(err);
  }
  if (controller.signal.aborted) return; // a newer navigation won
  outlet.replaceChildren(el);
  outlet.setAttribute('aria-busy', 'false');
  if (!keepScroll) window.scrollTo(0, scroll || 0);
  if (location.hash.length > 1 && !keepScroll) {
    const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target) setTimeout(() => target.scrollIntoView({ block: 'start' }), 60);
  }
  // Move focus to the new page's heading so screen readers and keyboards start there.
  const heading = outlet.querySelector('h1');
  if (heading && !keepScroll) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

function errorView(err) {
  const div = document.createElement('div');
  div.className = 'page-message';
  const h1 = document.createElement('h1');
  h1.textContent = err && err.status === 404 ? 'Not found' : 'Something went wrong';
  const p = document.createElement('p');
  p.textContent = (err && err.message) || String(err);
  const a = document.createElement('a');
  a.href = '/';
  a.className = 'btn btn-primary';
  a.textContent = 'Back to home';
  div.append(h1, p, a);
  return div;
}
