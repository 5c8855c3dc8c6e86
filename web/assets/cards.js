// Song tiles and rows used by the home and user pages. Each carries data-song-id so one listener
// can mark whichever is playing.

import { player, onLike } from './player.js';
import { h, artwork, icon, setIcon, formatCount, formatTime, timeAgo } from './ui.js';

function playButton(song, queue, cls) {
  const btn = h('button', {
    type: 'button', class: 'play-btn ' + cls, 'aria-label': `Play ${song.title}`, 'data-role': 'play',
    disabled: song.state && song.state !== 'ready' ? true : null,
  }, icon('play', 20));
  btn.addEventListener('click', (e) => {
    e.preventDefault();
    e.stopPropagation();
    player.toggleSong(song, { queue: queue() });
  });
  return btn;
}

function stateBadge(song) {
  if (!song.state || song.state === 'ready') return null;
  const text = { processing: 'Processing', failed: 'Failed', none: 'No audio' }[song.state] || song.state;
  return h('span', { class: 'badge badge-' + song.state }, text);
}

/** A square artwork tile with a play button over it. */
export function songCard(song, queue) {
  const href = '/song/' + song.id;
  const card = h('article.card', { 'data-song-id': String(song.id), 'data-testid': 'song-card' },
    h('div.card-art',
      h('a', { href, tabindex: '-1', 'aria-hidden': 'true' }, artwork(song, 'art-fill')),
      playButton(song, queue, 'play-btn-card'),
      stateBadge(song),
      song.sharing === 'private' ? h('span.badge.badge-private', icon('lock', 12), 'Private') : null,
    ),
    h('div.card-body',
      h('a.card-title', { href, title: song.title }, song.title),
      h('a.card-artist', { href: '/user/' + encodeURIComponent(song.user.username) }, song.user.username),
      h('div.card-stats',
        h('span', { 'aria-label': `${song.playback_count || 0} plays` }, icon('plays', 12), formatCount(song.playback_count)),
        h('span', { 'aria-label': `${song.likes_count || 0} likes`, 'data-role': 'likes' }, icon('heart', 12), formatCount(song.likes_count)),
        song.duration ? h('span.card-dur', formatTime(song.duration / 1000)) : null,
      ),
    ),
  );
  return card;
}

/** A compact row: number, artwork, title/artist, counts, duration. */
export function songRow(song, queue, n) {
  const href = '/song/' + song.id;
  return h('li.row', { 'data-song-id': String(song.id), 'data-testid': 'song-row' },
    h('span.row-n', n != null ? String(n) : ''),
    h('div.row-art', artwork(song, 'art-fill', 'large'), playButton(song, queue, 'play-btn-row')),
    h('div.row-main',
      h('a.row-title', { href }, song.title),
      h('div.row-sub',
        h('a', { href: '/user/' + encodeURIComponent(song.user.username) }, song.user.username),
        song.genre ? h('span.tag', song.genre) : null,
        stateBadge(song),
      ),
    ),
    h('span.row-meta', { title: song.created_at }, timeAgo(song.created_at)),
    h('span.row-stat', { 'aria-label': `${song.playback_count || 0} plays` }, icon('plays', 12), formatCount(song.playback_count)),
    h('span.row-stat', { 'aria-label': `${song.likes_count || 0} likes`, 'data-role': 'likes' }, icon('heart', 12), formatCount(song.likes_count)),
    h('span.row-dur', song.duration ? formatTime(song.duration / 1000) : '–'),
  );
}

function markPlaying() {
  const id = player.current ? String(player.current.id) : null;
  const playing = player.playing;
  for (const el of document.querySelectorAll('[data-song-id]')) {
    const mine = el.dataset.songId === id;
    el.classList.toggle('is-current', mine);
    el.classList.toggle('is-playing', mine && playing);
    const btn = el.querySelector('[data-role="play"]');
    if (btn) {
      const title = (el.querySelector('.card-title, .row-title') || {}).textContent || 'track';
      const on = mine && playing;
      if (btn.dataset.on !== String(on)) {
        btn.dataset.on = String(on);
        setIcon(btn, on ? 'pause' : 'play', 20);
        btn.setAttribute('aria-label', `${on ? 'Pause' : 'Play'} ${title}`);
      }
    }
  }
}
player.addEventListener('track', markPlaying);
player.addEventListener('state', markPlaying);

// A like anywhere updates every tile and row of that song.
onLike(({ id, likes_count: n }) => {
  for (const el of document.querySelectorAll(`[data-song-id="${CSS.escape(id)}"] [data-role="likes"]`)) {
    el.lastChild.textContent = formatCount(n);
    el.setAttribute('aria-label', `${n} likes`);
  }
});

/** Call after inserting cards, to mark the current one. */
export const refreshPlaying = markPlaying;
