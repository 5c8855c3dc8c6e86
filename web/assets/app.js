// Boots the client: the header's account area, the routes, and what happens when a session is lost.

import { route, setNotFound, start, navigate, onRouteChange, refresh } from './router.js';
import { currentUser, onSession, setAuthLostHandler, signOut } from './api.js';
import { h, avatar, icon, toast } from './ui.js';
import './player.js';
import { homeView } from './views/home.js';
import { songView } from './views/song.js';
import { userView } from './views/user.js';
import { uploadView } from './views/upload.js';
import { signInView, signUpView } from './views/auth.js';
import { notFoundView } from './views/notfound.js';

route('/', homeView);
route('/song/:id', songView);
route('/user/:username', userView);
route('/upload', uploadView);
route('/signin', signInView);
route('/signup', signUpView);
setNotFound(notFoundView);

/** Sends the user to sign in, coming back here afterwards. */
function toSignIn() {
  if (location.pathname === '/signin' || location.pathname === '/signup') return;
  const next = location.pathname + location.search;
  navigate('/signin?next=' + encodeURIComponent(next));
}
setAuthLostHandler(() => {
  toast('Please sign in to continue.', 'info');
  toSignIn();
});
document.addEventListener('audiostorm:signin', toSignIn);

// ---------------------------------------------------------------------------------------------
// Header

const account = document.getElementById('account');
let menuOpen = false;
let closeMenu = () => {};
document.addEventListener('click', (e) => { if (menuOpen && !account.contains(e.target)) closeMenu(); });

function renderAccount() {
  const me = currentUser();
  account.replaceChildren();
  if (!me) {
    const next = encodeURIComponent(location.pathname + location.search);
    const onAuthPage = location.pathname === '/signin' || location.pathname === '/signup';
    account.append(
      h('a.btn.btn-ghost', { href: onAuthPage ? '/signin' : '/signin?next=' + next, 'data-testid': 'nav-signin' }, 'Sign in'),
      h('a.btn.btn-primary', { href: '/signup', 'data-testid': 'nav-signup' }, h('span.hide-sm', 'Create account'), h('span.show-sm', 'Sign up')),
    );
    return;
  }
  const menuId = 'account-menu';
  const btn = h('button.account-btn', {
    type: 'button', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': menuId,
    'aria-label': `Account menu for ${me.username}`, 'data-testid': 'user-menu',
  }, avatar(me, 'avatar-sm'), h('span.account-name', me.username), icon('chevron', 16));
  const menu = h('div.menu', { id: menuId, role: 'menu', hidden: true },
    h('a.menu-item', { href: '/user/' + encodeURIComponent(me.username), role: 'menuitem', 'data-testid': 'menu-profile' }, icon('user', 18), 'Your profile'),
    h('a.menu-item', { href: '/user/' + encodeURIComponent(me.username) + '?tab=likes', role: 'menuitem' }, icon('heart', 18), 'Your likes'),
    h('a.menu-item', { href: '/upload', role: 'menuitem' }, icon('upload', 18), 'Upload'),
    h('hr.menu-sep'),
    h('button.menu-item', { type: 'button', role: 'menuitem', 'data-testid': 'signout', on: { click: doSignOut } }, 'Sign out'),
  );
  const setOpen = (open) => {
    menuOpen = open;
    menu.hidden = !open;
    btn.setAttribute('aria-expanded', String(open));
    if (open) menu.querySelector('.menu-item').focus();
  };
  btn.addEventListener('click', (e) => { e.stopPropagation(); setOpen(!menuOpen); });
  menu.addEventListener('click', () => setOpen(false));
  menu.addEventListener('keydown', (e) => {
    const items = [...menu.querySelectorAll('.menu-item')];
    const i = items.indexOf(document.activeElement);
    if (e.key === 'Escape') { setOpen(false); btn.focus(); }
    else if (e.key === 'ArrowDown') { e.preventDefault(); items[(i + 1) % items.length].focus(); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); items[(i - 1 + items.length) % items.length].focus(); }
  });
  closeMenu = () => setOpen(false);
  menuOpen = false;
  account.append(
    h('a.btn.btn-ghost.upload-link', { href: '/upload', 'aria-label': 'Upload a track' }, icon('upload', 18), h('span', 'Upload')),
    h('div.account-wrap', btn, menu),
  );
}

async function doSignOut() {
  await signOut();
  toast('Signed out. See you soon!', 'info');
  navigate('/');
}

onSession(() => {
  renderAccount();
  // The auth pages navigate on their own once signed in.
  if (location.pathname !== '/signin' && location.pathname !== '/signup') refresh();
});

onRouteChange((pattern) => {
  for (const a of document.querySelectorAll('.mainnav a')) {
    const active = (pattern === '/' && a.dataset.nav === 'home') || (pattern === '/upload' && a.dataset.nav === 'upload');
    if (active) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (!currentUser() || menuOpen) renderAccount();
});

renderAccount();
start(document.getElementById('view'));
