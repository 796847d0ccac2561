/**
 * The listener page served at `/`: joins the first live (or scheduled) space through the same join
 * path as any client, opens the WebSocket, and shows what a listener of that night saw — the space,
 * the simulated clock, listener counts, audio chunks arriving (or "This Space is not available", the
 * attempt count and the next retry). "Listen" plays the Opus audio live (WebCodecs AudioDecoder), so
 * a gap in the audio is heard; once the space has ended, the page says so and offers the recording.
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
  #listen { font-size: 1rem; padding: .4rem .9rem; }
  #retry { font-variant-numeric: tabular-nums; }
  #ended[hidden], #live[hidden] { display: none; }
  #ended audio { width: 100%; margin-top: .5rem; }
  a { color: #1f6fb4; }
</style>
</head>
<body>
<h1 id="title">Stampede</h1>
<div class="muted" id="sub">looking for a space…</div>
<p id="status" role="status">connecting…</p>
<p class="muted" id="retry" aria-live="polite"></p>
<section id="ended" hidden>
  <h2>The Space ended</h2>
  <p id="ended-note">The conversation is over. Here is the recording:</p>
  <audio id="recording" controls preload="metadata"></audio>
  <p class="muted"><a id="recording-link" download>download the recording (Ogg Opus)</a></p>
</section>
<div id="live">
<p><button id="listen" aria-pressed="false">🔊 Listen</button> <span class="muted" id="audio-state">audio off</span></p>
<div class="grid">
  <div class="card"><div class="muted">listening now</div><div class="big" id="total">–</div><div class="muted" id="split"></div></div>
  <div class="card"><div class="muted">simulated time</div><div class="big" id="simtime">–</div><div class="muted" id="phase"></div></div>
  <div class="card"><div class="muted">audio chunks received</div><div class="big" id="chunks">0</div><div class="muted" id="gaps"></div></div>
  <div class="card"><div class="muted">audio delay</div><div class="big" id="delay">–</div><div class="muted">capture → receipt</div></div>
</div>
<div id="reactions"></div>
<p><button data-e="👏" title="clap" aria-label="clap">👏</button><button data-e="🔥" title="fire" aria-label="fire">🔥</button><button data-e="💯" title="100" aria-label="100">💯</button></p>
</div>
<p class="muted"><a href="/dashboard">live dashboard →</a></p>
<script type="module">
const $ = (id) => document.getElementById(id);
const fmt = (n) => n.toLocaleString('en-US');
let ws = null, chunks = 0, lastSeq = -1, gaps = 0, attempt = 0, hostName = '', retryAt = 0, spaceId = null, ended = false;
// live audio: Opus frames decoded by WebCodecs and scheduled back to back; a gap resets the cursor, so it is heard
let audio = null;
const player = { decoded: 0, cursor: 0 };
async function startAudio() {
  if (!('AudioDecoder' in window)) { $('audio-state').textContent = 'this browser cannot decode Opus live (no WebCodecs)'; return; }
  const ctx = new AudioContext({ sampleRate: 48000 });
  const decoder = new AudioDecoder({
    output: (data) => {
      const buf = ctx.createBuffer(1, data.numberOfFrames, data.sampleRate);
      data.copyTo(buf.getChannelData(0), { planeIndex: 0, format: 'f32-planar' });
      data.close();
      const src = ctx.createBufferSource();
      src.buffer = buf; src.connect(ctx.destination);
      // a little jitter buffer; if playback fell behind (a gap), start again from now
      if (player.cursor < ctx.currentTime + 0.02) player.cursor = ctx.currentTime + 0.15;
      src.start(player.cursor);
      player.cursor += buf.duration;
      player.decoded++;
      $('audio-state').textContent = 'playing · ' + fmt(player.decoded) + ' frames decoded';
    },
    error: (e) => { $('audio-state').textContent = 'audio decoder error: ' + e.message; audio = null; },
  });
  decoder.configure({ codec: 'opus', sampleRate: 48000, numberOfChannels: 1 });
  await ctx.resume();
  audio = { ctx, decoder, ts: 0 };
  $('audio-state').textContent = 'waiting for audio…';
}
function stopAudio() {
  if (!audio) return;
  try { audio.decoder.close(); } catch {}
  audio.ctx.close();
  audio = null;
  $('audio-state').textContent = 'audio off';
}
function playChunk(buf) {
  if (!audio || audio.decoder.state !== 'configured') return;
  const v = new DataView(buf);
  const n = v.getUint16(2);
  let o = 16;
  for (let i = 0; i < n; i++) {
    const len = v.getUint16(o);
    audio.decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: audio.ts, data: new Uint8Array(buf, o + 2, len) }));
    audio.ts += 20000;
    o += 2 + len;
  }
}
$('listen').onclick = async () => {
  const on = $('listen').getAttribute('aria-pressed') !== 'true';
  $('listen').setAttribute('aria-pressed', String(on));
  $('listen').textContent = on ? '🔇 Stop listening' : '🔊 Listen';
  if (on) await startAudio(); else stopAudio();
};
function showEnded(id) {
  if (ended) return;
  ended = true;
  stopAudio();
  $('live').hidden = true;
  $('ended').hidden = false;
  $('retry').textContent = '';
  setStatus('the Space ended', 'good');
  $('sub').textContent = 'hosted by ' + hostName + ' — ended';
  const url = '/api/v1/spaces/' + id + '/recording';
  // the recording is published a moment after the end: wait for it, then offer it
  const offer = async () => {
    const r = await fetch('/api/v1/spaces/' + id).then((x) => x.json()).catch(() => null);
    if (r && r.space && r.space.recordingLost) { $('ended-note').textContent = 'The conversation is over. Its recording was lost: a write failed while it was live, so there is nothing to play.'; $('recording').hidden = true; $('recording-link').hidden = true; return; }
    if (!r || !r.space || !r.space.recordingReady) { $('ended-note').textContent = 'The conversation is over. The recording is being published…'; return setTimeout(offer, 1000); }
    $('ended-note').textContent = 'The conversation is over. Here is the recording:';
    $('recording').src = url;
    $('recording-link').href = url;
  };
  offer();
}
function setStatus(text, cls) { const s = $('status'); s.textContent = text; s.className = cls || ''; }
// the night's clock in the scenario's own time zone (the replay names it), labelled "ET", "PT" or "GMT+1"
function simClock(iso, zone) {
  if (!iso) return '–';
  const t = new Date(iso), timeZone = zone || 'UTC';
  const name = (timeZoneName) => new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName }).formatToParts(t).find((p) => p.type === 'timeZoneName').value;
  const generic = name('shortGeneric');
  return t.toLocaleTimeString('en-US', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }) + ' ' + (/^[A-Z]{1,5}$/.test(generic) ? generic : name('short'));
}
async function pickSpace() {
  const r = await fetch('/api/v1/spaces');
  const { spaces } = await r.json();
  return spaces.find((s) => s.state === 'live') || spaces.find((s) => s.state === 'scheduled') || spaces.find((s) => s.state === 'ended') || null;
}
async function replayInfo() {
  try {
    const r = await fetch('/api/v1/replay');
    const { replay } = await r.json();
    if (!replay || !replay.simTime) return;
    $('phase').textContent = 'phase: ' + replay.phase + (replay.running ? '' : ' (replay over)');
    // outside the space a visitor still sees the counter and the clock, as the night's public did
    if (!ws || ws.readyState !== 1) {
      $('simtime').textContent = simClock(replay.simTime, replay.timeZone);
      const { real, virtual } = replay.listeners;
      $('total').textContent = fmt(real + virtual);
      $('split').textContent = fmt(real) + ' real · ' + fmt(virtual) + ' modelled';
    }
  } catch {}
}
async function join() {
  const space = await pickSpace();
  if (!space) { setStatus('no space yet', 'muted'); return retry(); }
  $('title').textContent = space.title;
  hostName = space.host.name;
  spaceId = space.id;
  if (space.state === 'ended') return showEnded(space.id);
  $('sub').textContent = 'hosted by ' + hostName + ' — ' + space.state;
  const r = await fetch('/api/v1/spaces/' + space.id + '/join', { method: 'POST' });
  const body = await r.json();
  if (!r.ok) {
    setStatus((body.error && body.error.message) + ' (' + body.error.code + ', HTTP ' + r.status + ')', 'bad');
    return retry(Number(r.headers.get('retry-after') || 2) * 1000);
  }
  attempt = 0; retryAt = 0; $('retry').textContent = '';
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
      playChunk(ev.data);
      return;
    }
    const m = JSON.parse(ev.data);
    if (m.type === 'count') {
      $('total').textContent = fmt(m.total);
      $('split').textContent = fmt(m.real) + ' real · ' + fmt(m.virtual) + ' modelled';
      $('simtime').textContent = simClock(m.simTime, m.timeZone);
    } else if (m.type === 'welcome') {
      $('total').textContent = fmt(m.space.listeners.total);
    } else if (m.type === 'state') {
      $('sub').textContent = 'hosted by ' + hostName + ' — ' + m.state;
      if (m.state === 'ended') showEnded(spaceId);
    } else if (m.type === 'reactions') {
      $('reactions').textContent = Object.entries(m.counts).map(([e, n]) => e + ' ' + n).join('  ');
    }
  };
  ws.onclose = (ev) => {
    if (ev.code === 4500) return showEnded(spaceId);
    setStatus('disconnected (' + ev.code + (ev.reason ? ': ' + ev.reason : '') + ')', 'bad');
    if (ev.code !== 1008) retry();
  };
}
function retry(hint) {
  if (ended) return;
  attempt++;
  const cap = Math.min(20000, 500 * 2 ** attempt);
  const wait = hint || Math.random() * cap;
  retryAt = Date.now() + wait;
  setTimeout(() => join().catch(() => retry()), wait);
}
// while failing: which attempt this is and when the next one goes
setInterval(() => {
  if (ended || retryAt === 0) return;
  const left = Math.max(0, retryAt - Date.now());
  $('retry').textContent = left > 0 ? 'attempt ' + attempt + ' failed · next try in ' + (left / 1000).toFixed(1) + ' s' : 'attempt ' + (attempt + 1) + '…';
}, 200);
document.querySelectorAll('button[data-e]').forEach((b) => b.onclick = () => ws && ws.readyState === 1 && ws.send(JSON.stringify({ type: 'react', emoji: b.dataset.e })));
setInterval(replayInfo, 1000);
join().catch(() => retry());
</script>
</body>
</html>
`;
