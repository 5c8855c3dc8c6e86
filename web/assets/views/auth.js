// /signin and /signup.

import { signIn, signUp, currentUser, ApiError } from '../api.js';
import { navigate } from '../router.js';
import { h, field, showFormError, clearFormErrors, toast } from '../ui.js';

function safeNext(query) {
  const next = query.get('next') || '/';
  // Only our own client paths: never an absolute URL (open redirect) nor the auth pages again.
  if (!next.startsWith('/') || next.startsWith('//') || next.startsWith('/signin') || next.startsWith('/signup')) return '/';
  return next;
}

function shell(title, subtitle, form, footer) {
  return h('div.auth-page',
    h('div.auth-art', { 'aria-hidden': 'true' },
      h('div.auth-art-inner',
        h('img', { src: '/assets/logo.svg', alt: '', width: 56, height: 56 }),
        h('p.auth-art-quote', 'Upload your sound. Find your crowd.'),
        h('div.auth-bars', Array.from({ length: 48 }, (_, i) => {
          const b = h('span');
          b.style.height = (18 + Math.abs(Math.sin(i * 0.55) * 70) + (i % 5) * 3) + '%';
          return b;
        })),
      ),
    ),
    h('div.auth-card',
      h('h1', title),
      h('p.muted', subtitle),
      form,
      h('p.auth-footer', footer),
    ),
  );
}

function busy(form, on, label) {
  const btn = form.querySelector('button[type="submit"]');
  btn.disabled = on;
  btn.setAttribute('aria-busy', String(on));
  if (label) btn.textContent = label;
}

export function signInView(ctx) {
  const next = safeNext(ctx.query);
  if (currentUser()) { queueMicrotask(() => navigate(next, { replace: true })); return h('div'); }
  const form = h('form.form', { novalidate: true, 'data-testid': 'signin-form' },
    h('p.form-error', { 'data-error-for': '_form', role: 'alert', hidden: true }),
    field({ label: 'Username or email', name: 'login', autocomplete: 'username', required: true, testid: 'signin-login' }),
    field({ label: 'Password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, testid: 'signin-password' }),
    h('button.btn.btn-primary.btn-block', { type: 'submit', 'data-testid': 'signin-submit' }, 'Sign in'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFormErrors(form);
    const login = form.login.value.trim();
    const password = form.password.value;
    if (!login) return showFormError(form, { field: 'login', message: 'Enter your username or email.' });
    if (!password) return showFormError(form, { field: 'password', message: 'Enter your password.' });
    busy(form, true, 'Signing in…');
    try {
      const me = await signIn(login, password);
      toast(`Welcome back, ${me.username}!`, 'success');
      navigate(next, { replace: true });
    } catch (err) {
      busy(form, false, 'Sign in');
      // invalid_credentials names no field: say it above the form.
      showFormError(form, err instanceof ApiError ? err : { message: String(err) });
    }
  });
  return shell('Welcome back', 'Sign in to like tracks, follow artists and upload your own.', form,
    ['New to AudioStorm? ', h('a', { href: '/signup' + (next !== '/' ? '?next=' + encodeURIComponent(next) : '') }, 'Create an account')]);
}

export function signUpView(ctx) {
  const next = safeNext(ctx.query);
  if (currentUser()) { queueMicrotask(() => navigate(next, { replace: true })); return h('div'); }
  const form = h('form.form', { novalidate: true, 'data-testid': 'signup-form' },
    h('p.form-error', { 'data-error-for': '_form', role: 'alert', hidden: true }),
    field({ label: 'Display name', name: 'display_name', autocomplete: 'name', required: true, testid: 'signup-display-name', hint: 'Shown on your profile and tracks.' }),
    field({ label: 'Username', name: 'username', autocomplete: 'username', required: true, testid: 'signup-username',
      hint: '3–30 characters: letters, digits, _ and -.', attrs: { autocapitalize: 'none', spellcheck: 'false' } }),
    field({ label: 'Email', name: 'email', type: 'email', autocomplete: 'email', required: true, testid: 'signup-email' }),
    field({ label: 'Password', name: 'password', type: 'password', autocomplete: 'new-password', required: true, testid: 'signup-password', hint: 'At least 10 characters.' }),
    h('button.btn.btn-primary.btn-block', { type: 'submit', 'data-testid': 'signup-submit' }, 'Create account'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFormErrors(form);
    const body = {
      display_name: form.display_name.value.trim(),
      username: form.username.value.trim(),
      email: form.email.value.trim(),
      password: form.password.value,
    };
    busy(form, true, 'Creating account…');
    try {
      await signUp(body);
      await signIn(body.username, body.password);
      toast(`Welcome to AudioStorm, ${body.display_name || body.username}!`, 'success');
      navigate(next, { replace: true });
    } catch (err) {
      busy(form, false, 'Create account');
      showFormError(form, err instanceof ApiError ? err : { message: String(err) });
    }
  });
  return shell('Create your account', 'Join the crowd: share tracks, follow artists, review music.', form,
    ['Already have an account? ', h('a', { href: '/signin' + (next !== '/' ? '?next=' + encodeURIComponent(next) : '') }, 'Sign in')]);
}
