// The self-contained HTML page of `gmemkit view`: inline CSS and script, the data embedded as
// JSON, no network. It draws the page map of each guest_memfd (shared / private / pinned / mapped
// / huge, by range; neighbouring ranges narrower than the map's resolution are merged, so a TiB
// file with many runs still draws a bounded number of ranges), its history over time, and the
// trace's timeline; the step under the cursor is explained and the page map follows the cursor.

/** Ranges drawn per guest_memfd at most; narrower runs merge into 'mixed' ranges. */
export const MAX_RANGES = 1000;

const CSS = `
body{font:13px system-ui,sans-serif;margin:0;background:#fafafa;color:#222}
header{padding:8px 14px;background:#263238;color:#fff}header h1{font-size:16px;margin:0}
main{padding:8px 14px}section{margin-bottom:12px}h2{font-size:14px;margin:6px 0}
.legend span{display:inline-block;margin-right:12px}.sw{display:inline-block;width:12px;height:12px;vertical-align:middle;margin-right:4px;border:1px solid #0003}
.map{position:relative;height:26px;background:#e0e0e0;border:1px solid #999;margin:2px 0 8px}
.range{position:absolute;top:0;height:100%;box-sizing:border-box}
.range.pinned{border-top:5px solid #d32f2f}.range.mapped{border-bottom:5px solid #1976d2}
.shared{background:#c8e6c9}.private{background:#7e57c2}.pending{background:#ffb74d}.mixed{background:repeating-linear-gradient(45deg,#7e57c2 0 3px,#c8e6c9 3px 6px)}.huge{outline:2px solid #000}
#timeline{border:1px solid #999;background:#fff;cursor:crosshair}#history{border:1px solid #999;background:#fff}
#explain{white-space:pre-wrap;background:#fff;border:1px solid #999;padding:8px;min-height:80px;font-family:ui-monospace,monospace;font-size:12px}
.meta{color:#555}
`;

const SCRIPT = String.raw`
const DATA = JSON.parse(document.getElementById('gmemkit-data').textContent);
const MAX_RANGES = ${MAX_RANGES};
const F = { PRIVATE: 1, PINNED: 2, MAPPED: 4, HUGE: 8, PENDING: 16 };
const $ = (id) => document.getElementById(id);
let proc = DATA.processes[0];
let cursorTs = null;

function pagesText(n) { const b = n * 4096; for (const [s, m] of [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 1024]]) if (b >= m) return (b / m).toFixed(b % m ? 1 : 0) + s; return b + 'B'; }

/** Runs narrower than pages/MAX_RANGES merge with their neighbours into one range (union of flags, share of private). */
function mergeRuns(runs, pages) {
  if (runs.length <= MAX_RANGES) return runs.map(([lo, hi, f]) => ({ lo, hi, f, priv: f & F.PRIVATE ? hi - lo : 0, parts: 1 }));
  const bucket = pages / MAX_RANGES;
  const out = [];
  let cur = null;
  for (const [lo, hi, f] of runs) {
    const wide = hi - lo >= bucket;
    if (cur && (wide || cur.hi - cur.lo >= bucket)) { out.push(cur); cur = null; }
    if (wide) { out.push({ lo, hi, f, priv: f & F.PRIVATE ? hi - lo : 0, parts: 1 }); continue; }
    if (!cur) cur = { lo, hi, f, priv: 0, parts: 0 };
    cur.hi = hi; cur.f |= f; cur.parts++; if (f & F.PRIVATE) cur.priv += hi - lo;
  }
  if (cur) out.push(cur);
  return out;
}

function snapshotAt(ts) {
  const snaps = proc.snapshots;
  if (!snaps.length) return null;
  if (ts === null) return snaps[snaps.length - 1];
  let best = snaps[0];
  for (const s of snaps) { if (s.ts <= ts) best = s; else break; }
  return best;
}

function drawMaps() {
  const box = $('maps');
  box.textContent = '';
  const snap = snapshotAt(cursorTs);
  if (!snap) { box.textContent = 'No page map in this input (traces of gmemkit run/simulate/check on the model have one).'; return; }
  $('snapinfo').textContent = 'after step ' + snap.step + (cursorTs === null ? ' (the last)' : '');
  if (!snap.maps.length) box.textContent = 'No guest_memfd exists after this step.';
  for (const m of snap.maps) {
    const head = document.createElement('div');
    head.className = 'meta';
    const ranges = mergeRuns(m.runs, m.pages);
    head.textContent = m.name + ': ' + pagesText(m.pages) + ', ' + m.runs.length + ' runs, ' + ranges.length + ' ranges drawn';
    box.appendChild(head);
    const bar = document.createElement('div');
    bar.className = 'map';
    bar.dataset.name = m.name;
    for (const r of ranges) {
      const d = document.createElement('div');
      const mixed = r.parts > 1 && r.priv > 0 && r.priv < r.hi - r.lo;
      d.className = 'range ' + (mixed ? 'mixed' : r.f & F.PENDING ? 'pending' : r.f & F.PRIVATE ? 'private' : 'shared') + (r.f & F.PINNED ? ' pinned' : '') + (r.f & F.MAPPED ? ' mapped' : '') + (r.f & F.HUGE ? ' huge' : '');
      d.style.left = (100 * r.lo / m.pages) + '%';
      d.style.width = Math.max(0.05, 100 * (r.hi - r.lo) / m.pages) + '%';
      const what = [r.f & F.PRIVATE ? (mixed ? 'partly private (' + Math.round(100 * r.priv / (r.hi - r.lo)) + '%)' : 'private') : 'shared', r.f & F.PINNED ? 'pinned' : '', r.f & F.MAPPED ? 'mapped' : '', r.f & F.PENDING ? 'pending' : ''].filter(Boolean).join(', ');
      d.title = 'pages [' + r.lo + ', ' + r.hi + ') = ' + pagesText(r.hi - r.lo) + ': ' + what + (r.parts > 1 ? ' (' + r.parts + ' runs merged)' : '');
      bar.appendChild(d);
    }
    box.appendChild(bar);
  }
}

const COLORS = { shared: '#c8e6c9', private: '#7e57c2', pending: '#ffb74d' };
function drawHistory() {
  const c = $('history');
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  const snaps = proc.snapshots;
  if (!snaps.length) return;
  const rows = Math.min(snaps.length, c.height);
  const h = c.height / rows;
  for (let i = 0; i < rows; i++) {
    const s = snaps[Math.floor(i * snaps.length / rows)];
    const m = s.maps[0];
    if (!m) continue;
    for (const r of mergeRuns(m.runs, m.pages)) {
      g.fillStyle = r.f & F.PENDING ? COLORS.pending : r.f & F.PRIVATE ? COLORS.private : COLORS.shared;
      const x = c.width * r.lo / m.pages;
      g.fillRect(x, i * h, Math.max(1, c.width * (r.hi - r.lo) / m.pages), Math.ceil(h));
      if (r.f & F.PINNED) { g.fillStyle = '#d32f2f'; g.fillRect(x, i * h, Math.max(1, c.width * (r.hi - r.lo) / m.pages), Math.max(1, h / 4)); }
    }
  }
}

const ROW = 22, LEFT = 190, COUNTER_H = 26;
let span = { t0: 0, t1: 1 };
function layout() {
  let t0 = Infinity, t1 = 0;
  for (const s of proc.slices) { t0 = Math.min(t0, s[1]); t1 = Math.max(t1, s[1] + s[2]); }
  if (!isFinite(t0)) { t0 = 0; t1 = 1; }
  span = { t0, t1: Math.max(t1, t0 + 1) };
  const c = $('timeline');
  const counters = Object.keys(proc.counters);
  c.height = 20 + counters.length * COUNTER_H + proc.tracks.length * ROW;
}
const xOf = (ts) => LEFT + ($('timeline').width - LEFT - 10) * (ts - span.t0) / (span.t1 - span.t0);
const tsOf = (x) => span.t0 + (x - LEFT) * (span.t1 - span.t0) / ($('timeline').width - LEFT - 10);
function rowY(track) { return 20 + Object.keys(proc.counters).length * COUNTER_H + track * ROW; }

function drawTimeline() {
  const c = $('timeline');
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  g.font = '11px system-ui';
  g.fillStyle = '#333';
  g.fillText('simulated time (1 step = 1 ms shown) →', LEFT, 12);
  Object.entries(proc.counters).forEach(([name, pts], i) => {
    const y = 20 + i * COUNTER_H;
    g.fillStyle = '#333'; g.fillText(name, 4, y + 15);
    const max = Math.max(1, ...pts.map((p) => p[1]));
    g.strokeStyle = '#00897b'; g.beginPath();
    pts.forEach(([ts, v], k) => { const x = xOf(ts), yy = y + COUNTER_H - 4 - (COUNTER_H - 8) * v / max; if (k) g.lineTo(x, yy); else g.moveTo(x, yy); });
    g.lineTo(xOf(span.t1), y + COUNTER_H - 4 - (COUNTER_H - 8) * (pts.length ? pts[pts.length - 1][1] : 0) / max);
    g.stroke();
    g.fillStyle = '#777'; g.fillText('max ' + max.toLocaleString('en'), c.width - 90, y + 10);
  });
  proc.tracks.forEach((name, i) => {
    const y = rowY(i);
    g.fillStyle = i % 2 ? '#f5f5f5' : '#fff'; g.fillRect(0, y, c.width, ROW);
    g.fillStyle = '#333'; g.fillText(name.length > 30 ? name.slice(0, 29) + '…' : name, 4, y + 15);
  });
  g.save(); g.beginPath(); g.rect(LEFT, 0, c.width - LEFT, c.height); g.clip();
  for (const [track, ts, dur, name, args] of proc.slices) {
    const x = xOf(ts), w = Math.max(1, xOf(ts + dur) - x), y = rowY(track) + 3;
    const out = String(args.outcome ?? '');
    g.fillStyle = /EAGAIN|EBUSY|EFAULT|EINVAL|SIGBUS|fail|stuck|not released/.test(out + name) ? '#e57373' : track === proc.tracks.indexOf('kernel') ? '#90a4ae' : '#64b5f6';
    g.fillRect(x, y, w, ROW - 6);
    if (w > 40) { g.fillStyle = '#000'; g.fillText(name.slice(0, Math.floor(w / 6)), x + 2, y + 12); }
  }
  g.strokeStyle = '#ef6c00'; g.fillStyle = '#ef6c00';
  for (const [a, ta, b, tb] of proc.flows) {
    const x1 = xOf(ta), y1 = rowY(a) + ROW / 2, x2 = xOf(tb), y2 = rowY(b) + ROW / 2;
    g.beginPath(); g.moveTo(x1, y1); g.lineTo(x2, y2); g.stroke();
    g.beginPath(); g.arc(x2, y2, 3, 0, 7); g.fill();
  }
  g.restore();
  if (cursorTs !== null) { g.strokeStyle = '#000'; g.beginPath(); g.moveTo(xOf(cursorTs), 14); g.lineTo(xOf(cursorTs), c.height); g.stroke(); }
}

const EXPLAIN = [
  [/setMemoryAttributes2/, /EAGAIN/, 'KVM_SET_MEMORY_ATTRIBUTES2 refused the conversion to private: a page of the range carries references besides the page cache (a pin, a host mapping, I/O in flight). error_offset names the first such page; the manager looks up its holders in the pin registry.'],
  [/setMemoryAttributes2/, /^ok/, 'KVM_SET_MEMORY_ATTRIBUTES2 converted the range: to private, after zapping the host mappings and finding no extra references; to shared, which never fails on references.'],
  [/^release: wait/, null, 'The manager asked this holder to let go. Its I/O is in flight and is never cancelled: the manager waits for the device to complete it (a flow continues to that completion).'],
  [/^release/, null, 'The manager asked this holder to drop its references on the range (unregister the buffers, unmap the DMA, unmap the backend mapping) so that the retried conversion can go through.'],
  [/^I\/O completed/, null, 'The awaited I/O completed: the device moved its data and the short-term pin is gone; the manager can retry.'],
  [/^not released/, null, 'A holder at error_offset that the manager did not release (the policy stopped or gave up).'],
  [/MapGPA again/, null, 'The guest re-issues MapGPA (TDX RETRY) from the GPA the VMM returned.'],
  [/MapGPA|map_gpa_range|request_start/, null, 'The guest asks the VMM to convert a GPA range (KVM_HC_MAP_GPA_RANGE); the conversion manager serves it.'],
  [/touch/, null, 'After a conversion to private the guest touches the page: it works once the page is private and mapped for the guest.'],
  [/start →|manager_step|convert/, null, 'One action of the conversion manager: fence and (preunmap) release first; then call the conversion ioctl, wait for I/O, back off, or retry.'],
  [/pinUserPages|io_uring|vfio|odirect|O_DIRECT|vhost/, null, 'A holder takes references on shared pages (GUP: a long-term pin for registered buffers and DMA maps, a short-term pin for I/O in flight).'],
  [/SIGBUS/, null, 'The host touched private memory: the fault handler refuses it with SIGBUS.'],
];
function explain(track, name, args) {
  const out = String(args.outcome ?? '');
  const rule = EXPLAIN.find(([n, o]) => n.test(name) && (!o || o.test(out)));
  const why = rule ? rule[2] : 'A step of ' + track + '.';
  const rest = Object.entries(args).filter(([k]) => k !== 'outcome').map(([k, v]) => '  ' + k + ': ' + (typeof v === 'object' ? JSON.stringify(v) : String(v))).join('\n');
  return track + ' — ' + name + '\noutcome: ' + (out || '(none)') + '\n\n' + why + (rest ? '\n\narguments:\n' + rest : '');
}

function hit(x, y) {
  const ts = tsOf(x);
  const track = Math.floor((y - rowY(0)) / ROW);
  let best = null;
  for (const s of proc.slices) if (s[0] === track && s[1] <= ts && ts <= s[1] + s[2] && (!best || s[2] < best[2])) best = s;
  if (!best) { // the nearest slice within 3 pixels: slices narrower than a pixel stay reachable
    const slack = 3 * (span.t1 - span.t0) / ($('timeline').width - LEFT - 10);
    let d = slack;
    for (const s of proc.slices) {
      if (s[0] !== track) continue;
      const gap = ts < s[1] ? s[1] - ts : ts - (s[1] + s[2]);
      if (gap >= 0 && gap <= d) { d = gap; best = s; }
    }
  }
  return { ts, best };
}

$('timeline').addEventListener('mousemove', (e) => {
  const r = e.target.getBoundingClientRect();
  const { ts, best } = hit(e.clientX - r.left, e.clientY - r.top);
  if (e.clientX - r.left < LEFT) return;
  cursorTs = ts;
  $('explain').textContent = best ? explain(proc.tracks[best[0]], best[3], best[4]) : 'time ' + (ts / 1000).toFixed(1) + ' steps: no slice under the cursor';
  drawTimeline(); drawMaps();
});

/** Zoom the timeline around ts (factor < 1 zooms in); 'reset' shows the whole run. */
function zoom(ts, factor) {
  const full = fullSpan();
  if (factor === 'reset') span = full;
  else {
    const w = Math.min(full.t1 - full.t0, Math.max(10, (span.t1 - span.t0) * factor));
    const t0 = Math.max(full.t0, Math.min(full.t1 - w, ts - (ts - span.t0) * w / (span.t1 - span.t0)));
    span = { t0, t1: t0 + w };
  }
  drawTimeline();
}
function fullSpan() { const s = span; layout(); const f = span; span = s; return f; }
$('timeline').addEventListener('wheel', (e) => {
  e.preventDefault();
  const r = e.target.getBoundingClientRect();
  zoom(tsOf(e.clientX - r.left), e.deltaY < 0 ? 0.5 : 2);
}, { passive: false });
$('timeline').addEventListener('dblclick', () => zoom(0, 'reset'));

function selectProcess(i) {
  proc = DATA.processes[i];
  cursorTs = null;
  $('procinfo').textContent = proc.tracks.length + ' tracks, ' + proc.slices.length + ' slices, ' + proc.flows.length + ' flows, ' + Object.keys(proc.counters).length + ' counters, ' + proc.snapshots.length + ' page-map snapshots';
  layout(); drawTimeline(); drawMaps(); drawHistory();
  $('explain').textContent = 'Move the cursor over the timeline: the step under it is explained here, and the page map shows the state after it.';
}

const sel = $('process');
DATA.processes.forEach((p, i) => { const o = document.createElement('option'); o.value = String(i); o.textContent = p.name; sel.appendChild(o); });
sel.addEventListener('change', () => selectProcess(Number(sel.value)));
if (DATA.processes.length) selectProcess(0); else $('maps').textContent = 'The input has no trace process.';
document.body.dataset.ready = 'true';
`;

export function renderPage(data: unknown, title: string): string {
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  const esc = title.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gmemkit view — ${esc}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<style>${CSS}</style></head>
<body><header><h1>gmemkit view — ${esc}</h1></header><main>
<section><label>run: <select id="process"></select></label> <span id="procinfo" class="meta"></span></section>
<section><h2>Page map <span id="snapinfo" class="meta"></span></h2>
<div class="legend"><span><i class="sw shared"></i>shared</span><span><i class="sw private"></i>private</span><span><i class="sw pending"></i>pending (deferred variant)</span><span><i class="sw mixed"></i>merged ranges, partly private</span><span><i class="sw" style="background:#d32f2f"></i>pinned (top edge)</span><span><i class="sw" style="background:#1976d2"></i>mapped by a host VMA (bottom edge)</span><span><i class="sw huge"></i>huge folio (outlined: profile hugetlb)</span></div>
<div id="maps"></div>
<h2>History of the first guest_memfd (time runs down)</h2><canvas id="history" width="1200" height="120"></canvas></section>
<section><h2>Timeline <span class="meta">(wheel: zoom, double-click: whole run)</span></h2><canvas id="timeline" width="1200" height="200"></canvas></section>
<section><h2>Under the cursor</h2><div id="explain"></div></section>
</main>
<script type="application/json" id="gmemkit-data">${json}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}
