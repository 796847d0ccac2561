/**
 * The listener page served at `/`: joins the first live (or scheduled) space through the same join
 * path as any client, opens the WebSocket, and shows what a listener of that night saw — the space,
 * the simulated clock, listener counts, audio chunks arriving (or "This Space is not available").
 */
export const LISTENER_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Stampede — live space</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
  body { font: 16px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 40rem; padding: 0 1rem; color: #111; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  .muted { color: #666; }
  .big { font-size: 2.4rem; font-variant-numeric: tabular-nums; }
  .grid { display: grid; grid-template-columns: 1fr 1fr; gap: .8rem; margin: 1rem 0; }
  .card { border: 1px solid #ddd; border-radius: 8px; padding: .8rem; }
  #status.bad { color: #b00020; font-weight: 600; }
  #status.good { color: #0a7d28; font-weight: 600; }
  button { font-size: 1.2rem; margin-right: .3rem; }
</style>
</head>
<body>
<h1 id="title">Stampede</h1>
<div class="muted" id="sub">looking for a space…</div>
<p id="status">connecting…</p>
<div class="grid">
  <div class="card"><div class="muted">listening now</div><div class="big" id="total">–</div><div class="muted" id="split"></div></div>
  <div class="card"><div class="muted">simulated time</div><div class="big" id="simtime">–</div><div class="muted" id="phase"></div></div>
  <div class="card"><div class="muted">audio chunks received</div><div class="big" id="chunks">0</div><div class="muted" id="gaps"></div></div>
  <div class="card"><div class="muted">audio delay</div><div class="big" id="delay">–</div><div class="muted">capture → receipt</div></div>
</div>
<div id="reactions"></div>
<p><button data-e="👏" title="clap" aria-label="clap">👏</button><button data-e="🔥" title="fire" aria-label="fire">🔥</button><button data-e="💯" title="100" aria-label="100">💯</button></p>
<script type="module">
const $ = (id) => document.getElementById(id);
const fmt = (n) => n.toLocaleString('en-US');
let ws = null, chunks = 0, lastSeq = -1, gaps = 0, attempt = 0, hostName = '';
function setStatus(text, cls) { const s = $('status'); s.textContent = text; s.className = cls || ''; }
function simClock(iso) {
  if (!iso) return '–';
  return new Date(iso).toLocaleTimeString('en-US', { timeZone: 'America/New_York', hour: '2-digit', minute: '2-digit', hour12: false }) + ' ET';
}
async function pickSpace() {
  const r = await fetch('/api/v1/spaces');
  const { spaces } = await r.json();
  return spaces.find((s) => s.state === 'live') || spaces.find((s) => s.state === 'scheduled') || null;
}
async function replayInfo() {
  try {
    const r = await fetch('/api/v1/replay');
    const { replay } = await r.json();
    if (!replay || !replay.simTime) return;
    $('phase').textContent = 'phase: ' + replay.phase + (replay.running ? '' : ' (replay over)');
    // outside the space a visitor still sees the counter and the clock, as the night's public did
    if (!ws || ws.readyState !== 1) {
      $('simtime').textContent = simClock(replay.simTime);
      const { real, virtual } = replay.listeners;
      $('total').textContent = fmt(real + virtual);
      $('split').textContent = fmt(real) + ' real · ' + fmt(virtual) + ' modelled';
    }
  } catch {}
}
async function join() {
  const space = await pickSpace();
  if (!space) { setStatus('no space yet', 'bad'); return retry(); }
  $('title').textContent = space.title;
  hostName = space.host.name;
  $('sub').textContent = 'hosted by ' + hostName + ' — ' + space.state;
  const r = await fetch('/api/v1/spaces/' + space.id + '/join', { method: 'POST' });
  const body = await r.json();
  if (!r.ok) {
    setStatus((body.error && body.error.message) + ' (' + body.error.code + ', HTTP ' + r.status + ')', 'bad');
    return retry(Number(r.headers.get('retry-after') || 2) * 1000);
  }
  attempt = 0;
  ws = new WebSocket(body.wsUrl.replace(/^ws:\\/\\/[^/]+/, location.origin.replace(/^http/, 'ws')));
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => setStatus('connected — listening', 'good');
  ws.onmessage = (ev) => {
    if (typeof ev.data !== 'string') {
      const v = new DataView(ev.data);
      const seq = v.getUint32(4), cap = v.getFloat64(8);
      if (lastSeq >= 0 && seq !== lastSeq + 1) gaps += seq - lastSeq - 1;
      lastSeq = seq; chunks++;
      $('chunks').textContent = fmt(chunks);
      $('gaps').textContent = gaps ? gaps + ' chunks missed' : 'no gaps';
      $('delay').textContent = Math.max(0, Math.round(Date.now() - cap)) + ' ms';
      return;
    }
    const m = JSON.parse(ev.data);
    if (m.type === 'count') {
      $('total').textContent = fmt(m.total);
      $('split').textContent = fmt(m.real) + ' real · ' + fmt(m.virtual) + ' modelled';
      $('simtime').textContent = simClock(m.simTime);
    } else if (m.type === 'welcome') {
      $('total').textContent = fmt(m.space.listeners.total);
    } else if (m.type === 'state') {
      $('sub').textContent = 'hosted by ' + hostName + ' — ' + m.state;
    } else if (m.type === 'reactions') {
      $('reactions').textContent = Object.entries(m.counts).map(([e, n]) => e + ' ' + n).join('  ');
    }
  };
  ws.onclose = (ev) => {
    setStatus('disconnected (' + ev.code + (ev.reason ? ': ' + ev.reason : '') + ')', 'bad');
    if (ev.code !== 4500 && ev.code !== 1008) retry();
  };
}
function retry(hint) {
  attempt++;
  const cap = Math.min(20000, 500 * 2 ** attempt);
  setTimeout(() => join().catch(() => retry()), hint || Math.random() * cap);
}
document.querySelectorAll('button[data-e]').forEach((b) => b.onclick = () => ws && ws.readyState === 1 && ws.send(JSON.stringify({ type: 'react', emoji: b.dataset.e })));
setInterval(replayInfo, 1000);
join().catch(() => retry());
</script>
</body>
</html>
`;
