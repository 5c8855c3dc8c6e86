// The reviews section of a song page: summary (GET /reviews/meta), the list with sort and paging
// (GET /reviews), the form (POST /reviews), helpful and report (PUT /reviews/{id}/helpful|report).

import { reviews, users, currentUser, ApiError } from '../api.js';
import { navigate } from '../router.js';
import { h, setChildren, icon, stars, formatDate, toast, showFormError, clearFormErrors, field } from '../ui.js';

const PAGE_SIZE = 5;
const SORTS = [['relevant', 'Most relevant'], ['helpful', 'Most helpful'], ['newest', 'Newest']];
const RATING_WORDS = ['', 'Poor', 'Fair', 'Average', 'Good', 'Great'];
// The legacy dataset's characteristic scales; any other name gets a generic one.
const SCALES = {
  Size: ['A size too small', '½ a size too small', 'Perfect', '½ a size too big', 'A size too wide'],
  Width: ['Too narrow', 'Slightly narrow', 'Perfect', 'Slightly wide', 'Too wide'],
  Comfort: ['Uncomfortable', 'Slightly uncomfortable', 'Ok', 'Comfortable', 'Perfect'],
  Quality: ['Poor', 'Below average', 'What I expected', 'Pretty great', 'Perfect'],
  Length: ['Runs short', 'Runs slightly short', 'Perfect', 'Runs slightly long', 'Runs long'],
  Fit: ['Runs tight', 'Runs slightly tight', 'Perfect', 'Runs slightly long', 'Runs long'],
};
const GENERIC = ['Poor', 'Fair', 'Average', 'Good', 'Great'];
const scaleOf = (name) => SCALES[name] || GENERIC;

function votedKey() {
  const me = currentUser();
  return 'audiostorm.helpful.' + (me ? me.id : 'anon');
}
function votedSet() {
  try { return new Set(JSON.parse(localStorage.getItem(votedKey()) || '[]')); } catch { return new Set(); }
}
function rememberVote(id) {
  const s = votedSet();
  s.add(String(id));
  localStorage.setItem(votedKey(), JSON.stringify([...s].slice(-500)));
}

/** Sums a meta's string counts. */
export function summarise(meta) {
  const ratings = meta && meta.ratings ? meta.ratings : {};
  let total = 0;
  let sum = 0;
  const counts = [0, 0, 0, 0, 0, 0];
  for (const [k, v] of Object.entries(ratings)) {
    const r = Number(k);
    const n = Number(v) || 0;
    if (r >= 1 && r <= 5) { counts[r] += n; total += n; sum += r * n; }
  }
  const rec = meta && meta.recommended ? meta.recommended : {};
  const yes = Number(rec.true) || 0;
  const no = Number(rec.false) || 0;
  return { total, average: total ? sum / total : 0, counts, recommendPct: yes + no ? Math.round((yes / (yes + no)) * 100) : null };
}

export function reviewsSection(song, ctx) {
  const songId = String(song.id);
  let meta = null;
  let sort = 'relevant';
  let page = 1;
  let lastCount = 0;

  const summary = h('div.rv-summary', { 'data-testid': 'review-summary', 'aria-live': 'polite' });
  const list = h('ol.rv-list', { 'aria-label': 'Reviews' });
  const pager = h('nav.rv-pager', { 'aria-label': 'Review pages' });
  const sortSel = h('select', { id: 'rv-sort', 'data-testid': 'review-sort' }, SORTS.map(([v, t]) => h('option', { value: v }, t)));
  const listHead = h('div.rv-list-head',
    h('p.rv-count', { id: 'rv-count' }),
    h('div.rv-sort', h('label', { for: 'rv-sort' }, 'Sort by'), sortSel),
  );
  const writeBtn = h('button.btn.btn-primary', { type: 'button', 'data-testid': 'write-review', 'aria-expanded': 'false', 'aria-controls': 'rv-form-wrap' }, icon('star', 16), 'Write a review');
  const formWrap = h('div.rv-form-wrap', { id: 'rv-form-wrap', hidden: true });

  const section = h('section.section.reviews#reviews', { 'aria-labelledby': 'rv-title', 'data-testid': 'reviews' },
    h('div.section-head', h('h2', { id: 'rv-title' }, 'Ratings & reviews'), writeBtn),
    formWrap,
    h('div.rv-grid',
      summary,
      h('div.rv-main', listHead, list, pager),
    ),
  );

  sortSel.addEventListener('change', () => { sort = sortSel.value; page = 1; loadList(); });

  writeBtn.addEventListener('click', () => {
    if (!currentUser()) { navigate('/signin?next=' + encodeURIComponent(location.pathname + '#reviews')); return; }
    const open = formWrap.hidden;
    formWrap.hidden = !open;
    writeBtn.setAttribute('aria-expanded', String(open));
    if (open) {
      formWrap.replaceChildren(reviewForm());
      formWrap.querySelector('input')?.focus();
    }
  });

  // ------------------------------------------------------------------------------------------
  // Summary

  const fetchMeta = () => reviews.meta(songId).catch(() => null);

  function applyMeta(m) {
    if (!m) {
      summary.replaceChildren(h('p.muted', 'Ratings are unavailable right now.'));
      meta = meta || { ratings: {}, recommended: {}, characteristics: {} };
      return;
    }
    meta = m;
    renderSummary();
  }

  /** Summary and list fetched together and shown together, so they never disagree on screen. */
  async function reloadAll() {
    const [m, l] = await Promise.all([fetchMeta(), fetchList()]);
    if (ctx.signal.aborted) return;
    applyMeta(m);
    await applyList(l);
  }

  function renderSummary() {
    const s = summarise(meta);
    const hist = h('div.rv-hist', { role: 'list', 'aria-label': 'Rating breakdown' });
    for (let r = 5; r >= 1; r--) {
      const pct = s.total ? Math.round((s.counts[r] / s.total) * 100) : 0;
      const fill = h('span.rv-bar-fill');
      fill.style.width = pct + '%';
      hist.append(h('div.rv-hist-row', { role: 'listitem', 'data-testid': 'rating-bar-' + r, 'aria-label': `${r} stars: ${s.counts[r]} reviews` },
        h('span.rv-hist-label', `${r} star${r > 1 ? 's' : ''}`),
        h('span.rv-bar', fill),
        h('span.rv-hist-n', { 'data-testid': 'rating-count-' + r }, String(s.counts[r])),
      ));
    }
    const chars = Object.entries(meta.characteristics || {});
    setChildren(summary,
      h('div.rv-avg',
        h('span.rv-avg-num', { 'data-testid': 'review-average' }, s.total ? s.average.toFixed(1) : '–'),
        h('div',
          stars(s.average, 20),
          h('p.muted', h('span', { 'data-testid': 'review-total' }, String(s.total)), s.total === 1 ? ' review' : ' reviews'),
        ),
      ),
      s.recommendPct !== null ? h('p.rv-rec', icon('check', 16), `${s.recommendPct}% of reviewers recommend this track`) : null,
      hist,
      chars.length ? h('div.rv-chars', { 'data-testid': 'review-characteristics-summary' },
        chars.map(([name, c]) => {
          const v = c.value === null || c.value === undefined ? null : Number(c.value);
          const scale = scaleOf(name);
          const marker = h('span.rv-char-marker');
          marker.style.left = v ? ((v - 1) / 4) * 100 + '%' : '50%';
          if (!v) marker.classList.add('is-empty');
          return h('div.rv-char', { 'data-testid': 'characteristic-' + name },
            h('div.rv-char-head', h('span', name), h('span.muted', { 'data-testid': 'characteristic-value-' + name }, v ? v.toFixed(1) : 'not rated')),
            h('div.rv-char-track', { role: 'img', 'aria-label': v ? `${name}: ${v.toFixed(1)} out of 5` : `${name}: not rated yet` }, marker),
            h('div.rv-char-ends', h('span', scale[0]), h('span', scale[4])),
          );
        })) : null,
    );
    listHead.querySelector('#rv-count').textContent = s.total ? `${s.total} review${s.total === 1 ? '' : 's'}` : '';
  }

  // ------------------------------------------------------------------------------------------
  // List

  async function fetchList() {
    list.setAttribute('aria-busy', 'true');
    try {
      return await reviews.list(songId, { page, count: PAGE_SIZE, sort });
    } catch {
      return null;
    } finally {
      list.setAttribute('aria-busy', 'false');
    }
  }

  async function loadList() {
    const res = await fetchList();
    if (!ctx.signal.aborted) await applyList(res);
  }

  async function applyList(res) {
    if (!res) {
      list.replaceChildren(h('li.muted', 'Reviews are unavailable right now.'));
      return;
    }
    const items = res.results || [];
    lastCount = items.length;
    if (!items.length && page > 1) { page -= 1; return loadList(); }
    list.replaceChildren(...(items.length ? items.map(reviewItem) : [h('li.rv-empty',
      h('p', 'No reviews yet.'), h('p.muted', 'Be the first to tell others what you think of this track.'))]));
    renderPager();
  }

  function renderPager() {
    const total = meta ? summarise(meta).total : 0;
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    const hasNext = page < pages || lastCount === PAGE_SIZE && total === 0;
    const prev = h('button.btn.btn-secondary.btn-sm', { type: 'button', 'data-testid': 'reviews-prev', disabled: page <= 1 }, 'Previous');
    const next = h('button.btn.btn-secondary.btn-sm', { type: 'button', 'data-testid': 'reviews-next', disabled: !hasNext }, 'Next');
    prev.addEventListener('click', () => { page -= 1; loadList().then(() => section.scrollIntoView({ block: 'start', behavior: 'smooth' })); });
    next.addEventListener('click', () => { page += 1; loadList().then(() => section.scrollIntoView({ block: 'start', behavior: 'smooth' })); });
    pager.hidden = total <= PAGE_SIZE && page === 1;
    pager.replaceChildren(prev, h('span.muted', { 'data-testid': 'reviews-page', 'aria-live': 'polite' }, `Page ${page} of ${pages}`), next);
  }

  function reviewItem(r) {
    const voted = votedSet().has(String(r.review_id));
    const helpfulLabel = h('span', voted ? 'Thanks!' : 'Yes');
    const helpfulN = h('span.rv-helpful-n', `(${r.helpfulness || 0})`);
    const helpful = h('button.link-btn', {
      type: 'button', 'data-testid': 'review-helpful', disabled: voted,
      'aria-label': `Mark review “${r.summary}” helpful (${r.helpfulness || 0} found it helpful)`,
    }, icon('thumb', 14), helpfulLabel, helpfulN);
    helpful.addEventListener('click', async () => {
      if (!currentUser()) { navigate('/signin?next=' + encodeURIComponent(location.pathname)); return; }
      helpful.disabled = true;
      try {
        await reviews.helpful(r.review_id);
        rememberVote(r.review_id);
        r.helpfulness = (r.helpfulness || 0) + 1;
        helpfulN.textContent = `(${r.helpfulness})`;
        helpfulLabel.textContent = 'Thanks!';
        helpful.setAttribute('aria-label', `You found this review helpful (${r.helpfulness} found it helpful)`);
      } catch (e) {
        helpful.disabled = false;
        if (!(e instanceof ApiError && e.status === 401)) toast(e.message, 'error');
      }
    });
    const report = h('button.link-btn', { type: 'button', 'data-testid': 'review-report', 'aria-label': `Report review “${r.summary}”` }, icon('flag', 14), 'Report');
    report.addEventListener('click', async () => {
      if (!currentUser()) { navigate('/signin?next=' + encodeURIComponent(location.pathname)); return; }
      if (!confirm('Report this review as inappropriate? It will be hidden.')) return;
      report.disabled = true;
      try {
        await reviews.report(r.review_id);
        toast('Thanks — the review was reported and hidden.', 'info');
        await reloadAll();
      } catch (e) {
        report.disabled = false;
        if (!(e instanceof ApiError && e.status === 401)) toast(e.message, 'error');
      }
    });
    const body = String(r.body || '');
    const long = body.length > 250;
    const bodyEl = h('p.rv-body', long ? body.slice(0, 250) + '…' : body);
    const moreBtn = long ? h('button.link-btn', { type: 'button' }, 'Show more') : null;
    if (moreBtn) moreBtn.addEventListener('click', () => { bodyEl.textContent = body; moreBtn.remove(); });
    return h('li.rv-item', { 'data-testid': 'review-item', 'data-review-id': String(r.review_id) },
      h('div.rv-item-head',
        stars(r.rating, 15),
        h('span.muted.small', `${r.reviewer_name}, ${formatDate(r.date)}`),
      ),
      h('h3.rv-item-summary', r.summary),
      bodyEl, moreBtn,
      r.photos && r.photos.length ? h('div.rv-photos', r.photos.slice(0, 5).map((p) =>
        h('a', { href: p.url, target: '_blank', rel: 'noopener noreferrer', 'aria-label': 'Review photo' },
          h('img', { src: p.url, alt: '', loading: 'lazy', referrerpolicy: 'no-referrer' })))) : null,
      r.recommend ? h('p.rv-recommend', icon('check', 14), 'I recommend this track') : null,
      r.response ? h('div.rv-response', h('strong', 'Response from the artist'), h('p', r.response)) : null,
      h('div.rv-item-foot', h('span.muted.small', 'Helpful?'), helpful, h('span.rv-dot', { 'aria-hidden': 'true' }, '·'), report),
    );
  }

  // ------------------------------------------------------------------------------------------
  // The form

  function radioGroup({ legend, name, options, testid, errorFor, required = true, cls = '' }) {
    const errId = 'err-' + name.replace(/\W/g, '-');
    return h('fieldset', { class: 'rv-fieldset ' + cls, 'data-field': errorFor, 'aria-describedby': errId },
      h('legend', legend, required ? h('span.req', { 'aria-hidden': 'true' }, ' *') : null),
      h('div.rv-options', options.map(([value, label, extra]) =>
        h('label.rv-option', { 'data-testid': `${testid}-${value}` },
          h('input', { type: 'radio', name, value, required }),
          h('span.rv-option-label', label),
          extra ? h('span.rv-option-extra', extra) : null,
        ))),
      h('p.field-error', { id: errId, 'data-error-for': errorFor, role: 'alert', hidden: true }),
    );
  }

  function reviewForm() {
    const me = currentUser();
    const chars = Object.entries((meta && meta.characteristics) || {});
    const ratingWord = h('span.rv-rating-word', { 'aria-live': 'polite' });
    const ratingStars = h('fieldset.rv-fieldset.rv-stars-input', { 'data-field': 'rating', 'aria-describedby': 'err-rating' },
      h('legend', 'Overall rating', h('span.req', { 'aria-hidden': 'true' }, ' *')),
      h('div.rv-star-row',
        [1, 2, 3, 4, 5].map((v) => h('label.rv-star', { 'data-testid': 'review-rating-' + v, title: RATING_WORDS[v] },
          h('input', { type: 'radio', name: 'rating', value: String(v), class: 'sr-only' }),
          icon('star', 30),
          h('span.sr-only', `${v} star${v > 1 ? 's' : ''} — ${RATING_WORDS[v]}`),
        )),
        ratingWord,
      ),
      h('p.field-error', { id: 'err-rating', 'data-error-for': 'rating', role: 'alert', hidden: true }),
    );
    const counter = h('p.hint', { 'aria-live': 'polite' }, 'Minimum required characters left: 50');
    const bodyField = field({ label: 'Your review', name: 'body', multiline: true, testid: 'review-body-input', attrs: { maxlength: 1000, placeholder: 'What did you like or dislike? How does it sound?' } });
    bodyField.querySelector('textarea').addEventListener('input', (e) => {
      const left = 50 - e.target.value.length;
      counter.textContent = left > 0 ? `Minimum required characters left: ${left}` : 'Minimum reached';
    });
    bodyField.append(counter);
    const emailField = field({ label: 'Your email', name: 'email', type: 'email', autocomplete: 'email', testid: 'review-email-input', hint: 'For authentication reasons; you will not be emailed.', attrs: { maxlength: 60 } });
    users.me().then((p) => { const i = emailField.querySelector('input'); if (!i.value) i.value = p.email || ''; }).catch(() => {});

    const form = h('form.form.rv-form', { novalidate: true, 'data-testid': 'review-form' },
      h('h3', 'Write your review'),
      h('p.muted.small', `About “${song.title}” by ${song.user.username}`),
      h('p.form-error', { 'data-error-for': '_form', role: 'alert', hidden: true }),
      ratingStars,
      radioGroup({ legend: 'Do you recommend this track?', name: 'recommend', testid: 'review-recommend', errorFor: 'recommend', options: [['yes', 'Yes'], ['no', 'No']] }),
      chars.length ? h('div.rv-char-inputs', { 'data-testid': 'review-characteristics' },
        chars.map(([name, c]) => radioGroup({
          legend: name, name: 'char-' + c.id, testid: `review-char-${c.id}`, errorFor: `characteristics.${c.id}`, cls: 'rv-char-input',
          options: scaleOf(name).map((label, i) => [String(i + 1), String(i + 1), label]),
        }))) : null,
      field({ label: 'Review summary', name: 'summary', testid: 'review-summary-input', attrs: { maxlength: 60, placeholder: 'Example: Best track I heard all year!' } }),
      bodyField,
      h('div.field-row',
        field({ label: 'Your nickname', name: 'name', value: me ? me.username : '', autocomplete: 'nickname', testid: 'review-name-input', attrs: { maxlength: 60 }, hint: 'For privacy, do not use your full name or email.' }),
        emailField,
      ),
      h('div.form-actions',
        h('button.btn.btn-ghost', { type: 'button', on: { click: () => { formWrap.hidden = true; writeBtn.setAttribute('aria-expanded', 'false'); writeBtn.focus(); } } }, 'Cancel'),
        h('button.btn.btn-primary', { type: 'submit', 'data-testid': 'review-submit' }, 'Submit review'),
      ),
    );
    form.addEventListener('change', (e) => {
      if (e.target.name === 'rating') {
        const v = Number(e.target.value);
        ratingWord.textContent = RATING_WORDS[v];
        form.querySelectorAll('.rv-star').forEach((l, i) => l.classList.toggle('is-on', i < v));
      }
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearFormErrors(form);
      const text = (n) => String(form.elements.namedItem(n).value || '').trim();
      const val = (n) => { const el = form.querySelector(`input[name="${n}"]:checked`); return el ? el.value : null; };
      const rating = Number(val('rating'));
      if (!rating) return showFormError(form, { field: 'rating', message: 'Choose a star rating.' });
      const rec = val('recommend');
      if (!rec) return showFormError(form, { field: 'recommend', message: 'Tell us whether you recommend this track.' });
      const characteristics = {};
      for (const [name, c] of chars) {
        const v = val('char-' + c.id);
        if (!v) return showFormError(form, { field: `characteristics.${c.id}`, message: `Rate the ${name.toLowerCase()}.` });
        characteristics[String(c.id)] = Number(v);
      }
      const body = {
        song_id: songId,
        rating,
        summary: text('summary'),
        body: text('body'),
        recommend: rec === 'yes',
        name: text('name') || undefined,
        email: text('email'),
        photos: [],
        characteristics,
      };
      const btn = form.querySelector('[type="submit"]');
      btn.disabled = true;
      btn.textContent = 'Submitting…';
      try {
        await reviews.create(body);
        formWrap.hidden = true;
        writeBtn.setAttribute('aria-expanded', 'false');
        toast('Thanks for your review!', 'success');
        sort = 'newest';
        sortSel.value = 'newest';
        page = 1;
        await reloadAll();
      } catch (err) {
        btn.disabled = false;
        btn.textContent = 'Submit review';
        if (err instanceof ApiError && err.code === 'already_reviewed') {
          showFormError(form, { message: 'You have already reviewed this track.' });
        } else {
          showFormError(form, err);
        }
      }
    });
    return form;
  }

  // ------------------------------------------------------------------------------------------

  summary.append(h('div.rv-skel'));
  list.append(h('li.rv-skel'));
  reloadAll();
  return section;
}
