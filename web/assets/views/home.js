// "/": a hero, the most played of the loaded tracks, and every public track as artwork tiles
// (GET /songs, paged with next_href).

import { songs, currentUser } from '../api.js';
import { player } from '../player.js';
import { songCard, songRow, refreshPlaying } from '../cards.js';
import { h, icon, emptyState, toast } from '../ui.js';

export async function homeView(ctx) {
  document.title = 'AudioStorm — discover and stream music';
  const all = [];
  const grid = h('div.grid', { 'data-testid': 'song-grid' });
  const chart = h('ol.rows.rows-chart', { 'aria-label': 'Most played' });
  const chartSection = h('section.section', { hidden: true },
    h('div.section-head', h('h2', 'Most played right now'), h('p.muted', 'What listeners keep coming back to')),
    chart,
  );
  let nextHref = null;
  const more = h('button.btn.btn-secondary', { type: 'button', hidden: true }, 'Load more tracks');

  const me = currentUser();
  const hero = h('section.hero',
    h('div.hero-bg', { 'aria-hidden': 'true' }, h('div.hero-glow'), h('div.hero-bars', Array.from({ length: 64 }, (_, i) => {
      const b = h('span');
      b.style.height = (10 + Math.abs(Math.sin(i * 0.42) * 55) + Math.abs(Math.cos(i * 1.3)) * 25) + '%';
      b.style.animationDelay = (i % 8) * 0.12 + 's';
      return b;
    }))),
    h('div.hero-content',
      h('p.eyebrow', 'AudioStorm'),
      h('h1', 'Hear what’s next.'),
      h('p.hero-sub', 'Stream fresh tracks from independent artists, or upload your own and find the people who get it.'),
      h('div.hero-actions',
        h('button.btn.btn-primary.btn-lg', { type: 'button', 'data-testid': 'hero-play', on: { click: () => {
          if (all.length) player.playSong(all.find((s) => s.state === 'ready') || all[0], { queue: all });
          else toast('No tracks yet — be the first to upload one!', 'info');
        } } }, icon('play', 18), 'Start listening'),
        h('a.btn.btn-outline.btn-lg', { href: me ? '/upload' : '/signup' }, me ? 'Upload a track' : 'Create a free account'),
      ),
    ),
  );

  const page = h('div.page.home',
    hero,
    h('section.section',
      h('div.section-head', h('h2', 'Fresh on AudioStorm'), h('p.muted', 'Every public track on the platform')),
      grid,
      h('div.center', more),
    ),
    chartSection,
  );

  async function load(href) {
    const res = await songs.list(24, href);
    if (ctx.signal.aborted) return;
    const items = (res.collection || []).filter((s) => s.state === 'ready' || !s.state || s.state === 'processing');
    if (!all.length) grid.replaceChildren(); // the skeletons
    all.push(...items);
    for (const s of items) grid.append(songCard(s, () => all));
    nextHref = res.next_href;
    more.hidden = !nextHref;
    renderChart();
    refreshPlaying();
  }

  function renderChart() {
    const top = all.filter((s) => s.state === 'ready')
      .sort((a, b) => (b.playback_count - a.playback_count) || (b.likes_count - a.likes_count)).slice(0, 5);
    chart.replaceChildren(...top.map((s, i) => songRow(s, () => top, i + 1)));
    chartSection.hidden = top.length < 3;
  }

  more.addEventListener('click', async () => {
    more.disabled = true;
    try { await load(nextHref); } catch (e) { toast(e.message, 'error'); }
    more.disabled = false;
  });

  grid.append(...Array.from({ length: 8 }, () => h('div.card.skeleton', { 'aria-hidden': 'true' }, h('div.card-art'), h('div.sk-line'), h('div.sk-line.short'))));
  (async () => {
    try {
      await load();
    } catch (e) {
      if (!ctx.signal.aborted) grid.replaceChildren(emptyState('Could not load tracks', e.message));
      return;
    }
    if (!all.length && !ctx.signal.aborted) {
      grid.replaceChildren(emptyState('No tracks yet', 'Be the first to share something.',
        h('a.btn.btn-primary', { href: '/upload' }, icon('upload', 18), 'Upload a track')));
    }
  })();
  return page;
}
