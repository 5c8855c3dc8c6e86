// "/user/:username": profile header with follow button and counts; tabs for the user's tracks,
// likes, followers and followings.

import { users, songs, currentUser, followedIds, rememberFollow, ApiError } from '../api.js';
import { navigate } from '../router.js';
import { songRow, refreshPlaying } from '../cards.js';
import { h, icon, avatar, paletteFor, formatCount, plural, toast, emptyState, announce } from '../ui.js';

const TABS = [
  ['tracks', 'Tracks'],
  ['likes', 'Likes'],
  ['followers', 'Followers'],
  ['following', 'Following'],
];

export async function userView(ctx) {
  let user;
  try {
    user = await users.byUsername(ctx.params.username);
  } catch (e) {
    if (e.status === 404) throw new ApiError(404, { message: `There is no one called “${ctx.params.username}” here.` });
    throw e;
  }
  document.title = `${user.display_name || user.username} · AudioStorm`;
  const me = currentUser();
  const isMe = !!(me && String(me.id) === String(user.id));

  // ------------------------------------------------------------------------------------------
  // Header

  const followersN = h('strong', { 'data-testid': 'followers-count' }, formatCount(user.followers_count));
  const followBtn = h('button.btn.follow-btn', { type: 'button', 'data-testid': 'follow-button', 'aria-pressed': 'false', hidden: isMe });
  let following = false;
  function renderFollow() {
    followBtn.setAttribute('aria-pressed', String(following));
    followBtn.classList.toggle('btn-primary', !following);
    followBtn.classList.toggle('btn-secondary', following);
    followBtn.setAttribute('aria-label', `${following ? 'Unfollow' : 'Follow'} ${user.display_name || user.username}`);
    followBtn.replaceChildren(following ? icon('check', 16) : icon('user', 16), following ? 'Following' : 'Follow');
  }
  followBtn.addEventListener('click', async () => {
    if (!currentUser()) { navigate('/signin?next=' + encodeURIComponent(location.pathname)); return; }
    followBtn.disabled = true;
    const want = !following;
    try {
      if (want) await users.follow(user.id); else await users.unfollow(user.id);
      following = want;
      rememberFollow(user.id, want);
      user.followers_count = Math.max(0, (user.followers_count || 0) + (want ? 1 : -1));
      followersN.textContent = formatCount(user.followers_count);
      announce(want ? `You now follow ${user.username}` : `You unfollowed ${user.username}`);
      if (tab === 'followers') loadTab('followers');
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) toast(e.message, 'error');
    }
    followBtn.disabled = false;
    renderFollow();
  });
  renderFollow();
  if (me && !isMe) followedIds().then((ids) => { following = ids.has(String(user.id)); renderFollow(); }).catch(() => {});

  const [a, b] = paletteFor('u' + user.id);
  const banner = h('div.profile-banner', { 'aria-hidden': 'true' });
  banner.style.setProperty('--art-a', a);
  banner.style.setProperty('--art-b', b);

  const header = h('header.profile',
    banner,
    h('div.profile-inner',
      avatar(user, 'avatar-xl'),
      h('div.profile-info',
        h('h1.profile-name', { 'data-testid': 'profile-name' }, user.display_name || user.username),
        h('p.profile-handle', '@' + user.username),
        user.bio ? h('p.profile-bio', user.bio) : null,
        h('div.profile-stats',
          h('a', { href: `/user/${encodeURIComponent(user.username)}?tab=followers` }, followersN, ' ', h('span', user.followers_count === 1 ? 'follower' : 'followers')),
          h('a', { href: `/user/${encodeURIComponent(user.username)}?tab=following` }, h('strong', { 'data-testid': 'followings-count' }, formatCount(user.followings_count)), ' following'),
        ),
      ),
      h('div.profile-actions',
        followBtn,
        isMe ? h('a.btn.btn-secondary', { href: '/upload' }, icon('upload', 16), 'Upload') : null,
      ),
    ),
  );

  // ------------------------------------------------------------------------------------------
  // Tabs

  let tab = TABS.some(([k]) => k === ctx.query.get('tab')) ? ctx.query.get('tab') : 'tracks';
  const panel = h('div.tab-panel', { role: 'tabpanel', id: 'profile-panel', tabindex: '0' });
  const tabButtons = TABS.map(([key, label]) => h('button.tab', {
    type: 'button', role: 'tab', id: 'tab-' + key, 'aria-controls': 'profile-panel', 'data-testid': 'tab-' + key,
    on: { click: () => selectTab(key, true) },
  }, label));
  const tablist = h('div.tabs', { role: 'tablist', 'aria-label': 'Profile sections' }, tabButtons);
  tablist.addEventListener('keydown', (e) => {
    const i = TABS.findIndex(([k]) => k === tab);
    let j = null;
    if (e.key === 'ArrowRight') j = (i + 1) % TABS.length;
    else if (e.key === 'ArrowLeft') j = (i - 1 + TABS.length) % TABS.length;
    else if (e.key === 'Home') j = 0;
    else if (e.key === 'End') j = TABS.length - 1;
    if (j === null) return;
    e.preventDefault();
    selectTab(TABS[j][0], true);
    tabButtons[j].focus();
  });

  function selectTab(key, push) {
    tab = key;
    tabButtons.forEach((btn, i) => {
      const on = TABS[i][0] === key;
      btn.setAttribute('aria-selected', String(on));
      btn.tabIndex = on ? 0 : -1;
    });
    panel.setAttribute('aria-labelledby', 'tab-' + key);
    if (push) history.replaceState(history.state, '', `/user/${encodeURIComponent(user.username)}${key === 'tracks' ? '' : '?tab=' + key}`);
    loadTab(key);
  }

  let loadSeq = 0;
  async function loadTab(key) {
    const seq = ++loadSeq;
    panel.replaceChildren(h('div.spinner-wrap', h('span.spinner')));
    const who = user.display_name || user.username;
    try {
      if (key === 'tracks' || key === 'likes') {
        const fetchPage = (href) => (key === 'tracks' ? songs.byUser(user.id, 20, href) : songs.likedBy(user.id, 20, href));
        const all = [];
        const list = h('ol.rows', { 'data-testid': key === 'tracks' ? 'user-tracks' : 'user-likes' });
        const more = h('button.btn.btn-secondary', { type: 'button', hidden: true }, 'Load more');
        const addPage = async (href) => {
          const res = await fetchPage(href);
          if (seq !== loadSeq) return;
          const start = all.length;
          all.push(...(res.collection || []));
          list.append(...(res.collection || []).map((s, i) => songRow(s, () => all, start + i + 1)));
          more.hidden = !res.next_href;
          more.onclick = () => addPage(res.next_href);
          refreshPlaying();
        };
        await addPage();
        if (seq !== loadSeq) return;
        if (!all.length) {
          panel.replaceChildren(key === 'tracks'
            ? emptyState(isMe ? 'You have not uploaded anything yet' : `${who} has not uploaded any tracks yet`, null,
              isMe ? h('a.btn.btn-primary', { href: '/upload' }, icon('upload', 16), 'Upload your first track') : null)
            : emptyState(isMe ? 'Tracks you like will show up here' : `${who} has not liked any tracks yet`));
          return;
        }
        panel.replaceChildren(list, h('div.center', more));
      } else {
        const fetchPage = (href) => (key === 'followers' ? users.followers(user.id, 48, href) : users.followings(user.id, 48, href));
        const grid = h('ul.people', { 'data-testid': key === 'followers' ? 'user-followers' : 'user-following' });
        const more = h('button.btn.btn-secondary', { type: 'button', hidden: true }, 'Load more');
        let count = 0;
        const addPage = async (href) => {
          const res = await fetchPage(href);
          if (seq !== loadSeq) return;
          count += (res.collection || []).length;
          grid.append(...(res.collection || []).map(personTile));
          more.hidden = !res.next_href;
          more.onclick = () => addPage(res.next_href);
        };
        await addPage();
        if (seq !== loadSeq) return;
        if (!count) {
          panel.replaceChildren(emptyState(key === 'followers' ? `No followers yet` : `${isMe ? 'You are' : who + ' is'} not following anyone yet`));
          return;
        }
        panel.replaceChildren(grid, h('div.center', more));
      }
    } catch (e) {
      if (seq === loadSeq) panel.replaceChildren(emptyState('Could not load this list', e.message));
    }
  }

  const page = h('div.page.user-page', header, tablist, panel);
  selectTab(tab, false);
  return page;
}

function personTile(u) {
  const href = '/user/' + encodeURIComponent(u.username);
  return h('li.person', { 'data-testid': 'person' },
    h('a.person-link', { href },
      avatar(u, 'avatar-lg'),
      h('span.person-name', u.display_name || u.username),
      h('span.muted.small', plural(u.followers_count, 'follower')),
    ),
  );
}
