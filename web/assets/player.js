// The one audio player. Its <audio> element and the bottom bar live outside the routed view
// (index.html), so playback continues while the user moves between pages. Views talk to it through
// the exported `player` object and listen to its events:
//   'track'   — the current song changed            detail: song
//   'state'   — playing/paused/loading changed       detail: {playing, loading}
//   'time'    — currentTime advanced                 detail: {time, duration}
//   'counts'  — a song's play/like count changed     detail: song
// Likes go through `toggleLike` so the bar, the song page and cards agree.

import { songs, streamUrl, currentUser, likedSongIds, rememberLike, ApiError } from './api.js';
import { formatTime, fillArtwork, setIcon, toast, announce } from './ui.js';

const audio = document.getElementById('audio');
const bar = document.getElementById('playerbar');
const $ = (id) => document.getElementById(id);

class Player extends EventTarget {
  constructor() {
    super();
    this.current = null;
    this.queue = [];
    this.index = -1;
    this.loading = false;
    this.counted = new Set(); // songs whose play was counted in this load of the track
    this.waveforms = new Map();
    this.pendingStart = 0;
  }

  get playing() { return !audio.paused && !audio.ended; }
  get time() { return audio.currentTime || 0; }
  get duration() {
    if (Number.isFinite(audio.duration) && audio.duration > 0) return audio.duration;
    return this.current ? (Number(this.current.duration) || 0) / 1000 : 0;
  }
  isCurrent(song) { return !!(this.current && song && String(this.current.id) === String(song.id)); }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  /** Plays `song`; `queue` (songs) sets what Next/Previous walk through. */
  async playSong(song, { queue, startAt = 0 } = {}) {
    if (song.state && song.state !== 'ready') {
      toast(song.state === 'processing' ? 'This track is still processing.' : 'This track has no playable audio.', 'error');
      return;
    }
    if (queue && queue.length) {
      this.queue = queue.filter((s) => !s.state || s.state === 'ready');
      this.index = this.queue.findIndex((s) => String(s.id) === String(song.id));
      if (this.index < 0) { this.queue.unshift(song); this.index = 0; }
    } else if (!this.queue.some((s) => String(s.id) === String(song.id))) {
      this.queue = [song];
      this.index = 0;
    } else {
      this.index = this.queue.findIndex((s) => String(s.id) === String(song.id));
    }
    if (this.isCurrent(song)) {
      if (startAt) this.seek(startAt);
      return this.play();
    }
    this.current = song;
    this.counted.delete(String(song.id));
    this.loading = true;
    this.pendingStart = startAt;
    let src = streamUrl(song);
    if (song.sharing === 'private' && currentUser() && String(song.user.id) === String(currentUser().id)) {
      // A private song's stream needs its secret token (an <audio> element cannot send a bearer).
      try {
        const t = await songs.secretToken(song.id);
        src = new URL(t.secret_stream_url, location.origin);
        src = src.pathname + src.search;
      } catch { /* try the plain URL */ }
    }
    audio.src = src;
    this.renderBar();
    this.emit('track', song);
    this.emit('state', { playing: false, loading: true });
    this.updateMediaSession();
    return this.play();
  }

  async play() {
    if (!this.current) return;
    try {
      await audio.play();
    } catch (e) {
      if (e && e.name === 'NotAllowedError') toast('Press play to start listening.', 'info');
      else if (e && e.name !== 'AbortError') toast('This track cannot be played right now.', 'error');
    }
  }

  pause() { audio.pause(); }

  toggle() {
    if (!this.current) return;
    if (this.playing) this.pause(); else this.play();
  }

  /** Plays or pauses `song` (starting it when it is not the current one). */
  toggleSong(song, opts) {
    if (this.isCurrent(song)) this.toggle(); else this.playSong(song, opts);
  }

  seek(sec) {
    if (!this.current) return;
    const d = this.duration;
    const t = Math.max(0, d ? Math.min(d - 0.05, sec) : sec);
    if (audio.readyState === 0) { this.pendingStart = t; return; }
    audio.currentTime = t;
    this.emit('time', { time: t, duration: d });
  }

  seekBy(delta) { this.seek(this.time + delta); }

  next() {
    if (this.index < this.queue.length - 1) this.playSong(this.queue[this.index + 1]);
  }

  prev() {
    if (this.time > 3 || this.index <= 0) { this.seek(0); return; }
    this.playSong(this.queue[this.index - 1]);
  }

  /** waveform.json of a song, fetched once per song. Resolves null when there is none. */
  waveform(song) {
    const key = String(song.id);
    if (!this.waveforms.has(key)) {
      const p = song.state === 'ready' || song.waveform_url
        ? songs.waveform(song).catch(() => null)
        : Promise.resolve(null);
      this.waveforms.set(key, p);
      p.then((v) => { if (!v) this.waveforms.delete(key); });
    }
    return this.waveforms.get(key);
  }

  // -------------------------------------------------------------------------------------------
  // The bar

  renderBar() {
    const s = this.current;
    if (!s) return;
    bar.hidden = false;
    document.body.classList.add('has-player');
    fillArtwork($('pb-art'), s, 'large');
    const href = '/song/' + s.id;
    $('pb-art-link').href = href;
    $('pb-title').href = href;
    $('pb-title').textContent = s.title;
    $('pb-title').title = s.title;
    $('pb-artist').href = '/user/' + encodeURIComponent(s.user.username);
    $('pb-artist').textContent = s.user.username;
    $('pb-prev').disabled = false;
    $('pb-next').disabled = this.index >= this.queue.length - 1;
    this.renderLike();
    this.renderTime();
  }

  async renderLike() {
    const s = this.current;
    const btn = $('pb-like');
    if (!s) return;
    let liked = false;
    if (currentUser()) {
      try { liked = (await likedSongIds()).has(String(s.id)); } catch { liked = false; }
    }
    if (!this.isCurrent(s)) return;
    btn.setAttribute('aria-pressed', String(liked));
    btn.setAttribute('aria-label', liked ? `Unlike ${s.title}` : `Like ${s.title}`);
    btn.classList.toggle('is-on', liked);
    setIcon(btn, liked ? 'heart' : 'heartOutline', 20);
  }

  renderState() {
    const playing = this.playing;
    const btn = $('pb-play');
    btn.setAttribute('aria-label', playing ? 'Pause' : 'Play');
    btn.classList.toggle('is-playing', playing);
    btn.classList.toggle('is-loading', this.loading);
    setIcon(btn, playing ? 'pause' : 'play', 22);
    document.body.classList.toggle('is-playing', playing);
  }

  renderTime() {
    const t = this.time;
    const d = this.duration;
    $('pb-elapsed').textContent = formatTime(t);
    $('pb-duration').textContent = formatTime(d);
    const f = d ? Math.min(1, t / d) : 0;
    $('pb-seek-fill').style.width = (f * 100) + '%';
    $('pb-seek-knob').style.left = (f * 100) + '%';
    const seek = $('pb-seek');
    seek.setAttribute('aria-valuemax', String(Math.round(d)));
    seek.setAttribute('aria-valuenow', String(Math.round(t)));
    seek.setAttribute('aria-valuetext', `${formatTime(t)} of ${formatTime(d)}`);
  }

  updateMediaSession() {
    if (!('mediaSession' in navigator) || !this.current) return;
    const s = this.current;
    try {
      navigator.mediaSession.metadata = new MediaMetadata({
        title: s.title,
        artist: s.user.username,
        album: 'AudioStorm',
        artwork: s.artwork_url ? [{ src: s.artwork_url, sizes: '500x500', type: 'image/jpeg' }] : [],
      });
    } catch { /* not supported */ }
  }
}

export const player = new Player();

// ---------------------------------------------------------------------------------------------
// Likes, shared by every view

const likeBus = new EventTarget();
/** Listens to like changes: detail {id, liked, likes_count}. */
export function onLike(fn) {
  const h = (e) => fn(e.detail);
  likeBus.addEventListener('like', h);
  return () => likeBus.removeEventListener('like', h);
}

/** Likes or unlikes `song` (signed in), updating its `likes_count` in place. Returns the new state. */
export async function toggleLike(song, liked) {
  const want = !liked;
  try {
    if (want) await songs.like(song.id); else await songs.unlike(song.id);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) toast(e.message || 'Could not update the like.', 'error');
    throw e;
  }
  rememberLike(song.id, want);
  song.likes_count = Math.max(0, (Number(song.likes_count) || 0) + (want ? 1 : -1));
  if (player.current && String(player.current.id) === String(song.id)) player.current.likes_count = song.likes_count;
  likeBus.dispatchEvent(new CustomEvent('like', { detail: { id: String(song.id), liked: want, likes_count: song.likes_count } }));
  announce(want ? `Liked ${song.title}` : `Removed like from ${song.title}`);
  return want;
}

onLike(({ id }) => { if (player.current && String(player.current.id) === id) player.renderLike(); });

// ---------------------------------------------------------------------------------------------
// Wiring the element and the bar

audio.addEventListener('play', () => { player.renderState(); player.emit('state', { playing: true, loading: player.loading }); });
audio.addEventListener('playing', () => {
  player.loading = false;
  player.renderState();
  player.emit('state', { playing: true, loading: false });
  const s = player.current;
  if (s && !player.counted.has(String(s.id))) {
    player.counted.add(String(s.id));
    songs.play(s.id).then(() => {
      s.playback_count = (Number(s.playback_count) || 0) + 1;
      player.emit('counts', s);
    }).catch(() => { /* a lost play count is not worth bothering the listener */ });
  }
});
audio.addEventListener('pause', () => { player.renderState(); player.emit('state', { playing: false, loading: false }); });
audio.addEventListener('waiting', () => { player.loading = true; player.renderState(); player.emit('state', { playing: player.playing, loading: true }); });
audio.addEventListener('loadedmetadata', () => {
  if (player.pendingStart) { audio.currentTime = player.pendingStart; player.pendingStart = 0; }
  player.renderTime();
  player.emit('time', { time: player.time, duration: player.duration });
});
audio.addEventListener('timeupdate', () => {
  player.renderTime();
  player.emit('time', { time: player.time, duration: player.duration });
});
audio.addEventListener('ended', () => {
  player.renderState();
  player.emit('state', { playing: false, loading: false });
  if (player.index < player.queue.length - 1) player.next();
  else { audio.currentTime = 0; player.renderTime(); player.emit('time', { time: 0, duration: player.duration }); }
});
audio.addEventListener('error', () => {
  if (!player.current) return;
  player.loading = false;
  player.renderState();
  toast('This track could not be loaded.', 'error');
});

$('pb-play').addEventListener('click', () => player.toggle());
$('pb-prev').addEventListener('click', () => player.prev());
$('pb-next').addEventListener('click', () => player.next());
$('pb-like').addEventListener('click', async () => {
  const s = player.current;
  if (!s) return;
  if (!currentUser()) { document.dispatchEvent(new CustomEvent('audiostorm:signin')); return; }
  const liked = $('pb-like').getAttribute('aria-pressed') === 'true';
  try { await toggleLike(s, liked); } catch { /* toasted */ }
});

// Volume, remembered across visits.
const vol = $('pb-volume');
const muteBtn = $('pb-mute');
const savedVol = Number(localStorage.getItem('audiostorm.volume'));
if (Number.isFinite(savedVol) && localStorage.getItem('audiostorm.volume') !== null) audio.volume = Math.max(0, Math.min(1, savedVol));
vol.value = String(audio.volume);
function renderVolume() {
  const muted = audio.muted || audio.volume === 0;
  setIcon(muteBtn, muted ? 'mute' : 'volume', 20);
  muteBtn.setAttribute('aria-label', muted ? 'Unmute' : 'Mute');
  muteBtn.setAttribute('aria-pressed', String(muted));
  vol.style.setProperty('--fill', (audio.muted ? 0 : audio.volume * 100) + '%');
}
vol.addEventListener('input', () => {
  audio.volume = Number(vol.value);
  audio.muted = audio.volume === 0;
  localStorage.setItem('audiostorm.volume', String(audio.volume));
  renderVolume();
});
muteBtn.addEventListener('click', () => { audio.muted = !audio.muted; renderVolume(); });
renderVolume();

// The bar's seek slider: click/drag with the pointer, arrows with the keyboard.
const seekEl = $('pb-seek');
let seeking = false;
function seekFromPointer(e) {
  const r = seekEl.getBoundingClientRect();
  const f = Math.max(0, Math.min(1, (e.clientX - r.left) / r.width));
  player.seek(f * player.duration);
}
seekEl.addEventListener('pointerdown', (e) => { seeking = true; seekEl.setPointerCapture(e.pointerId); seekFromPointer(e); });
seekEl.addEventListener('pointermove', (e) => { if (seeking) seekFromPointer(e); });
seekEl.addEventListener('pointerup', () => { seeking = false; });
seekEl.addEventListener('keydown', (e) => {
  const map = { ArrowRight: 5, ArrowUp: 5, ArrowLeft: -5, ArrowDown: -5, PageUp: 30, PageDown: -30 };
  if (e.key in map) { e.preventDefault(); player.seekBy(map[e.key]); }
  else if (e.key === 'Home') { e.preventDefault(); player.seek(0); }
  else if (e.key === 'End') { e.preventDefault(); player.seek(player.duration - 1); }
});

// Space toggles play while focus is in the player bar (buttons keep their own Space).
bar.addEventListener('keydown', (e) => {
  if ((e.key === ' ' || e.key === 'Spacebar') && !e.target.closest('button, input, a')) {
    e.preventDefault();
    player.toggle();
  }
});

// Space anywhere outside a control toggles play too, like on most music sites.
document.addEventListener('keydown', (e) => {
  if (e.key !== ' ' || e.defaultPrevented || !player.current) return;
  const t = e.target;
  if (t.closest && t.closest('input, textarea, select, button, a, [role="slider"], [contenteditable]')) return;
  e.preventDefault();
  player.toggle();
});

if ('mediaSession' in navigator) {
  const ms = navigator.mediaSession;
  const set = (a, fn) => { try { ms.setActionHandler(a, fn); } catch { /* unsupported action */ } };
  set('play', () => player.play());
  set('pause', () => player.pause());
  set('previoustrack', () => player.prev());
  set('nexttrack', () => player.next());
  set('seekto', (d) => player.seek(d.seekTime));
}

setIcon($('pb-prev'), 'prev', 18);
setIcon($('pb-next'), 'next', 18);
player.renderState();
