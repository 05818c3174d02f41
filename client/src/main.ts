import { io, type Socket } from 'socket.io-client';
import { type CameraState, poseOfCamera, stepCamera } from '../../shared/camera/controller.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import {
  type ClientToServerEvents,
  type Joined,
  PROTOCOL_VERSION,
  type ServerToClientEvents,
  type WorldStats,
} from '../../shared/protocol/events.ts';
import { decodeFrame, type EncodedFrame } from '../../shared/protocol/frameCodec.ts';
import { decodeMirrorBatch, MIRROR_KEEP_M } from '../../shared/protocol/mirrorCodec.ts';
import { type EditState, EditTool } from './editTool.ts';
import { FILL_W, HoleFiller, type HoleFillerStats, INNER_W } from './holeFiller.ts';
import { InputSampler } from './input.ts';
import { Minimap } from './minimap.ts';
import { MirrorCache } from './mirrorCache.ts';
import { failOver, followElsewhere, rememberNodes } from './nodeFailover.ts';
import { ViewRecorder } from './recorder.ts';
import { worldLinks } from './worldList.ts';
import { WorldView } from './worldView.ts';

/**
 * The Spatia client: connects, joins a world (`?world=ID&name=NAME&prompt=TEXT`), sends input every
 * animation frame, predicts the camera with the shared controller, and draws the newest frame
 * reprojected to the predicted pose. State for tests and the HUD is on `window.spatia`.
 */
const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const worldId = params.get('world') ?? 'room';
const name = params.get('name') ?? `player-${Math.floor(Math.random() * 1000)}`;
/** `?spectate=NAME` watches a player; `?invite=TOKEN` joins a private world; `?private=1` creates one; `?record=1` records server-side. */
const spectate = params.get('spectate') ?? undefined;
const inviteToken = params.get('invite') ?? undefined;

const canvas = $<HTMLCanvasElement>('view');
const banner = $<HTMLDivElement>('banner');
const hud = {
  connection: $('hud-connection'),
  fps: $('hud-fps'),
  genFps: $('hud-gen-fps'),
  latency: $('hud-latency'),
  memory: $('hud-memory'),
  clip: $('hud-clip'),
  world: $('hud-world'),
  players: $('hud-players'),
  rec: $('hud-rec'),
  mirror: $('hud-mirror'),
  late: $('hud-late'),
  edit: $('hud-edit'),
};
/** A frame older than this is not drawn: the mirror and the sky show, and the HUD says frames are late. */
const FRAME_FRESH_MS = 1500;
/** The sky panorama takes every this many frames. */
const SKY_EVERY_FRAMES = 4;

interface ClientState {
  connected: boolean;
  joined?: Joined;
  camera?: CameraState;
  framesReceived: number;
  framesDrawn: number;
  displayFps: number;
  generatedFps: number;
  latencyMs: number;
  lastFrame?: EncodedFrame;
  stats?: WorldStats;
  errors: string[];
  announcements: string[];
  /** The in-browser hole filler (onnxruntime-web): backend, runs, last run time. */
  holeFiller?: HoleFillerStats;
  /** The memory mirror: what the client holds and what the last display frame drew. */
  mirror: {
    batches: number;
    bytes: number;
    chunks: number;
    points: number;
    visibleRegions: number;
    visiblePoints: number;
    errors: number;
  };
  /** Whether the newest frame is too old to draw (frames are late). */
  framesLate: boolean;
  /** Edit mode, the tool and what the server applied. */
  edit?: EditState;
  /** Edits of the world the server announced (anyone's). */
  edits: { action: string; author: string; op: string; seq: number }[];
  /** The last finished in-browser recording (tests read it). */
  recording?: { bytes: number; mime: string; frames: number; head: number[] };
}
const state: ClientState = {
  connected: false,
  framesReceived: 0,
  framesDrawn: 0,
  displayFps: 0,
  generatedFps: 0,
  latencyMs: Number.NaN,
  errors: [],
  announcements: [],
  edits: [],
  mirror: { batches: 0, bytes: 0, chunks: 0, points: 0, visibleRegions: 0, visiblePoints: 0, errors: 0 },
  framesLate: false,
};
(window as unknown as { spatia: ClientState }).spatia = state;

const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io({ transports: ['websocket'] });
/** The reconnection attempt at which the page moves to another node of the cluster (the first failed). */
const NODE_FAILOVER_AT_ATTEMPT = 2;
const input = new InputSampler(canvas);
const minimap = new Minimap($<HTMLCanvasElement>('minimap'));
let view: WorldView | undefined;
const mirror = new MirrorCache();
let lastFrameAtMs = Number.NEGATIVE_INFINITY;
const recorder = new ViewRecorder(canvas);
const holeFiller = new HoleFiller();
state.holeFiller = holeFiller.stats;
holeFiller
  .load('./models/hole-filler.onnx')
  .catch((e: unknown) => console.warn('hole filler unavailable', e));
const recordButton = $<HTMLButtonElement>('record');
/** Frames planned before this input were generated before the latest edit: not drawn. */
let framesFromInputSeq = 0;
const dropStaleFrames = (): void => {
  framesFromInputSeq = input.lastSeq + 1;
  lastFrameAtMs = Number.NEGATIVE_INFINITY;
};
const editTool = new EditTool(
  canvas,
  $('edit-cursor'),
  hud.edit,
  mirror,
  {
    send: (op) =>
      socket
        .timeout(10_000)
        .emitWithAck('edit', op)
        .then(
          (r) => (r.ok ? undefined : r.error.message),
          (e: Error) => e.message,
        ),
    history: (action) =>
      socket
        .timeout(10_000)
        .emitWithAck('editHistory', { action })
        .then(
          (r) => (r.ok ? (r.value ? undefined : `nothing to ${action}`) : r.error.message),
          (e: Error) => e.message,
        ),
    showLocally: (op) => view?.mirror.update(mirror.applyEdit(op)),
    dropStaleFrames,
    toast,
  },
  (on) => {
    input.lookEnabled = on;
  },
);
state.edit = editTool.state;
$<HTMLButtonElement>('edit').addEventListener('click', () => editTool.toggle());

async function toggleRecording(): Promise<void> {
  if (!recorder.recording) {
    try {
      await recorder.start();
      recordButton.classList.add('on');
      recordButton.textContent = '■ stop';
    } catch (e) {
      toast(`cannot record: ${(e as Error).message}`);
    }
    return;
  }
  const blob = await recorder.stop();
  recordButton.classList.remove('on');
  recordButton.textContent = '● record';
  hud.rec.textContent = '';
  const head = [...new Uint8Array(await blob.slice(0, 12).arrayBuffer())];
  state.recording = { bytes: blob.size, mime: blob.type, frames: recorder.frames, head };
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `spatia-${worldId}-${new Date().toISOString().replace(/[:.]/g, '-')}.${blob.type === 'video/mp4' ? 'mp4' : 'webm'}`;
  a.click();
  toast(`saved ${(blob.size / 1048576).toFixed(1)} MiB, ${recorder.frames} frames`);
}
recordButton.addEventListener('click', () => void toggleRecording());
const worldsPanel = $('worlds');
/** Shows (or hides) the public worlds being played now, on this server or every node of its cluster. */
async function toggleWorlds(): Promise<void> {
  if (!worldsPanel.hidden) {
    worldsPanel.hidden = true;
    return;
  }
  const reply = await socket
    .timeout(8000)
    .emitWithAck('listWorlds')
    .catch(() => undefined);
  if (!reply?.ok) {
    toast(`no world list: ${reply ? reply.error.message : 'the server did not answer'}`);
    return;
  }
  const list = worldsPanel.querySelector('ul')!;
  list.replaceChildren(
    ...worldLinks(reply.value, new URL(location.href), name).map((w) => {
      const item = document.createElement('li');
      const a = document.createElement('a');
      a.href = w.href;
      a.textContent = w.label;
      a.title = w.title;
      if (w.worldId === worldId) item.classList.add('here');
      item.appendChild(a);
      return item;
    }),
  );
  if (reply.value.worlds.length === 0) list.textContent = 'nobody is playing a public world';
  if (reply.value.partial) toast('some server nodes did not answer: their worlds are missing');
  worldsPanel.hidden = false;
}
$<HTMLButtonElement>('worlds-button').addEventListener('click', () => void toggleWorlds());
window.addEventListener('keydown', (e) => {
  if (e.code === 'KeyR' && (e.target as HTMLElement | null)?.tagName !== 'INPUT') void toggleRecording();
  if (e.code === 'KeyL' && (e.target as HTMLElement | null)?.tagName !== 'INPUT') void toggleWorlds();
});
let decoding = false;
let pending: EncodedFrame | undefined;

function toast(text: string, ms = 4000): void {
  const el = document.createElement('div');
  el.textContent = text;
  $('toasts').appendChild(el);
  setTimeout(() => el.remove(), ms);
}

function showBanner(text: string | undefined): void {
  banner.hidden = !text;
  banner.textContent = text ?? '';
}

socket.on('connect', () => {
  state.connected = true;
  hud.connection.textContent = 'connected';
  socket.emit('hello', { protocol: PROTOCOL_VERSION, client: 'spatia-web' }, (hello) => {
    if (!hello.ok) {
      showBanner(hello.error.message);
      return;
    }
    if (hello.value.nodes) rememberNodes(hello.value.nodes);
    const m = hello.value.model;
    hud.world.textContent = `${worldId} · ${m.name} ${m.width}×${m.height} on ${m.device}`;
    const join = {
      worldId,
      name,
      prompt: params.get('prompt') ?? undefined,
      spectate,
      inviteToken,
      private: params.get('private') === '1' ? true : undefined,
      record: params.get('record') === '1' ? true : undefined,
    };
    socket.emit('join', join, (joined) => {
      if (!joined.ok) {
        if (joined.error.code === 'WORLD_ELSEWHERE') {
          showBanner('This world is served by another server node: moving there…');
          // Joining again runs on a fresh connection (hello, then join).
          void followElsewhere(joined.error, () => socket.disconnect().connect());
          return;
        }
        showBanner(`cannot join: ${joined.error.message}`);
        return;
      }
      showBanner(undefined);
      state.joined = joined.value;
      hud.players.textContent = [name, ...joined.value.others].join(', ');
      if (joined.value.inviteToken && !inviteToken) {
        const link = `${location.origin}${location.pathname}?world=${encodeURIComponent(worldId)}&invite=${joined.value.inviteToken}`;
        toast(`private world — invite link: ${link}`, 20_000);
      }
      if (joined.value.role === 'spectator') toast(`watching ${spectate}`);
      // Every (re)join starts where the server puts the player: prediction restarts from that spawn.
      state.camera = {
        position: [...joined.value.spawn.position],
        yaw: joined.value.spawn.yaw,
        pitch: joined.value.spawn.pitch,
      };
      if (!view) {
        view = new WorldView(canvas, joined.value.intrinsics.width, joined.value.intrinsics.height);
        // Batches that came before the view existed.
        view.mirror.update({ added: [...mirror.chunks.values()], removed: [] });
      }
      $<HTMLInputElement>('prompt').placeholder = `${joined.value.prompt} — type a new prompt, Enter`;
    });
  });
});
socket.on('disconnect', (reason) => {
  state.connected = false;
  hud.connection.textContent = 'disconnected';
  showBanner(`Disconnected from the server (${reason}). Reconnecting…`);
  // socket.io reconnects by itself except when the server hung up (it moved the world elsewhere, or
  // found this viewer unresponsive): then the page reconnects and joins again.
  if (reason === 'io server disconnect') setTimeout(() => socket.connect(), 500);
});
socket.io.on('reconnect_attempt', (n) => {
  hud.connection.textContent = `reconnecting (try ${n})`;
  // Clustered: this node is gone; another live node serves its worlds within a lease.
  if (n === NODE_FAILOVER_AT_ATTEMPT) void failOver();
});
socket.on('error', (err) => {
  state.errors.push(`${err.code}: ${err.message}`);
  console.warn('server error', err);
});
socket.on('announce', (a) => {
  const text = `${a.name} ${a.kind === 'joined' ? 'joined' : 'left'}${a.role === 'spectator' ? ' (watching)' : ''}`;
  state.announcements.push(text);
  toast(text);
});
socket.on('edited', (e) => {
  state.edits.push({ action: e.action, author: e.author, op: e.op.op, seq: e.seq });
  if (e.authorId === state.joined?.playerId) return; // shown already, when it was made
  // Someone else's edit: shown at once from the operation; their chunks follow in the mirror.
  if (e.action === 'apply' && e.op.op !== 'insertPly') view?.mirror.update(mirror.applyEdit(e.op));
  dropStaleFrames();
  toast(
    `${e.author} ${e.action === 'apply' ? `${e.op.op === 'insert' ? 'placed' : `${e.op.op}d`} something` : `${e.action}s an edit`}`,
  );
});

socket.on('stats', (s) => {
  state.stats = s;
  hud.memory.textContent = `${(s.voxels / 1000).toFixed(0)}k voxels · ${s.keyframes} keyframes · ${(s.memoryBytes / 1048576).toFixed(1)} MiB · ${s.players} player${s.players === 1 ? '' : 's'}`;
  if (s.map) minimap.setMap(s.map);
});

socket.on('mirror', (bytes) => {
  void takeMirrorBatch(new Uint8Array(bytes));
});

/** Inflates (raw DEFLATE on the wire), decodes and applies one mirror batch, then acknowledges it. */
async function takeMirrorBatch(wire: Uint8Array): Promise<void> {
  let batch: ReturnType<typeof decodeMirrorBatch>;
  try {
    const inflated = new Blob([wire as BlobPart])
      .stream()
      .pipeThrough(new DecompressionStream('deflate-raw'));
    batch = decodeMirrorBatch(new Uint8Array(await new Response(inflated).arrayBuffer()));
  } catch (e) {
    state.mirror.errors++;
    console.warn('bad mirror batch', e);
    return;
  }
  const change = mirror.apply(batch, wire.byteLength);
  view?.mirror.update(change);
  socket.emit('mirrorAck', mirror.ack(batch.seq));
  const m = state.mirror;
  m.batches++;
  m.bytes = mirror.bytes;
  m.chunks = mirror.chunks.size;
  m.points = mirror.points;
}

let genCount = 0;
socket.on('frame', (bytes, ack) => {
  ack();
  const frame = decodeFrame(new Uint8Array(bytes));
  state.framesReceived++;
  genCount++;
  if (frame.header.inputSeq > 0) state.latencyMs = performance.now() - frame.header.clientTimeMs;
  // Generated before the latest edit reached the server: the mirror shows the edit instead.
  if (frame.header.inputSeq < framesFromInputSeq) return;
  lastFrameAtMs = performance.now();
  hud.clip.textContent = `#${frame.header.clipId} · frame ${frame.header.frameId} · gen ${frame.header.timings.generateMs.toFixed(0)} ms`;
  pending = frame;
  void decodeNewest();
});

/** Decodes only the newest frame; frames that arrive while one decodes replace each other. */
async function decodeNewest(): Promise<void> {
  if (decoding || !pending || !view) return;
  decoding = true;
  const frame = pending;
  pending = undefined;
  try {
    const bitmap = await createImageBitmap(new Blob([frame.image as BlobPart], { type: 'image/jpeg' }));
    view.frames.setFrame(frame, bitmap);
    if (state.framesReceived % SKY_EVERY_FRAMES === 1) view.sky.addFrame(frame, bitmap);
    const filled = await holeFiller.fill(bitmap).catch(() => undefined);
    if (filled) view.frames.setBackground(frame, filled, FILL_W / INNER_W);
    bitmap.close();
    state.lastFrame = frame;
  } finally {
    decoding = false;
  }
  if (pending) void decodeNewest();
}

$<HTMLFormElement>('prompt-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const box = $<HTMLInputElement>('prompt');
  const text = box.value.trim();
  if (text) socket.emit('prompt', { prompt: text });
  box.value = '';
  box.placeholder = `${text} — type a new prompt, Enter`;
  canvas.focus();
});

let last = performance.now();
let fpsWindowStart = last;
let fpsFrames = 0;
function tick(now: number): void {
  const dt = now - last;
  last = now;
  if (state.joined?.role === 'player' && state.camera) {
    // Walking goes on while disconnected: the mirror still shows what was seen.
    const msg = input.sample(dt, now);
    if (state.connected) socket.emit('input', msg);
    state.camera = stepCamera(state.camera, msg, msg.dtMs / 1000);
    minimap.trail(state.camera);
  }
  const spectating = state.joined?.role === 'spectator';
  if (view && state.camera && state.joined && (state.lastFrame || !spectating)) {
    const w = canvas.width;
    const h = canvas.height;
    const k = state.joined.intrinsics;
    // Cover the canvas with the model's field of view (crop, never letterbox).
    const f = Math.max((w / k.width) * k.fx, (h / k.height) * k.fy);
    // Players see their predicted camera; spectators see the watched player's latest pose.
    const header = state.lastFrame?.header;
    const pose =
      spectating && header
        ? ({ rotation: header.rotation, position: header.position } as unknown as Pose)
        : poseOfCamera(state.camera);
    const fresh = now - lastFrameAtMs < FRAME_FRESH_MS;
    if (!spectating)
      editTool.update(pose, { fx: f, fy: f, cx: (w - 1) / 2, cy: (h - 1) / 2, width: w, height: h });
    view.render(pose, { fx: f, fy: f, cx: (w - 1) / 2, cy: (h - 1) / 2, width: w, height: h }, fresh);
    state.framesDrawn = view.frames.drawn;
    state.mirror.visibleRegions = view.mirror.visibleRegions;
    state.mirror.visiblePoints = view.mirror.visiblePoints;
    state.framesLate = !fresh;
    if (recorder.recording) {
      recorder.capture();
      hud.rec.textContent = `● REC ${Math.floor(recorder.seconds / 60)}:${String(Math.floor(recorder.seconds % 60)).padStart(2, '0')}`;
    }
  }
  fpsFrames++;
  if (now - fpsWindowStart >= 1000) {
    state.displayFps = (fpsFrames * 1000) / (now - fpsWindowStart);
    state.generatedFps = (genCount * 1000) / (now - fpsWindowStart);
    hud.fps.textContent = state.displayFps.toFixed(0);
    hud.genFps.textContent = state.generatedFps.toFixed(1);
    hud.latency.textContent = Number.isFinite(state.latencyMs) ? state.latencyMs.toFixed(0) : '–';
    // Chunks left behind are dropped, and the server told, so it sends them again on the way back.
    if (state.camera)
      view?.mirror.update({ added: [], removed: mirror.evictFarther(state.camera.position, MIRROR_KEEP_M) });
    const report = mirror.report();
    if (report && state.connected) socket.emit('mirrorAck', report);
    const m = state.mirror;
    m.chunks = mirror.chunks.size;
    m.points = mirror.points;
    hud.mirror.textContent = `${m.chunks} chunks · ${(m.points / 1000).toFixed(0)}k points · ${m.visibleRegions} regions drawn`;
    const lateS = (now - lastFrameAtMs) / 1000;
    hud.late.hidden = !state.framesLate || !Number.isFinite(lateS);
    hud.late.textContent = `frames late (${lateS.toFixed(0)} s): showing the memory`;
    fpsFrames = 0;
    genCount = 0;
    fpsWindowStart = now;
  }
  requestAnimationFrame(tick);
}
requestAnimationFrame(tick);
window.addEventListener('resize', () => view?.resize());
