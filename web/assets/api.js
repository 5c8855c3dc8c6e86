// Talks to the AudioStorm services through the single origin the proxy gives us.
//
// Ids: song ids are 64-bit snowflakes (~1e17), beyond the 2^53 a JS number holds exactly. Every
// response is parsed with `parseJSON`, which turns integers of 16+ digits into strings before
// JSON.parse sees them, and the client keeps every id as a string. Bodies that must carry such an
// id as a JSON number (POST /reviews `song_id`) use `rawNumber`.
//
// Auth: access token (15 min JWT) and refresh token (body, single use) from POST /auth/signin are
// kept in localStorage. A 401 on an authenticated call refreshes once (single-flight, serialised
// across tabs with the Web Locks API) and retries; if the refresh fails the session is cleared and
// the app sends the user to /signin.

const STORE_KEY = 'audiostorm.session';

/** An error answer from the API: `{code, message, field}` plus the HTTP status. */
export class ApiError extends Error {
  constructor(status, body) {
    const b = body && typeof body === 'object' ? body : {};
    super(b.message || defaultMessage(status));
    this.name = 'ApiError';
    this.status = status;
    this.code = b.code || (status === 0 ? 'network_error' : 'http_' + status);
    this.field = b.field || null;
    this.body = b;
  }
}

function defaultMessage(status) {
  if (status === 0) return 'Cannot reach AudioStorm. Check your connection and try again.';
  if (status === 401) return 'Please sign in to do that.';
  if (status === 403) return 'You are not allowed to do that.';
  if (status === 404) return 'Not found.';
  if (status === 413) return 'That file is too large.';
  if (status === 429) return 'Too many attempts. Wait a moment and try again.';
  if (status >= 500) return 'Something went wrong on our side. Please try again.';
  return 'The request failed (' + status + ').';
}

/** JSON.parse that keeps integers of 16 or more digits exact, as strings. */
export function parseJSON(text) {
  if (!text) return null;
  let out = '';
  let last = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34) { // string: skip to its closing quote
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 92) i += 2; else if (d === 34) { i++; break; } else i++;
      }
    } else if (c === 45 || (c >= 48 && c <= 57)) { // number
      const start = i;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if ((d >= 48 && d <= 57) || d === 46 || d === 101 || d === 69 || d === 43 || d === 45) i++; else break;
      }
      const tok = text.slice(start, i);
      if (/^-?\d{16,}$/.test(tok)) {
        out += text.slice(last, start) + '"' + tok + '"';
        last = i;
      }
    } else {
      i++;
    }
  }
  return JSON.parse(last === 0 ? text : out + text.slice(last));
}

const RAW_MARK = '\u0000raw:';
/** A value that JSON-serialises as the bare number `digits` (for ids beyond 2^53). */
export function rawNumber(digits) {
  const s = String(digits);
  if (!/^-?\d+$/.test(s)) throw new Error('not an integer: ' + s);
  if (typeof JSON.rawJSON === 'function') return JSON.rawJSON(s);
  return RAW_MARK + s;
}
function stringify(body) {
  const text = JSON.stringify(body);
  // Fallback for engines without JSON.rawJSON: unquote the marked strings.
  return text.includes('\\u0000raw:') ? text.replace(/"\\u0000raw:(-?\d+)"/g, '$1') : text;
}

// ---------------------------------------------------------------------------------------------
// Session

const listeners = new Set();
let session = load();

function load() {
  try {
    const s = JSON.parse(localStorage.getItem(STORE_KEY) || 'null');
    if (s && s.access_token && s.refresh_token && s.user) return s;
  } catch { /* a damaged entry is no session */ }
  return null;
}

function save(next) {
  session = next;
  if (next) localStorage.setItem(STORE_KEY, JSON.stringify(next));
  else localStorage.removeItem(STORE_KEY);
  for (const fn of listeners) fn(session);
}

// Another tab signed in, out, or refreshed.
window.addEventListener('storage', (e) => {
  if (e.key !== STORE_KEY) return;
  const before = session && session.user.id;
  session = load();
  if ((session && session.user.id) !== before) for (const fn of listeners) fn(session);
});

/** The signed-in user `{id, username}` or null. */
export function currentUser() {
  return session ? session.user : null;
}

/** Calls `fn(session|null)` whenever the signed-in user changes. Returns an unsubscribe. */
export function onSession(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function fromTokens(t) {
  return {
    access_token: t.access_token,
    refresh_token: t.refresh_token,
    access_expires_at: Date.now() + (t.expires_in || 900) * 1000,
    user: { id: String(t.user.id), username: t.user.username },
  };
}

let refreshing = null;

/** Exchanges the refresh token for a new pair once, however many callers ask at the same time. */
export function refreshSession() {
  if (refreshing) return refreshing;
  const run = async () => {
    const used = session && session.refresh_token;
    // Another tab may have refreshed already: its tokens are in storage.
    const stored = load();
    if (stored && used && stored.refresh_token !== used) { save(stored); return true; }
    if (!used) return false;
    let res;
    try {
      res = await fetch('/auth/refresh', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ refresh_token: used }),
      });
    } catch {
      return false;
    }
    if (!res.ok) {
      // Only a definite refusal ends the session (a 5xx might be a blip).
      if (res.status === 401 || res.status === 400) save(null);
      return false;
    }
    save(fromTokens(parseJSON(await res.text())));
    return true;
  };
  const locked = navigator.locks && navigator.locks.request
    ? () => navigator.locks.request('audiostorm-refresh', run)
    : run;
  refreshing = locked().finally(() => { refreshing = null; });
  return refreshing;
}

let onAuthLost = () => {};
/** What to do when a call needed a session and none could be had (the app redirects to /signin). */
export function setAuthLostHandler(fn) {
  onAuthLost = fn;
}

// ---------------------------------------------------------------------------------------------
// Requests

function pathOf(hrefOrPath) {
  // `next_href` values are absolute URLs built by the service; keep only path and query so the
  // request goes to our own origin whatever host the service believed it had.
  const u = new URL(hrefOrPath, location.origin);
  return u.pathname + u.search;
}

/**
 * One API call. `auth`: 'none' (never send a token), 'optional' (send one when signed in; a stale
 * one is refreshed), 'required' (sign-in needed: without a session the call fails with 401).
 */
export async function request(method, path, { body, auth = 'optional', headers = {}, signal, raw = false } = {}) {
  const url = pathOf(path);
  const attempt = async () => {
    const h = { Accept: 'application/json', ...headers };
    let payload;
    if (body !== undefined) {
      if (body instanceof Blob || body instanceof ArrayBuffer) payload = body;
      else { payload = stringify(body); h['Content-Type'] = 'application/json'; }
    }
    const token = auth !== 'none' && session ? session.access_token : null;
    if (token) h.Authorization = 'Bearer ' + token;
    let res;
    try {
      res = await fetch(url, { method, headers: h, body: payload, signal, cache: 'no-cache' });
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new ApiError(0, null);
    }
    return { res, sentToken: !!token };
  };

  if (auth === 'required' && !session) {
    onAuthLost();
    throw new ApiError(401, { code: 'unauthorized', message: 'Please sign in to do that.' });
  }
  // Refresh ahead of time when the access token is about to expire.
  if (auth !== 'none' && session && session.access_expires_at - Date.now() < 30_000) {
    await refreshSession();
  }
  let { res, sentToken } = await attempt();
  if (res.status === 401 && sentToken) {
    if (await refreshSession()) ({ res } = await attempt());
    if (res.status === 401) {
      if (auth === 'required') { save(null); onAuthLost(); }
      else if (!session) ({ res } = await attempt()); // optional: go on anonymously
    }
  }
  if (raw) return res;
  const text = res.status === 204 ? '' : await res.text();
  let data = null;
  try { data = parseJSON(text); } catch { data = null; }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const api = {
  get: (path, opts) => request('GET', path, opts),
  post: (path, body, opts) => request('POST', path, { ...opts, body }),
  put: (path, body, opts) => request('PUT', path, { ...opts, body }),
  patch: (path, body, opts) => request('PATCH', path, { ...opts, body }),
  del: (path, opts) => request('DELETE', path, opts),
};

const enc = encodeURIComponent;

// ---------------------------------------------------------------------------------------------
// User service

export async function signUp({ username, email, password, display_name }) {
  return api.post('/auth/signup', { username, email, password, display_name }, { auth: 'none' });
}

export async function signIn(login, password) {
  const t = await api.post('/auth/signin', { login, password }, { auth: 'none' });
  save(fromTokens(t));
  return session.user;
}

export async function signOut() {
  const s = session;
  save(null);
  if (s) {
    try { await api.post('/auth/signout', { refresh_token: s.refresh_token }, { auth: 'none' }); } catch { /* already gone */ }
  }
}

/** Clears the local session without telling the server (used when the server already refused it). */
export function dropSession() {
  save(null);
}

export const users = {
  me: () => api.get('/users/me', { auth: 'required' }),
  byId: (id) => api.get('/users/' + enc(id), { auth: 'none' }),
  byUsername: (name) => api.get('/users/by-username/' + enc(name), { auth: 'none' }),
  followers: (id, limit = 50, href) => api.get(href || `/users/${enc(id)}/followers?limit=${limit}`, { auth: 'none' }),
  followings: (id, limit = 50, href) => api.get(href || `/users/${enc(id)}/followings?limit=${limit}`, { auth: 'none' }),
  follow: (id) => api.put('/users/me/followings/' + enc(id), undefined, { auth: 'required' }),
  unfollow: (id) => api.del('/users/me/followings/' + enc(id), { auth: 'required' }),
};

// ---------------------------------------------------------------------------------------------
// Player service

export const songs = {
  list: (limit = 24, href) => api.get(href || `/songs?limit=${limit}`),
  get: (id) => api.get('/songs/' + enc(id)),
  create: (fields) => api.post('/songs', fields, { auth: 'required' }),
  update: (id, fields) => api.put('/songs/' + enc(id), fields, { auth: 'required' }),
  remove: (id) => api.del('/songs/' + enc(id), { auth: 'required' }),
  byUser: (userId, limit = 24, href) => api.get(href || `/users/${enc(userId)}/songs?limit=${limit}`),
  likedBy: (userId, limit = 24, href) => api.get(href || `/users/${enc(userId)}/likes?limit=${limit}`),
  like: (id) => api.put(`/songs/${enc(id)}/likes`, undefined, { auth: 'required' }),
  unlike: (id) => api.del(`/songs/${enc(id)}/likes`, { auth: 'required' }),
  play: (id) => api.post(`/songs/${enc(id)}/plays`, undefined, { auth: 'optional' }),
  waveform: (song) => api.get(song.waveform_url || `/songs/${enc(song.id)}/waveform.json`),
  secretToken: (id) => api.get(`/songs/${enc(id)}/secret-token`, { auth: 'required' }),
  setArtwork: (id, file) => request('PUT', `/songs/${enc(id)}/artwork`, {
    body: file, auth: 'required', headers: { 'Content-Type': file.type || 'application/octet-stream' },
  }),
};

/**
 * Uploads `file` as song `id`'s audio with XMLHttpRequest (fetch has no upload progress).
 * `onProgress(fraction)`; resolves with the song (state `processing`), rejects with ApiError.
 * Returns `{promise, abort}`. A 401 refreshes the token once and sends the file again.
 */
export function uploadAudio(id, file, onProgress) {
  let xhr = null;
  let aborted = false;
  const send = () => new Promise((resolve, reject) => {
    xhr = new XMLHttpRequest();
    xhr.open('POST', `/songs/${enc(id)}/audio`);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    if (session) xhr.setRequestHeader('Authorization', 'Bearer ' + session.access_token);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let data = null;
      try { data = parseJSON(xhr.responseText); } catch { data = null; }
      resolve({ status: xhr.status, data });
    };
    xhr.onerror = () => reject(new ApiError(0, null));
    xhr.onabort = () => reject(new ApiError(0, { code: 'aborted', message: 'Upload cancelled.' }));
    xhr.send(file);
  });
  const promise = (async () => {
    if (session && session.access_expires_at - Date.now() < 60_000) await refreshSession();
    let r = await send();
    if (r.status === 401 && !aborted && await refreshSession()) r = await send();
    if (r.status === 401) onAuthLost();
    if (r.status < 200 || r.status >= 300) throw new ApiError(r.status, r.data);
    return r.data;
  })();
  return { promise, abort: () => { aborted = true; if (xhr) xhr.abort(); } };
}

/** The URL the <audio> element plays (public songs need no token). */
export function streamUrl(song) {
  return song.stream_url ? pathOf(song.stream_url) : `/songs/${enc(song.id)}/stream`;
}

// ---------------------------------------------------------------------------------------------
// Reviews service

export const reviews = {
  list: (songId, { page = 1, count = 5, sort = 'relevant' } = {}) =>
    api.get(`/reviews?song_id=${enc(songId)}&page=${page}&count=${count}&sort=${enc(sort)}`, { auth: 'none' }),
  meta: (songId) => api.get(`/reviews/meta?song_id=${enc(songId)}`, { auth: 'none' }),
  create: (review) => api.post('/reviews', { ...review, song_id: rawNumber(review.song_id) }, { auth: 'required' }),
  helpful: (reviewId) => api.put(`/reviews/${enc(reviewId)}/helpful`, undefined, { auth: 'required' }),
  report: (reviewId) => api.put(`/reviews/${enc(reviewId)}/report`, undefined, { auth: 'required' }),
};

// ---------------------------------------------------------------------------------------------
// What the API does not tell directly: whether the signed-in user likes a song or follows a user.
// Both are read from the user's own lists (first pages) and then kept up to date locally.

let likedCache = null; // {user, ids:Set, complete:boolean}
export async function likedSongIds() {
  const me = currentUser();
  if (!me) return new Set();
  if (likedCache && likedCache.user === me.id) return likedCache.ids;
  const ids = new Set();
  let href = `/users/${enc(me.id)}/likes?limit=200`;
  for (let i = 0; href && i < 3; i++) {
    const page = await api.get(href);
    for (const s of page.collection || []) ids.add(String(s.id));
    href = page.next_href;
  }
  likedCache = { user: me.id, ids };
  return ids;
}
export function rememberLike(songId, liked) {
  if (!likedCache) return;
  if (liked) likedCache.ids.add(String(songId)); else likedCache.ids.delete(String(songId));
}

let followCache = null;
export async function followedIds() {
  const me = currentUser();
  if (!me) return new Set();
  if (followCache && followCache.user === me.id) return followCache.ids;
  const ids = new Set();
  let href = `/users/${enc(me.id)}/followings?limit=200`;
  for (let i = 0; href && i < 5; i++) {
    const page = await api.get(href, { auth: 'none' });
    for (const u of page.collection || []) ids.add(String(u.id));
    href = page.next_href;
  }
  followCache = { user: me.id, ids };
  return ids;
}
export function rememberFollow(userId, following) {
  if (!followCache) return;
  if (following) followCache.ids.add(String(userId)); else followCache.ids.delete(String(userId));
}

onSession(() => { likedCache = null; followCache = null; });
