// The waveform seek bar: peaks from waveform.json (`{"width","height","samples"}`) drawn as bars
// on a <canvas>, the played part in the accent colour. It is a keyboard slider too: the wrapper has
// role="slider" with aria-value*, arrows seek ±5 s, PageUp/PageDown ±30 s, Home/End.

import { formatTime } from './ui.js';

const BAR = 2;   // bar width, CSS px
const GAP = 1;   // gap between bars
const SPLIT = 0.72; // share of the height above the baseline (the rest is the reflection)

/**
 * @param {object} o
 * @param {number} o.height     CSS height of the canvas
 * @param {string} o.label      accessible name of the slider
 * @param {() => number} o.duration  seconds (0 when unknown)
 * @param {(sec:number) => void} o.onSeek
 * @param {() => void} [o.onToggle]  Space on the slider
 */
export function createWaveform({ height = 96, label = 'Seek', duration, onSeek, onToggle, testid = 'waveform' }) {
  const wrap = document.createElement('div');
  wrap.className = 'waveform';
  wrap.tabIndex = 0;
  wrap.setAttribute('role', 'slider');
  wrap.setAttribute('aria-label', label);
  wrap.setAttribute('aria-valuemin', '0');
  wrap.setAttribute('aria-valuemax', '0');
  wrap.setAttribute('aria-valuenow', '0');
  wrap.setAttribute('aria-valuetext', '0:00');
  wrap.dataset.testid = testid + '-slider';
  wrap.style.height = height + 'px';

  const canvas = document.createElement('canvas');
  canvas.className = 'waveform-canvas';
  canvas.dataset.testid = testid;
  canvas.setAttribute('aria-hidden', 'true');
  wrap.append(canvas);

  const hoverTime = document.createElement('span');
  hoverTime.className = 'waveform-hover-time';
  hoverTime.setAttribute('aria-hidden', 'true');
  wrap.append(hoverTime);

  let samples = null;  // normalised 0..1
  let progress = 0;    // 0..1
  let hover = -1;      // 0..1 or -1
  let dragging = false;
  let loading = true;
  let raf = 0;

  const ctx = canvas.getContext('2d');

  function colors() {
    const cs = getComputedStyle(wrap);
    return {
      played: cs.getPropertyValue('--wf-played').trim() || '#ff5a1f',
      played2: cs.getPropertyValue('--wf-played-2').trim() || '#ff2d6f',
      unplayed: cs.getPropertyValue('--wf-unplayed').trim() || 'rgba(255,255,255,.4)',
      hover: cs.getPropertyValue('--wf-hover').trim() || 'rgba(255,120,60,.55)',
    };
  }

  function draw() {
    raf = 0;
    const w = wrap.clientWidth;
    const hgt = height;
    if (!w) return;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(hgt * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(hgt * dpr);
      canvas.style.width = w + 'px';
      canvas.style.height = hgt + 'px';
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, hgt);
    const c = colors();
    const n = Math.max(1, Math.floor((w + GAP) / (BAR + GAP)));
    const peaks = bucket(n);
    const base = Math.round(hgt * SPLIT);
    const playedX = progress * w;
    const hoverX = hover >= 0 ? hover * w : -1;
    const grad = ctx.createLinearGradient(0, 0, 0, base);
    grad.addColorStop(0, c.played2);
    grad.addColorStop(1, c.played);
    for (let i = 0; i < n; i++) {
      const x = i * (BAR + GAP);
      const v = peaks[i];
      const up = Math.max(1, v * (base - 2));
      const down = Math.max(0.5, v * (hgt - base - 1) * 0.9);
      let fill;
      if (x + BAR / 2 <= playedX) fill = grad;
      else if (hoverX >= 0 && x <= hoverX) fill = c.hover;
      else fill = c.unplayed;
      ctx.fillStyle = fill;
      ctx.globalAlpha = 1;
      ctx.fillRect(x, base - up, BAR, up);
      ctx.globalAlpha = 0.45;
      ctx.fillRect(x, base + 1, BAR, down);
    }
    ctx.globalAlpha = 1;
  }

  function bucket(n) {
    const out = new Float32Array(n);
    if (!samples || !samples.length) {
      // Placeholder while loading / without audio: a calm, low ripple.
      for (let i = 0; i < n; i++) out[i] = loading ? 0.08 + 0.05 * Math.abs(Math.sin(i / 3)) : 0.06;
      return out;
    }
    const per = samples.length / n;
    for (let i = 0; i < n; i++) {
      const a = Math.floor(i * per);
      const b = Math.max(a + 1, Math.floor((i + 1) * per));
      let m = 0;
      for (let j = a; j < b && j < samples.length; j++) if (samples[j] > m) m = samples[j];
      out[i] = m;
    }
    return out;
  }

  function schedule() {
    if (!raf) raf = requestAnimationFrame(draw);
  }

  function updateAria() {
    const d = duration() || 0;
    const now = Math.round(progress * d);
    wrap.setAttribute('aria-valuemax', String(Math.round(d)));
    wrap.setAttribute('aria-valuenow', String(now));
    wrap.setAttribute('aria-valuetext', `${formatTime(now)} of ${formatTime(d)}`);
  }

  function fractionAt(clientX) {
    const r = wrap.getBoundingClientRect();
    return Math.max(0, Math.min(1, (clientX - r.left) / r.width));
  }

  function seekTo(fraction) {
    const d = duration();
    if (!d) { onSeek(fraction, true); return; } // unknown duration: hand the fraction over
    onSeek(fraction * d, false);
  }

  wrap.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    dragging = true;
    wrap.setPointerCapture(e.pointerId);
    progress = fractionAt(e.clientX);
    schedule();
  });
  wrap.addEventListener('pointermove', (e) => {
    const f = fractionAt(e.clientX);
    if (dragging) { progress = f; }
    hover = f;
    const d = duration();
    hoverTime.textContent = d ? formatTime(f * d) : '';
    hoverTime.style.left = (f * 100) + '%';
    wrap.classList.add('hovering');
    schedule();
  });
  wrap.addEventListener('pointerup', (e) => {
    if (!dragging) return;
    dragging = false;
    seekTo(fractionAt(e.clientX));
  });
  wrap.addEventListener('pointercancel', () => { dragging = false; });
  wrap.addEventListener('pointerleave', () => { hover = -1; wrap.classList.remove('hovering'); schedule(); });

  wrap.addEventListener('keydown', (e) => {
    const d = duration();
    const now = progress * d;
    let t = null;
    switch (e.key) {
      case 'ArrowRight': case 'ArrowUp': t = now + 5; break;
      case 'ArrowLeft': case 'ArrowDown': t = now - 5; break;
      case 'PageUp': t = now + 30; break;
      case 'PageDown': t = now - 30; break;
      case 'Home': t = 0; break;
      case 'End': t = Math.max(0, d - 1); break;
      case ' ': case 'Spacebar': case 'Enter':
        e.preventDefault();
        if (onToggle) onToggle();
        return;
      default: return;
    }
    e.preventDefault();
    if (!d) return;
    t = Math.max(0, Math.min(d, t));
    progress = t / d;
    schedule();
    updateAria();
    onSeek(t, false);
  });

  const ro = new ResizeObserver(schedule);
  ro.observe(wrap);

  return {
    el: wrap,
    canvas,
    /** `waveform.json` or null (no audio yet). */
    setData(json) {
      loading = false;
      if (json && Array.isArray(json.samples) && json.samples.length) {
        // Scale to the loudest peak, like most players do, so a quiet master still fills the
        // bar; near-silence is not blown up more than 20×.
        const height = Number(json.height) || 1;
        let peak = 0;
        for (const v of json.samples) if (v > peak) peak = v;
        const max = Math.max(peak, height / 20, 1);
        samples = json.samples.map((v) => Math.min(1, Math.max(0, v / max)));
        wrap.classList.add('has-data');
      } else {
        samples = null;
      }
      schedule();
    },
    setProgress(fraction) {
      if (dragging) return;
      const f = Math.max(0, Math.min(1, fraction || 0));
      if (Math.abs(f - progress) < 0.0005 && wrap.getAttribute('aria-valuemax') !== '0') return;
      progress = f;
      updateAria();
      schedule();
    },
    refreshAria: updateAria,
    destroy() { ro.disconnect(); if (raf) cancelAnimationFrame(raf); },
  };
}
