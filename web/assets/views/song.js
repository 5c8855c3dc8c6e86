// "/song/:id": the big player (play/pause, waveform seek bar, elapsed/total, artwork, counts),
// like, the uploader, more from the artist, and the reviews.

import { songs, users, currentUser, likedSongIds, ApiError } from '../api.js';
import { player, toggleLike, onLike } from '../player.js';
import { createWaveform } from '../waveform.js';
import { songRow, refreshPlaying } from '../cards.js';
import { reviewsSection } from './reviews.js';
import { navigate } from '../router.js';
import {
  h, setChildren, icon, setIcon, artwork, fillArtwork, avatar, paletteFor, formatTime, formatCount, timeAgo, formatDate, toast, plural,
} from '../ui.js';

const cssUrl = (u) => `url("${String(u).replace(/["\\\n\r]/g, encodeURIComponent)}")`;

export async function songView(ctx) {
  const id = ctx.params.id;
  if (!/^\d+$/.test(id)) throw new ApiError(404, { message: 'There is no such track.' });
  let song;
  try {
    song = await songs.get(id);
  } catch (e) {
    if (e.status === 404) throw new ApiError(404, { message: 'This track does not exist, or it is private.' });
    throw e;
  }
  // Keep the player's copy when it is this song, so counts stay in step.
  if (player.isCurrent(song)) Object.assign(player.current, song);
  document.title = `${song.title} by ${song.user.username} · AudioStorm`;
  const me = currentUser();
  const mine = !!(me && String(me.id) === String(song.user.id));

  // ------------------------------------------------------------------------------------------
  // The big player

  const playBtn = h('button.play-btn.play-btn-xl', { type: 'button', 'data-testid': 'song-play', 'aria-label': `Play ${song.title}` });
  const elapsed = h('span.wave-time.wave-elapsed', { 'data-testid': 'elapsed' }, '0:00');
  const total = h('span.wave-time.wave-total', { 'data-testid': 'duration' }, formatTime(song.duration / 1000));
  const durationOf = () => (player.isCurrent(song) ? player.duration : (song.duration || 0) / 1000);
  const wave = createWaveform({
    height: 110,
    label: `Seek in ${song.title}`,
    duration: durationOf,
    onSeek: (x, isFraction) => {
      const t = isFraction ? x * ((song.duration || 0) / 1000) : x;
      if (player.isCurrent(song)) player.seek(t);
      else player.playSong(song, { startAt: t, queue: queueFor() });
    },
    onToggle: () => player.toggleSong(song, { queue: queueFor() }),
  });

  let moreSongs = [];
  const queueFor = () => (moreSongs.some((s) => String(s.id) === String(song.id)) ? moreSongs : [song, ...moreSongs]);

  function renderPlay() {
    const on = player.isCurrent(song) && player.playing;
    setIcon(playBtn, on ? 'pause' : 'play', 30);
    playBtn.setAttribute('aria-label', `${on ? 'Pause' : 'Play'} ${song.title}`);
    playBtn.classList.toggle('is-playing', on);
    playBtn.classList.toggle('is-loading', player.isCurrent(song) && player.loading);
    hero.classList.toggle('is-playing', on);
  }
  function renderTime() {
    const cur = player.isCurrent(song);
    const t = cur ? player.time : 0;
    const d = durationOf();
    elapsed.textContent = formatTime(t);
    total.textContent = formatTime(d);
    wave.setProgress(d ? t / d : 0);
  }
  playBtn.addEventListener('click', () => player.toggleSong(song, { queue: queueFor() }));

  // ------------------------------------------------------------------------------------------
  // Counts and like

  const playCount = h('span', { 'data-testid': 'play-count' }, formatCount(song.playback_count));
  const statLikes = h('span', formatCount(song.likes_count));
  const likeCount = h('span.like-count', { 'data-testid': 'like-count' }, String(song.likes_count || 0));
  const likeBtn = h('button.btn.btn-pill.like-btn', { type: 'button', 'data-testid': 'like-button', 'aria-pressed': 'false', 'aria-label': `Like ${song.title}` },
    icon('heartOutline', 18), h('span.like-label', 'Like'), likeCount);
  let liked = false;
  function renderLike() {
    likeBtn.setAttribute('aria-pressed', String(liked));
    likeBtn.setAttribute('aria-label', `${liked ? 'Unlike' : 'Like'} ${song.title}`);
    likeBtn.classList.toggle('is-on', liked);
    likeBtn.querySelector('.icon').replaceWith(icon(liked ? 'heart' : 'heartOutline', 18));
    likeBtn.querySelector('.like-label').textContent = liked ? 'Liked' : 'Like';
    likeCount.textContent = String(song.likes_count || 0);
    statLikes.textContent = formatCount(song.likes_count);
  }
  likeBtn.addEventListener('click', async () => {
    if (!currentUser()) { navigate('/signin?next=' + encodeURIComponent(location.pathname)); return; }
    likeBtn.disabled = true;
    try { liked = await toggleLike(song, liked); } catch { /* toasted */ }
    likeBtn.disabled = false;
    renderLike();
  });
  if (me) likedSongIds().then((ids) => { liked = ids.has(String(song.id)); renderLike(); }).catch(() => {});

  const shareBtn = h('button.btn.btn-pill', { type: 'button', 'aria-label': 'Copy link to this track' }, icon('link', 18), h('span', 'Copy link'));
  shareBtn.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(location.origin + '/song/' + song.id); toast('Link copied to clipboard.', 'success'); }
    catch { toast(location.origin + '/song/' + song.id, 'info'); }
  });

  // ------------------------------------------------------------------------------------------
  // Owner tools: artwork and delete

  let ownerTools = null;
  const artBox = artwork(song, 'art-fill', 't500x500');
  artBox.dataset.testid = 'song-artwork';
  if (mine) {
    const artInput = h('input', { type: 'file', accept: 'image/jpeg,image/png', class: 'sr-only', id: 'art-input', 'data-testid': 'artwork-input' });
    artInput.addEventListener('change', async () => {
      const f = artInput.files[0];
      if (!f) return;
      try {
        const updated = await songs.setArtwork(song.id, f);
        song.artwork_url = updated.artwork_url;
        fillArtwork(artBox, song);
        heroBg.style.backgroundImage = song.artwork_url ? cssUrl(song.artwork_url) : '';
        toast('Artwork updated.', 'success');
      } catch (e) { toast(e.message, 'error'); }
    });
    const del = h('button.btn.btn-pill.btn-danger-ghost', { type: 'button', 'data-testid': 'delete-song' }, 'Delete track');
    del.addEventListener('click', async () => {
      if (!confirm(`Delete “${song.title}”? This cannot be undone.`)) return;
      try {
        await songs.remove(song.id);
        if (player.isCurrent(song)) player.pause();
        toast('Track deleted.', 'info');
        navigate('/user/' + encodeURIComponent(song.user.username));
      } catch (e) { toast(e.message, 'error'); }
    });
    ownerTools = [h('label.btn.btn-pill', { for: 'art-input' }, 'Change artwork'), artInput, del];
  }

  // ------------------------------------------------------------------------------------------
  // Layout

  const heroBg = h('div.song-hero-bg', { 'aria-hidden': 'true' });
  if (song.artwork_url) heroBg.style.backgroundImage = cssUrl(song.artwork_url);
  else {
    const [ca, cb] = paletteFor(song.id + (song.title || ''));
    heroBg.style.backgroundImage = `radial-gradient(60% 90% at 85% 30%, ${ca}, transparent 70%), radial-gradient(60% 90% at 20% 90%, ${cb}, transparent 70%)`;
  }
  const statusBox = h('div.song-status', { 'data-testid': 'song-status', 'data-status': song.state || 'none', hidden: song.state === 'ready' });

  const hero = h('section.song-hero', { 'aria-label': 'Player', 'data-testid': 'song-player' },
    heroBg,
    h('div.song-hero-main',
      h('div.song-head',
        playBtn,
        h('div.song-titles',
          h('a.song-artist', { href: '/user/' + encodeURIComponent(song.user.username), 'data-testid': 'song-artist' }, song.user.username),
          h('h1.song-title', { 'data-testid': 'song-title' }, song.title),
        ),
        h('div.song-when',
          h('time', { datetime: song.created_at, title: formatDate(song.created_at) }, timeAgo(song.created_at)),
          song.genre ? h('span.tag.tag-hero', '# ' + song.genre) : null,
          song.sharing === 'private' ? h('span.badge.badge-private', icon('lock', 12), 'Private') : null,
        ),
      ),
      statusBox,
      h('div.song-wave', wave.el, elapsed, total),
    ),
    h('div.song-hero-art', artBox),
  );
  // Space toggles play anywhere in the player (buttons and the slider handle their own keys).
  hero.addEventListener('keydown', (e) => {
    if ((e.key === ' ' || e.key === 'Spacebar') && !e.target.closest('button, a, input, [role="slider"]')) {
      e.preventDefault();
      player.toggleSong(song, { queue: queueFor() });
    }
  });

  const actions = h('div.song-actions',
    h('div.song-actions-left', likeBtn, shareBtn, ownerTools),
    h('div.song-stats',
      h('span.stat', { title: 'Plays' }, icon('plays', 14), playCount, h('span.sr-only', ' plays')),
      h('span.stat', { title: 'Likes' }, icon('heart', 14), statLikes, h('span.sr-only', ' likes')),
    ),
  );

  // Uploader box with follow button.
  const uploader = h('div.uploader', h('div.uploader-skel'));
  users.byId(song.user.id).then((u) => {
    uploader.replaceChildren(
      h('a.uploader-avatar', { href: '/user/' + encodeURIComponent(u.username), 'aria-hidden': 'true', tabindex: '-1' }, avatar(u, 'avatar-lg')),
      h('div.uploader-info',
        h('a.uploader-name', { href: '/user/' + encodeURIComponent(u.username) }, u.display_name || u.username),
        h('span.muted', plural(u.followers_count, 'follower')),
      ),
    );
  }).catch(() => {
    uploader.replaceChildren(h('a.uploader-name', { href: '/user/' + encodeURIComponent(song.user.username) }, song.user.username));
  });

  const about = h('div.song-about',
    uploader,
    h('div.song-desc',
      song.description ? h('p.desc', song.description) : h('p.muted', 'No description.'),
      song.tag_list && song.tag_list.length ? h('div.tags', song.tag_list.map((t) => h('span.tag', '# ' + t))) : null,
      h('p.muted.small', `Uploaded ${formatDate(song.created_at)}`),
    ),
  );

  const moreList = h('ol.rows.rows-compact');
  const aside = h('aside.song-aside', { 'aria-label': `More from ${song.user.username}` },
    h('div.section-head', h('h2', `More from ${song.user.username}`), h('a.muted.small', { href: '/user/' + encodeURIComponent(song.user.username) }, 'View all')),
    moreList,
  );
  songs.byUser(song.user.id, 8).then((res) => {
    if (ctx.signal.aborted) return;
    moreSongs = (res.collection || []).filter((s) => s.state === 'ready');
    const others = moreSongs.filter((s) => String(s.id) !== String(song.id)).slice(0, 6);
    if (!others.length) { aside.hidden = true; return; }
    moreList.replaceChildren(...others.map((s) => songRow(s, () => moreSongs)));
    refreshPlaying();
  }).catch(() => { aside.hidden = true; });

  const page = h('div.page.song-page', { 'data-song-id-page': String(song.id) },
    hero,
    actions,
    h('div.song-layout',
      h('div.song-main', about, reviewsSection(song, ctx)),
      aside,
    ),
  );

  // ------------------------------------------------------------------------------------------
  // Waveform, live updates, processing state

  if (song.state === 'ready') {
    player.waveform(song).then((w) => { wave.setData(w); }).catch(() => wave.setData(null));
  } else {
    wave.setData(null);
    playBtn.disabled = true;
    renderStatus();
    if (song.state === 'processing') pollUntilReady();
  }

  function renderStatus() {
    statusBox.dataset.status = song.state || 'none';
    statusBox.hidden = song.state === 'ready';
    if (song.state === 'processing') statusBox.replaceChildren(h('span.spinner.spinner-sm', { 'aria-hidden': 'true' }), 'Processing audio… this track will be playable in a moment.');
    else if (song.state === 'failed') statusBox.replaceChildren(`Processing failed: ${song.state_reason || 'unknown reason'}.`);
    else if (song.state !== 'ready') {
      setChildren(statusBox, 'No audio has been uploaded for this track yet.',
        mine ? h('a', { href: '/upload?song=' + song.id }, ' Upload audio') : null);
    }
  }

  function pollUntilReady() {
    let timer = 0;
    const tick = async () => {
      try {
        const s = await songs.get(song.id);
        if (ctx.signal.aborted) return;
        if (s.state !== 'processing') {
          Object.assign(song, s);
          renderStatus();
          playBtn.disabled = s.state !== 'ready';
          total.textContent = formatTime(s.duration / 1000);
          if (s.state === 'ready') player.waveform(song).then((w) => wave.setData(w));
          return;
        }
      } catch { /* try again */ }
      if (!ctx.signal.aborted) timer = setTimeout(tick, 2000);
    };
    timer = setTimeout(tick, 2000);
    ctx.onLeave(() => clearTimeout(timer));
  }

  const onTime = () => { if (player.isCurrent(song)) renderTime(); };
  const onState = () => { renderPlay(); renderTime(); };
  const onCounts = (e) => {
    if (String(e.detail.id) !== String(song.id)) return;
    song.playback_count = e.detail.playback_count;
    playCount.textContent = formatCount(song.playback_count);
  };
  player.addEventListener('time', onTime);
  player.addEventListener('state', onState);
  player.addEventListener('track', onState);
  player.addEventListener('counts', onCounts);
  const offLike = onLike((d) => {
    if (d.id !== String(song.id)) return;
    liked = d.liked;
    song.likes_count = d.likes_count;
    renderLike();
  });
  ctx.onLeave(() => {
    player.removeEventListener('time', onTime);
    player.removeEventListener('state', onState);
    player.removeEventListener('track', onState);
    player.removeEventListener('counts', onCounts);
    offLike();
    wave.destroy();
  });

  renderPlay();
  renderTime();
  renderLike();
  requestAnimationFrame(() => wave.refreshAria());
  return page;
}
