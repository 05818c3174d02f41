import { DEFAULT_CONTROLLER, Key } from '../../shared/camera/controller.ts';
import type { InputMessage } from '../../shared/protocol/events.ts';

const KEY_BITS: Record<string, number> = {
  KeyW: Key.Forward,
  KeyS: Key.Back,
  KeyA: Key.Left,
  KeyD: Key.Right,
  KeyE: Key.Up,
  KeyQ: Key.Down,
  ShiftLeft: Key.Sprint,
  ShiftRight: Key.Sprint,
  ArrowUp: Key.Forward,
  ArrowDown: Key.Back,
};
/** Arrow-key turning speed, pixels of mouse movement per second. */
const TURN_PX_PER_S = 600;

/** Keyboard, pointer-locked mouse and the first gamepad, sampled once per animation frame. */
export class InputSampler {
  private keys = 0;
  private turn = 0;
  private dx = 0;
  private dy = 0;
  private seq = 0;
  /** Whether a click captures the mouse for looking (off in edit mode, where the mouse points). */
  lookEnabled = true;

  constructor(private readonly canvas: HTMLCanvasElement) {
    const typing = (e: Event): boolean => (e.target as HTMLElement | null)?.tagName === 'INPUT';
    window.addEventListener('keydown', (e) => {
      if (typing(e)) return;
      this.keys |= KEY_BITS[e.code] ?? 0;
      if (e.code === 'ArrowLeft') this.turn = -1;
      if (e.code === 'ArrowRight') this.turn = 1;
      if (e.code.startsWith('Arrow') || e.code === 'Space') e.preventDefault();
    });
    window.addEventListener('keyup', (e) => {
      this.keys &= ~(KEY_BITS[e.code] ?? 0);
      if ((e.code === 'ArrowLeft' && this.turn < 0) || (e.code === 'ArrowRight' && this.turn > 0))
        this.turn = 0;
    });
    window.addEventListener('blur', () => {
      this.keys = 0;
      this.turn = 0;
    });
    canvas.addEventListener('click', () => {
      canvas.focus();
      if (this.lookEnabled) void canvas.requestPointerLock?.();
    });
    document.addEventListener('mousemove', (e) => {
      if (document.pointerLockElement !== this.canvas) return;
      this.dx += e.movementX;
      this.dy += e.movementY;
    });
  }

  /** The sequence number of the last sample taken. */
  get lastSeq(): number {
    return this.seq;
  }

  /** The input held over the last `dtMs`, with a fresh sequence number. */
  sample(dtMs: number, nowMs: number): InputMessage {
    const pad = navigator.getGamepads?.().find((g) => g?.connected) ?? null;
    const ax = (i: number): number => {
      const v = pad?.axes[i] ?? 0;
      return Number.isFinite(v) ? Math.max(-1, Math.min(1, v)) : 0;
    };
    const sprint = pad?.buttons[10]?.pressed || pad?.buttons[4]?.pressed ? Key.Sprint : 0;
    const msg: InputMessage = {
      seq: ++this.seq,
      clientTimeMs: nowMs,
      dtMs: Math.min(1000, Math.max(0, dtMs)),
      keys: this.keys | sprint,
      // Arrow turning is clamped like the controller clamps a step (100 ms), so turn and walk stay in proportion.
      lookDxPx: clampPx(
        this.dx + this.turn * TURN_PX_PER_S * Math.min(dtMs / 1000, DEFAULT_CONTROLLER.maxStepS),
      ),
      lookDyPx: clampPx(this.dy),
      padMoveX: ax(0),
      padMoveY: ax(1),
      padLookX: ax(2),
      padLookY: ax(3),
    };
    this.dx = 0;
    this.dy = 0;
    return msg;
  }
}

const clampPx = (v: number): number => Math.max(-4000, Math.min(4000, v));
