// "/upload": drop or pick an audio file → POST /songs (title from the file name) → POST
// /songs/{id}/audio with XMLHttpRequest (progress) → poll GET /songs/{id} while `processing` →
// `ready` with a link to the track. Details (title, genre, tags, description, privacy, artwork)
// can be edited while the file uploads and are saved with PUT /songs/{id}.
// "/upload?song=ID" uploads audio for an existing track of yours.

import { songs, uploadAudio, currentUser, ApiError } from '../api.js';
import { navigate } from '../router.js';
import { h, setChildren, icon, field, toast, showFormError, clearFormErrors, fillArtwork, formatTime } from '../ui.js';

const ACCEPT = 'audio/*,.mp3,.m4a,.aac,.mp4,.flac,.ogg,.oga,.wav';
const AUDIO_EXT = /\.(mp3|m4a|aac|mp4|flac|ogg|oga|wav)$/i;

function prettySize(bytes) {
  if (bytes < 1024 * 1024) return Math.max(1, Math.round(bytes / 1024)) + ' KB';
  return (bytes / (1024 * 1024)).toFixed(1) + ' MB';
}

function titleFromFile(name) {
  return name.replace(/\.[^.]+$/, '').replace(/[_]+/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200) || 'Untitled track';
}

export async function uploadView(ctx) {
  document.title = 'Upload · AudioStorm';
  if (!currentUser()) {
    queueMicrotask(() => navigate('/signin?next=' + encodeURIComponent('/upload' + location.search), { replace: true }));
    return h('div');
  }
  let existing = null;
  const existingId = ctx.query.get('song');
  if (existingId && /^\d+$/.test(existingId)) {
    try { existing = await songs.get(existingId); } catch { existing = null; }
  }

  const input = h('input', { type: 'file', accept: ACCEPT, class: 'sr-only', id: 'upload-input', 'data-testid': 'upload-input', 'aria-label': 'Choose an audio file to upload', tabindex: '-1' });
  const drop = h('div.dropzone', { role: 'button', tabindex: '0', 'data-testid': 'upload-dropzone', 'aria-describedby': 'drop-help', 'aria-label': 'Choose an audio file to upload, or drop one here' },
    h('div.drop-icon', icon('cloud', 56)),
    h('h2', existing ? `Upload audio for “${existing.title}”` : 'Drag and drop your track here'),
    h('p.muted', { id: 'drop-help' }, 'MP3, AAC/M4A, FLAC, Ogg Vorbis or WAV · up to 200 MB'),
    h('span.btn.btn-primary', { 'aria-hidden': 'true' }, 'or choose a file'),
  );
  const work = h('div.upload-work');
  const page = h('div.page.upload-page',
    h('div.page-head', h('h1', 'Upload'), h('p.muted', 'Share your sound with the world. Your track is processed for streaming as soon as it arrives.')),
    drop,
    input,
    work,
  );

  drop.addEventListener('click', () => input.click());
  drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); input.click(); } });
  for (const ev of ['dragenter', 'dragover']) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); e.dataTransfer.dropEffect = 'copy'; drop.classList.add('is-over'); });
  }
  for (const ev of ['dragleave', 'dragend']) drop.addEventListener(ev, () => drop.classList.remove('is-over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('is-over');
    const f = e.dataTransfer.files && e.dataTransfer.files[0];
    if (f) start(f);
  });
  input.addEventListener('change', () => { const f = input.files[0]; if (f) start(f); input.value = ''; });

  let active = null;
  ctx.onLeave(() => { if (active && active.stopPolling) active.stopPolling(); });

  function start(file) {
    if (!(file.type.startsWith('audio/') || AUDIO_EXT.test(file.name))) {
      toast('That does not look like an audio file. Try MP3, M4A, FLAC, Ogg or WAV.', 'error');
      return;
    }
    if (active && active.busy) { toast('Wait for the current upload to finish.', 'info'); return; }
    drop.classList.add('is-compact');
    active = uploadCard(file);
    work.replaceChildren(active.el);
  }

  function uploadCard(file) {
    const state = { busy: true, song: existing, stopPolling: null, dirty: false, artFile: null };
    const art = h('span.art.art-fill');
    fillArtwork(art, { id: file.name, title: existing ? existing.title : titleFromFile(file.name), artwork_url: existing && existing.artwork_url });
    const bar = h('div.progress-fill');
    const progress = h('div.progress', { role: 'progressbar', 'aria-label': 'Upload progress', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0', 'data-testid': 'upload-progress' }, bar);
    const status = h('p.upload-status', { 'data-testid': 'upload-status', 'data-status': 'uploading', 'aria-live': 'polite' }, 'Preparing…');
    const link = h('a.btn.btn-primary', { hidden: true, 'data-testid': 'upload-song-link' }, 'Go to your track', icon('arrow', 16));
    const again = h('button.btn.btn-secondary', { type: 'button', hidden: true }, 'Upload another');
    again.addEventListener('click', () => { work.replaceChildren(); drop.classList.remove('is-compact'); active = null; input.click(); });

    const setStatus = (kind, text) => {
      status.dataset.status = kind;
      status.className = 'upload-status is-' + kind;
      setChildren(status, kind === 'processing' || kind === 'uploading' ? h('span.spinner.spinner-sm', { 'aria-hidden': 'true' }) : kind === 'ready' ? icon('check', 16) : null, text);
    };
    const setProgress = (f) => {
      const pct = Math.round(f * 100);
      bar.style.width = pct + '%';
      progress.setAttribute('aria-valuenow', String(pct));
    };

    // Details form
    const artInput = h('input', { type: 'file', accept: 'image/jpeg,image/png', class: 'sr-only', id: 'upload-art', 'data-testid': 'upload-artwork-input' });
    artInput.addEventListener('change', () => {
      const f = artInput.files[0];
      if (!f) return;
      state.artFile = f;
      state.dirty = true;
      const url = URL.createObjectURL(f);
      art.replaceChildren(h('img', { src: url, alt: '' }));
      art.classList.remove('art-generated');
    });
    const title0 = existing ? existing.title : titleFromFile(file.name);
    const form = h('form.form.upload-form', { novalidate: true, 'data-testid': 'upload-form' },
      h('p.form-error', { 'data-error-for': '_form', role: 'alert', hidden: true }),
      field({ label: 'Title', name: 'title', value: title0, required: true, testid: 'upload-title', attrs: { maxlength: 200 } }),
      h('div.field-row',
        field({ label: 'Genre', name: 'genre', value: existing ? existing.genre : '', testid: 'upload-genre', attrs: { maxlength: 50, placeholder: 'e.g. Electronic', list: 'genres' } }),
        field({ label: 'Tags', name: 'tag_list', value: existing ? (existing.tag_list || []).join(', ') : '', testid: 'upload-tags', hint: 'Comma separated', attrs: { placeholder: 'chill, lofi' } }),
      ),
      h('datalist#genres', ['Electronic', 'Hip-hop & Rap', 'Pop', 'Rock', 'Ambient', 'House', 'Techno', 'Lo-fi', 'Jazz', 'Classical', 'R&B & Soul', 'Indie', 'Podcast'].map((g) => h('option', { value: g }))),
      field({ label: 'Description', name: 'description', value: existing ? existing.description : '', multiline: true, testid: 'upload-description', attrs: { maxlength: 4000, placeholder: 'Tell listeners about your track' } }),
      h('fieldset.privacy', { 'data-field': 'sharing' },
        h('legend', 'Privacy'),
        h('label.radio', h('input', { type: 'radio', name: 'sharing', value: 'public', checked: !existing || existing.sharing !== 'private' }), h('span', h('strong', 'Public'), h('span.muted', ' — anyone can find and play it'))),
        h('label.radio', h('input', { type: 'radio', name: 'sharing', value: 'private', checked: existing && existing.sharing === 'private' }), h('span', h('strong', 'Private'), h('span.muted', ' — only you (and people with a secret link)'))),
        h('p.field-error', { 'data-error-for': 'sharing', hidden: true }),
      ),
      h('div.form-actions',
        h('button.btn.btn-secondary', { type: 'submit', 'data-testid': 'upload-save', disabled: !existing }, 'Save details'),
      ),
    );
    form.addEventListener('input', () => { state.dirty = true; });
    form.addEventListener('submit', (e) => { e.preventDefault(); save(); });

    async function save({ quiet = false } = {}) {
      if (!state.song) return true;
      clearFormErrors(form);
      const v = (n) => String(form.elements.namedItem(n).value || '');
      const fields = {
        title: v('title').trim(),
        genre: v('genre').trim(),
        description: v('description').trim(),
        tag_list: v('tag_list').split(',').map((t) => t.trim()).filter(Boolean),
        sharing: form.querySelector('input[name="sharing"]:checked').value,
      };
      const btn = form.querySelector('[type="submit"]');
      btn.disabled = true;
      try {
        state.song = await songs.update(state.song.id, fields);
        if (state.artFile) {
          state.song = await songs.setArtwork(state.song.id, state.artFile);
          state.artFile = null;
        }
        state.dirty = false;
        if (!quiet) toast('Details saved.', 'success');
        return true;
      } catch (err) {
        showFormError(form, err);
        return false;
      } finally {
        btn.disabled = false;
      }
    }

    link.addEventListener('click', async (e) => {
      e.preventDefault();
      if (state.dirty && !(await save({ quiet: true }))) return;
      navigate('/song/' + state.song.id);
    });

    const el = h('section.upload-card', { 'aria-label': `Uploading ${file.name}` },
      h('div.upload-art',
        art,
        h('label.btn.btn-pill.btn-sm.upload-art-btn', { for: 'upload-art' }, 'Add artwork'),
        artInput,
      ),
      h('div.upload-main',
        h('div.upload-file', h('strong', file.name), h('span.muted', ' · ' + prettySize(file.size))),
        progress,
        h('div.upload-status-row', status, h('div.upload-links', again, link)),
        form,
      ),
    );

    (async () => {
      try {
        setStatus('uploading', 'Creating your track…');
        if (!state.song) {
          state.song = await songs.create({ title: title0, sharing: 'public' });
          if (!state.artFile) fillArtwork(art, state.song);
          form.querySelector('[type="submit"]').disabled = false;
        }
        setStatus('uploading', 'Uploading… 0%');
        const up = uploadAudio(state.song.id, file, (f) => {
          setProgress(f);
          setStatus('uploading', f < 1 ? `Uploading… ${Math.round(f * 100)}%` : 'Checking your audio…');
        });
        state.abort = up.abort;
        const song = await up.promise;
        setProgress(1);
        Object.assign(state.song, song);
        await waitUntilReady();
      } catch (err) {
        state.busy = false;
        const created = state.song && !existing;
        if (err instanceof ApiError && err.code === 'duplicate_audio') {
          setStatus('error', 'This audio is already on AudioStorm.');
          if (err.body.song_id) {
            status.append(' ', h('a', { href: '/song/' + err.body.song_id }, 'Open that track'));
          }
        } else {
          setStatus('error', err.message || 'The upload failed.');
        }
        progress.classList.add('is-error');
        form.hidden = true;
        again.hidden = false;
        again.textContent = 'Try another file';
        // An empty track left behind by a refused upload helps no one.
        if (created) { songs.remove(state.song.id).catch(() => {}); state.song = null; }
        form.querySelector('[type="submit"]').disabled = true;
      }
    })();

    async function waitUntilReady() {
      setStatus('processing', 'Processing… we are preparing your track for streaming.');
      let timer = 0;
      let stopped = false;
      state.stopPolling = () => { stopped = true; clearTimeout(timer); };
      for (;;) {
        await new Promise((r) => { timer = setTimeout(r, 1200); });
        if (stopped) return;
        let s;
        try { s = await songs.get(state.song.id); } catch { continue; }
        if (s.state === 'processing') continue;
        state.busy = false;
        state.song = Object.assign(state.song, s);
        if (s.state === 'ready') {
          setStatus('ready', `Ready — ${formatTime(s.duration / 1000)} of audio, now streaming.`);
          link.href = '/song/' + s.id;
          link.hidden = false;
          again.hidden = false;
          if (!state.artFile && s.artwork_url) fillArtwork(art, s);
          toast('Your track is ready!', 'success');
        } else {
          setStatus('error', `Processing failed: ${s.state_reason || 'unknown reason'}`);
          again.hidden = false;
        }
        return;
      }
    }

    Object.defineProperty(state, 'el', { value: el });
    return state;
  }

  if (existing && String(existing.user.id) !== String(currentUser().id)) {
    return h('div.page-message', h('h1', 'Not your track'), h('p', 'You can only upload audio for your own tracks.'), h('a.btn.btn-primary', { href: '/upload' }, 'Upload a new track'));
  }
  return page;
}
