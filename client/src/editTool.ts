import type { Intrinsics } from '../../shared/camera/intrinsics.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import {
  type EditOp,
  MAX_BRUSH_RADIUS_M,
  MAX_EDIT_EXTENT_M,
  MAX_STROKE_POINTS,
  type PlacedObject,
} from '../../shared/edit/editOps.ts';
import type { Vec3 } from '../../shared/math/vec3.ts';
import { MIRROR_RADIUS_M } from '../../shared/protocol/mirrorCodec.ts';
import type { MirrorCache } from './mirrorCache.ts';
import { type Pick, pickMirror } from './mirrorPick.ts';

/** What a click or a drag does in edit mode. */
type ToolName = 'erase' | 'paint' | 'crate' | 'ball' | 'pillar';
const TOOLS: readonly ToolName[] = ['erase', 'paint', 'crate', 'ball', 'pillar'];
/** The palette colours and placed objects take (C cycles). */
const PALETTE: readonly { name: string; rgb: Vec3 }[] = [
  { name: 'brick red', rgb: [190, 60, 45] },
  { name: 'sky blue', rgb: [70, 140, 215] },
  { name: 'moss green', rgb: [90, 150, 70] },
  { name: 'sand', rgb: [215, 190, 130] },
  { name: 'slate', rgb: [90, 95, 105] },
  { name: 'white', rgb: [235, 235, 230] },
];
const MIN_RADIUS_M = 0.05;

/** What the edit tool needs from the page: sending, and showing an edit at once. */
export interface EditHost {
  /** Sends an edit; resolves with an error message, or undefined when the server applied it. */
  send(op: EditOp): Promise<string | undefined>;
  history(action: 'undo' | 'redo'): Promise<string | undefined>;
  /** The edit as the client shows it before the server's chunks arrive. */
  showLocally(op: EditOp): void;
  /** Hides frames generated before now (they still show what was edited). */
  dropStaleFrames(): void;
  toast(text: string): void;
}

/** Edit mode: for tests and the HUD. */
export interface EditState {
  active: boolean;
  tool: ToolName;
  radiusM: number;
  color: string;
  /** The surface under the cursor, if any. */
  cursor?: Vec3;
  /** Edits the server applied (undo and redo included). */
  applied: number;
  refused: string[];
}

/**
 * The player's editing tool: B toggles edit mode (the mouse is released and points instead of
 * looking), the cursor sits on the surface of the memory mirror under the mouse, a click places
 * the chosen object there or a drag erases (or paints) along the surface; 1–5 choose the tool,
 * [ and ] the brush size, C the colour; Ctrl+Z undoes, Ctrl+Shift+Z (or Ctrl+Y) redoes.
 */
export class EditTool {
  readonly state: EditState = {
    active: false,
    tool: 'erase',
    radiusM: 0.3,
    color: PALETTE[0]!.name,
    applied: 0,
    refused: [],
  };
  private colorIndex = 0;
  private mouse: { x: number; y: number } | undefined;
  private stroke: Vec3[] | undefined;
  private pick: Pick | undefined;
  private pose: Pose | undefined;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly cursorEl: HTMLElement,
    private readonly hudEl: HTMLElement,
    private readonly mirror: MirrorCache,
    private readonly host: EditHost,
    /** Turns mouse-look on (false: the mouse points). */
    private readonly setLook: (on: boolean) => void,
  ) {
    const typing = (e: Event): boolean => (e.target as HTMLElement | null)?.tagName === 'INPUT';
    window.addEventListener('keydown', (e) => {
      if (typing(e)) return;
      if ((e.ctrlKey || e.metaKey) && (e.code === 'KeyZ' || e.code === 'KeyY')) {
        e.preventDefault();
        void this.undoRedo(e.code === 'KeyY' || e.shiftKey ? 'redo' : 'undo');
        return;
      }
      if (e.code === 'KeyB') this.toggle();
      if (!this.state.active) return;
      const digit = /^Digit([1-5])$/.exec(e.code);
      if (digit) this.state.tool = TOOLS[Number(digit[1]) - 1]!;
      if (e.code === 'BracketLeft') this.state.radiusM = Math.max(MIN_RADIUS_M, this.state.radiusM / 1.25);
      if (e.code === 'BracketRight')
        this.state.radiusM = Math.min(MAX_BRUSH_RADIUS_M, this.state.radiusM * 1.25);
      if (e.code === 'KeyC') {
        this.colorIndex = (this.colorIndex + 1) % PALETTE.length;
        this.state.color = PALETTE[this.colorIndex]!.name;
      }
    });
    canvas.addEventListener('pointermove', (e) => {
      const r = canvas.getBoundingClientRect();
      this.mouse = {
        x: ((e.clientX - r.left) / r.width) * canvas.width,
        y: ((e.clientY - r.top) / r.height) * canvas.height,
      };
      if (this.stroke && this.pick) this.extendStroke(this.pick.point);
    });
    canvas.addEventListener('pointerdown', (e) => {
      if (!this.state.active || e.button !== 0 || !this.pick) return;
      if (this.state.tool === 'erase' || this.state.tool === 'paint') this.stroke = [this.pick.point];
      else void this.apply({ op: 'insert', object: this.object(this.pick.point) });
    });
    window.addEventListener('pointerup', () => {
      const stroke = this.stroke;
      this.stroke = undefined;
      if (!stroke || !this.state.active) return;
      void this.apply(this.strokeOp(stroke));
    });
  }

  toggle(): void {
    this.state.active = !this.state.active;
    this.setLook(!this.state.active);
    if (this.state.active && document.pointerLockElement === this.canvas) document.exitPointerLock();
    this.cursorEl.hidden = !this.state.active;
  }

  /** Picks the surface under the mouse from the display camera; call every display frame. */
  update(pose: Pose, k: Intrinsics): void {
    this.pose = pose;
    if (!this.state.active || !this.mouse) {
      this.pick = undefined;
      this.state.cursor = undefined;
      this.cursorEl.hidden = true;
      this.hudEl.textContent = this.state.active ? 'edit mode: point at a surface' : '';
      return;
    }
    const r = pose.rotation;
    const x = (this.mouse.x - k.cx) / k.fx;
    const y = (this.mouse.y - k.cy) / k.fy;
    const d: Vec3 = [r[0] * x + r[1] * y + r[2], r[3] * x + r[4] * y + r[5], r[6] * x + r[7] * y + r[8]];
    const n = Math.hypot(d[0], d[1], d[2]);
    this.pick = pickMirror(
      this.mirror.chunks.values(),
      pose.position,
      [d[0] / n, d[1] / n, d[2] / n],
      MIRROR_RADIUS_M,
    );
    this.state.cursor = this.pick?.point;
    // The cursor: a ring as wide as the brush (or the object) where it meets the surface.
    const el = this.cursorEl;
    el.hidden = false;
    const rect = this.canvas.getBoundingClientRect();
    const scale = rect.width / this.canvas.width;
    const size = this.pick ? (2 * this.footprintM() * k.fx) / (this.pick.distanceM * (1 / n)) : 12;
    const px = Math.max(6, Math.min(600, size * scale));
    el.style.width = el.style.height = `${px}px`;
    el.style.left = `${rect.left + this.mouse.x * scale - px / 2}px`;
    el.style.top = `${rect.top + this.mouse.y * scale - px / 2}px`;
    el.classList.toggle('miss', !this.pick);
    const s = this.state;
    this.hudEl.textContent =
      `edit: ${s.tool}${s.tool === 'erase' || s.tool === 'paint' ? ` ${s.radiusM.toFixed(2)} m` : ''} · ${s.color}` +
      ` · ${this.pick ? `${this.pick.distanceM.toFixed(1)} m` : 'no surface'} · 1-5 tool, [ ] size, C colour, drag/click, Ctrl+Z`;
  }

  private footprintM(): number {
    return this.state.tool === 'erase' || this.state.tool === 'paint' ? this.state.radiusM : 0.4;
  }

  /** A placed object of the current tool, resting on `at`, turned to face the player. */
  private object(at: Vec3): PlacedObject {
    const color = PALETTE[this.colorIndex]!.rgb;
    const p = this.pose?.position ?? at;
    const yaw = Math.atan2(p[0] - at[0], p[2] - at[2]);
    if (this.state.tool === 'ball')
      return { shape: 'ball', size: [0.6, 0.6, 0.6], color, texture: 'stripes', at, yaw };
    if (this.state.tool === 'pillar')
      return { shape: 'pillar', size: [0.4, 2, 0.4], color, texture: 'plain', at, yaw };
    return { shape: 'box', size: [0.8, 0.8, 0.8], color, texture: 'checker', at, yaw };
  }

  private extendStroke(p: Vec3): void {
    const stroke = this.stroke!;
    const last = stroke.at(-1)!;
    if (Math.hypot(p[0] - last[0], p[1] - last[1], p[2] - last[2]) < this.state.radiusM / 2) return;
    const first = stroke[0]!;
    // A stroke stays within what one edit may span; past it, what is drawn so far goes and a new one starts.
    const span = Math.max(...[0, 1, 2].map((a) => Math.abs(p[a]! - first[a]!))) + 2 * this.state.radiusM;
    if (stroke.length >= MAX_STROKE_POINTS || span > MAX_EDIT_EXTENT_M) {
      void this.apply(this.strokeOp([...stroke]));
      this.stroke = [last, p];
      return;
    }
    stroke.push(p);
  }

  /** The brush stroke through `points` as the current tool's edit (erase, or paint in the palette colour). */
  private strokeOp(points: Vec3[]): EditOp {
    const region = { shape: 'stroke' as const, points, radius: this.state.radiusM };
    return this.state.tool === 'paint'
      ? { op: 'recolor', region, color: PALETTE[this.colorIndex]!.rgb }
      : { op: 'erase', region };
  }

  /** Shows the edit at once, then sends it; the server's chunks replace the local guess. */
  private async apply(op: EditOp): Promise<void> {
    this.host.showLocally(op);
    this.host.dropStaleFrames();
    const refused = await this.host.send(op);
    if (refused) {
      this.state.refused.push(refused);
      this.host.toast(`edit refused: ${refused}`);
    } else this.state.applied++;
  }

  private async undoRedo(action: 'undo' | 'redo'): Promise<void> {
    const refused = await this.host.history(action);
    if (refused) {
      this.state.refused.push(refused);
      this.host.toast(`${action}: ${refused}`);
      return;
    }
    this.state.applied++;
    this.host.dropStaleFrames();
  }
}
