// Small DOM helpers shared by every view. User content only ever goes in through text nodes and
// attributes (never innerHTML), so titles, names and reviews cannot inject markup.

/**
 * h('div.card#x', {attrs, on: {click}}, ...children) → Element.
 * Keys: `class`, `dataset`, `style` (object), `on` (events), `text`; other keys become attributes
 * (booleans: present/absent; null/undefined: skipped).
 */
export function h(tag, props, ...children) {
  const m = /^([a-z0-9-]+)?((?:[.#][\w-]+)*)$/i.exec(tag);
  const el = document.createElement((m && m[1]) || 'div');
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') el.classList.add(part.slice(1)); else el.id = part.slice(1);
    }
  }
  if (props && (typeof props !== 'object' || props instanceof Node || Array.isArray(props))) {
    children.unshift(props);
    props = null;
  }
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className += (el.className ? ' ' : '') + v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'style') Object.assign(el.style, v);
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      else if (k === 'text') el.textContent = v;
      else if (k === 'html') el.append(v); // only trusted nodes (icons)
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

/** Replaces `el`'s children, skipping null/false (DOM's replaceChildren would print "null"). */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// ---------------------------------------------------------------------------------------------
// Icons (inline SVG, currentColor)

const ICONS = {
  play: '<path d="M8 5.14v13.72a1 1 0 0 0 1.52.85l10.56-6.86a1 1 0 0 0 0-1.7L9.52 4.29A1 1 0 0 0 8 5.14z"/>',
  pause: '<rect x="6" y="4.5" width="4" height="15" rx="1.2"/><rect x="14" y="4.5" width="4" height="15" rx="1.2"/>',
  prev: '<path d="M6 5h2v14H6zM20 5.8v12.4a.8.8 0 0 1-1.25.66L9.5 12.66a.8.8 0 0 1 0-1.32l9.25-6.2A.8.8 0 0 1 20 5.8z"/>',
  next: '<path d="M16 5h2v14h-2zM4 5.8v12.4a.8.8 0 0 0 1.25.66l9.25-6.2a.8.8 0 0 0 0-1.32L5.25 5.14A.8.8 0 0 0 4 5.8z"/>',
  heart: '<path d="M12 20.3s-7.6-4.6-9.3-9.4C1.5 7.4 3.6 4 7 4c2 0 3.6 1.1 5 3 1.4-1.9 3-3 5-3 3.4 0 5.5 3.4 4.3 6.9-1.7 4.8-9.3 9.4-9.3 9.4z"/>',
  heartOutline: '<path fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round" d="M12 20.3s-7.6-4.6-9.3-9.4C1.5 7.4 3.6 4 7 4c2 0 3.6 1.1 5 3 1.4-1.9 3-3 5-3 3.4 0 5.5 3.4 4.3 6.9-1.7 4.8-9.3 9.4-9.3 9.4z"/>',
  plays: '<path d="M7 4.8v14.4a.8.8 0 0 0 1.2.7l11.4-7.2a.8.8 0 0 0 0-1.4L8.2 4.1a.8.8 0 0 0-1.2.7z"/>',
  volume: '<path d="M4 9.5v5a1 1 0 0 0 1 1h3l4.4 3.7a.6.6 0 0 0 1-.46V5.26a.6.6 0 0 0-1-.46L8 8.5H5a1 1 0 0 0-1 1z"/><path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" d="M16.5 8.5a5 5 0 0 1 0 7M19 6a8.5 8.5 0 0 1 0 12"/>',
  mute: '<path d="M4 9.5v5a1 1 0 0 0 1 1h3l4.4 3.7a.6.6 0 0 0 1-.46V5.26a.6.6 0 0 0-1-.46L8 8.5H5a1 1 0 0 0-1 1z"/><path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" d="M16.5 9.5l5 5m0-5l-5 5"/>',
  upload: '<path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" d="M12 15V4m0 0L7.5 8.5M12 4l4.5 4.5M4 15v3a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-3"/>',
  cloud: '<path fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round" d="M7 18.5h10.5a4 4 0 0 0 .6-7.96A6 6 0 0 0 6.4 9.1 4.7 4.7 0 0 0 7 18.5z"/><path fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round" d="M12 16v-6m0 0-2.5 2.5M12 10l2.5 2.5"/>',
  user: '<circle cx="12" cy="8" r="4"/><path d="M4 20.2c0-3.9 3.6-6.2 8-6.2s8 2.3 8 6.2c0 .4-.3.8-.8.8H4.8a.8.8 0 0 1-.8-.8z"/>',
  check: '<path fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round" d="M5 12.5l4.5 4.5L19 7.5"/>',
  flag: '<path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" d="M5 21V4m0 0h11l-2 4 2 4H5"/>',
  thumb: '<path fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round" d="M7 11v9H4v-9h3zm0 0 4-7c1.7 0 2.6 1.2 2.2 2.8L12.6 10H18a2 2 0 0 1 2 2.3l-1.1 6A2 2 0 0 1 16.9 20H7"/>',
  star: '<path d="M12 2.8l2.8 5.8 6.3.9-4.6 4.4 1.1 6.3L12 17.2l-5.6 3 1.1-6.3-4.6-4.4 6.3-.9z"/>',
  arrow: '<path fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round" d="M5 12h14m-6-6 6 6-6 6"/>',
  chevron: '<path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" d="M6 9l6 6 6-6"/>',
  clock: '<circle cx="12" cy="12" r="8.5" fill="none" stroke="currentColor" stroke-width="2"/><path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" d="M12 7.5V12l3 2"/>',
  link: '<path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" d="M10 14a4.5 4.5 0 0 0 6.4 0l3-3a4.5 4.5 0 0 0-6.4-6.4l-1 1M14 10a4.5 4.5 0 0 0-6.4 0l-3 3a4.5 4.5 0 0 0 6.4 6.4l1-1"/>',
  lock: '<rect x="5" y="10.5" width="14" height="10" rx="2"/><path fill="none" stroke="currentColor" stroke-width="2" d="M8 10.5V8a4 4 0 0 1 8 0v2.5"/>',
};

/** An inline SVG icon (aria-hidden: the button around it carries the label). */
export function icon(name, size = 20, cls = '') {
  const span = document.createElement('span');
  span.className = 'icon ' + cls;
  span.setAttribute('aria-hidden', 'true');
  // Trusted, static markup from the table above.
  span.innerHTML = `<svg viewBox="0 0 24 24" width="${size}" height="${size}" fill="currentColor" focusable="false">${ICONS[name] || ''}</svg>`;
  return span;
}

export function setIcon(el, name, size = 20) {
  el.replaceChildren(icon(name, size));
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** 75.3 → "1:15"; 3725 → "1:02:05". */
export function formatTime(sec) {
  if (!Number.isFinite(sec) || sec < 0) sec = 0;
  sec = Math.floor(sec);
  const h = Math.floor(sec / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = String(sec % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** 1234 → "1.2K". */
export function formatCount(n) {
  n = Number(n) || 0;
  if (n < 1000) return String(n);
  if (n < 1_000_000) return (n / 1000).toFixed(n < 10_000 ? 1 : 0).replace(/\.0$/, '') + 'K';
  return (n / 1_000_000).toFixed(1).replace(/\.0$/, '') + 'M';
}

export function plural(n, one, many = one + 's') {
  return `${formatCount(n)} ${Number(n) === 1 ? one : many}`;
}

const RTF = typeof Intl !== 'undefined' && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat('en', { numeric: 'auto' }) : null;
/** "3 days ago". */
export function timeAgo(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  const s = (t - Date.now()) / 1000;
  const units = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400], ['hour', 3600], ['minute', 60]];
  for (const [u, size] of units) {
    if (Math.abs(s) >= size) return RTF ? RTF.format(Math.round(s / size), u) : `${Math.round(-s / size)} ${u}s ago`;
  }
  return 'just now';
}

export function formatDate(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  return new Date(t).toLocaleDateString('en', { year: 'numeric', month: 'short', day: 'numeric' });
}

// ---------------------------------------------------------------------------------------------
// Artwork and avatars

function hash(str) {
  let x = 2166136261;
  for (let i = 0; i < str.length; i++) { x ^= str.charCodeAt(i); x = Math.imul(x, 16777619); }
  return x >>> 0;
}

const PALETTES = [
  ['#ff5a1f', '#ff2d6f'], ['#7c3aed', '#ec4899'], ['#0ea5e9', '#6366f1'], ['#10b981', '#0ea5e9'],
  ['#f59e0b', '#ef4444'], ['#8b5cf6', '#06b6d4'], ['#f43f5e', '#f97316'], ['#14b8a6', '#a3e635'],
  ['#6366f1', '#a855f7'], ['#e11d48', '#7c3aed'],
];

/** Two colours picked from a string, so a song without artwork keeps the same look everywhere. */
export function paletteFor(key) {
  return PALETTES[hash(String(key)) % PALETTES.length];
}

/** Fills `el` (a `.art` box) with the song's artwork, or a generated gradient with its initial. */
export function fillArtwork(el, song, size = 't500x500') {
  el.replaceChildren();
  el.classList.add('art');
  const [a, b] = paletteFor(song.id + (song.title || ''));
  el.style.setProperty('--art-a', a);
  el.style.setProperty('--art-b', b);
  if (song.artwork_url) {
    const src = size === 't500x500' ? song.artwork_url : song.artwork_url.replace(/t500x500(\.jpg)$/, size + '$1');
    const img = h('img', { src, alt: '', loading: 'lazy', decoding: 'async', referrerpolicy: 'no-referrer' });
    img.addEventListener('error', () => { img.remove(); el.classList.add('art-generated'); });
    el.classList.remove('art-generated');
    el.append(img);
  } else {
    el.classList.add('art-generated');
    el.append(h('span.art-initial', { 'aria-hidden': 'true' }, (song.title || '♪').trim().charAt(0).toUpperCase()));
  }
  return el;
}

export function artwork(song, cls = '', size) {
  return fillArtwork(h('span', { class: 'art ' + cls }), song, size);
}

export function avatar(user, cls = '') {
  const el = h('span', { class: 'avatar ' + cls });
  const [a, b] = paletteFor('u' + (user.id || user.username));
  el.style.setProperty('--art-a', a);
  el.style.setProperty('--art-b', b);
  const name = user.display_name || user.username || '?';
  if (user.avatar_url) {
    const img = h('img', { src: user.avatar_url, alt: '', loading: 'lazy', referrerpolicy: 'no-referrer' });
    img.addEventListener('error', () => { img.remove(); el.append(initials(name)); });
    el.append(img);
  } else {
    el.append(initials(name));
  }
  return el;
}

function initials(name) {
  const parts = String(name).trim().split(/\s+/).filter(Boolean);
  const text = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
  return h('span.avatar-initials', { 'aria-hidden': 'true' }, text.toUpperCase());
}

// ---------------------------------------------------------------------------------------------
// Feedback

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const t = h('div', { class: 'toast toast-' + kind }, message);
  box.append(t);
  requestAnimationFrame(() => t.classList.add('show'));
  setTimeout(() => { t.classList.remove('show'); setTimeout(() => t.remove(), 300); }, 3800);
}

export function announce(text) {
  const a = document.getElementById('announcer');
  a.textContent = '';
  setTimeout(() => { a.textContent = text; }, 50);
}

/** Five stars filled to `value` (0–5, fractions shown as partial fill). */
export function stars(value, size = 16, label = true) {
  const v = Math.max(0, Math.min(5, Number(value) || 0));
  const el = h('span.stars', label ? { role: 'img', 'aria-label': `${v.toFixed(1)} out of 5 stars` } : { 'aria-hidden': 'true' });
  for (let i = 0; i < 5; i++) {
    const fill = Math.max(0, Math.min(1, v - i));
    const s = h('span.star');
    s.append(icon('star', size, 'star-bg'));
    const fg = h('span.star-fg');
    fg.style.width = Math.round(fill * 100) + '%';
    fg.append(icon('star', size));
    s.append(fg);
    el.append(s);
  }
  return el;
}

/** Shows an ApiError on a form: next to the field it names, or in the form's general slot. */
export function showFormError(form, err) {
  clearFormErrors(form);
  const field = err && err.field ? String(err.field) : null;
  const message = (err && err.message) || 'Something went wrong.';
  let slot = null;
  if (field) {
    slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
    if (!slot && field.includes('.')) slot = form.querySelector(`[data-error-for="${CSS.escape(field.split('.')[0])}"]`);
  }
  if (!slot) slot = form.querySelector('[data-error-for="_form"]');
  if (slot) {
    slot.textContent = message;
    slot.hidden = false;
    const input = field && (form.querySelector(`[name="${CSS.escape(field)}"]`) || form.querySelector(`[data-field="${CSS.escape(field)}"]`));
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      if (slot.id) input.setAttribute('aria-describedby', slot.id);
      if (typeof input.focus === 'function') input.focus();
    }
  } else {
    toast(message, 'error');
  }
}

export function clearFormErrors(form) {
  for (const s of form.querySelectorAll('[data-error-for]')) { s.textContent = ''; s.hidden = true; }
  for (const i of form.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
}

/** A labelled form field with an error slot. */
export function field({ label, name, type = 'text', value = '', required = false, autocomplete, hint, testid, attrs = {}, multiline = false }) {
  const id = 'f-' + name.replace(/[^\w-]/g, '-') + '-' + Math.random().toString(36).slice(2, 7);
  const errId = id + '-err';
  const input = multiline
    ? h('textarea', { id, name, required, autocomplete, 'data-testid': testid, rows: 5, ...attrs }, value)
    : h('input', { id, name, type, value, required, autocomplete, 'data-testid': testid, ...attrs });
  return h('div.field',
    h('label', { for: id }, label),
    input,
    hint ? h('p.hint', { id: id + '-hint' }, hint) : null,
    h('p.field-error', { id: errId, 'data-error-for': name, role: 'alert', hidden: true }),
  );
}

export function spinner(label = 'Loading') {
  return h('div.spinner-wrap', { role: 'status' }, h('span.spinner', { 'aria-hidden': 'true' }), h('span.sr-only', label));
}

export function emptyState(title, text, action) {
  return h('div.empty', h('div.empty-icon', icon('cloud', 40)), h('h3', title), text ? h('p', text) : null, action || null);
}
