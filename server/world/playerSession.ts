import type { Logger } from 'pino';
import {
  type CameraState,
  type InputState,
  NO_INPUT,
  poseOfCamera,
  stepCamera,
} from '../../shared/camera/controller.ts';
import type { Pose } from '../../shared/camera/pose.ts';
import type { EditOp } from '../../shared/edit/editOps.ts';
import type { SpatiaError } from '../../shared/errors.ts';
import { mixSeed } from '../../shared/math/random.ts';
import type { InputMessage, MirrorAck, ServerError } from '../../shared/protocol/events.ts';
import { MirrorStream } from '../memory/mirrorStream.ts';
import type { WorldModel } from '../models/worldModel.ts';
import type { RecordedEdit } from '../store/sessionLog.ts';
import type { WorldStore } from '../store/worldStore.ts';
import { type Avatar, avatarColor } from './avatars.ts';
import { type ClipPlan, frameChecksum, playClip, seedFromScene } from './clipLoop.ts';
import { Director, type ViewRenderer } from './director.ts';
import { FrameChannel, type SendFrame, type Watchdog } from './frameChannel.ts';
import { encodeWireFrame } from './frameEncoder.ts';
import type { World, WorldMember } from './world.ts';

/** What every player session of a server shares. */
export interface SessionSettings {
  readonly model: WorldModel;
  /** Frames per generated clip; 1 gives the lowest input-to-frame latency. */
  readonly clipFrames: number;
  readonly jpegQuality: number;
  /** Frames waiting to be sent per receiver before the oldest is dropped. */
  readonly queueFrames: number;
  /** Where recorded sessions go (absent: recording is not offered). */
  readonly store?: WorldStore;
  readonly log: Logger;
  /** A viewer that acknowledges no frame for this long is given up on, milliseconds. */
  readonly unresponsiveMs: number;
  /** Renders the memory views of every player's clips (view threads); absent: on the main thread. */
  readonly views?: ViewRenderer;
  /** Memory mirror bandwidth per player, kbit/s (0: no mirror). */
  readonly mirrorKbps: number;
  /** While `paused`, no session starts a clip (a test option: the server "stalls"). */
  readonly generation: { paused: boolean };
}

/** Where a session's output goes: its player's frames and errors meant for the player. */
export interface SessionOutput {
  readonly sendFrame: SendFrame;
  readonly onError: (error: ServerError) => void;
  /** The player acknowledged no frame for `unresponsiveMs`: the connection should go. */
  readonly onUnresponsive: () => void;
  /** Sends one memory mirror batch; returns the bytes it took on the wire (absent: this player gets no mirror). */
  readonly sendMirror?: (bytes: Uint8Array) => number;
}

/** A spectator: where their copy of the frames goes, and what to do when they stop reading or the player leaves. */
export interface SpectatorOutput {
  readonly sendFrame: SendFrame;
  readonly onUnresponsive: () => void;
  readonly onPlayerLeft: () => void;
}

/** A clip whose view the memory covers less than this (quarter resolution) invents, under the world's lock. */
const INVENTS_BELOW_COVERAGE = 0.98;
/** Stored chunks near the player are brought back every this many clips. */
const RESIDENCY_EVERY_CLIPS = 30;
/** How often the memory mirror looks for a batch to send, milliseconds. */
const MIRROR_TICK_MS = 40;
/** How often a paused generation loop looks again, milliseconds. */
const PAUSED_POLL_MS = 50;
/** Pause after a failed clip before the next try. */
const RETRY_AFTER_FAILURE_MS = 1000;
/**
 * Movement time a player may carry between inputs, seconds: inputs that arrive in a burst after
 * network jitter still move the player, but the sum of the steps never outruns the server's clock.
 */
const MOVEMENT_CARRY_S = 0.25;

/**
 * One player in a world: the camera the server decides from their input, a director over the
 * world's shared memory, the generation loop (a clip at the current camera, paced to the model's
 * frame rate), the frame channels to the player and their spectators, and the recording.
 * Lifecycle: constructed (seeds a new world, starts recording) → `start` (joins the world, runs
 * the loop) → `leave` (idempotent: stops the loop, closes the channels, ends the recording).
 */
export class PlayerSession implements WorldMember {
  readonly id: string;
  readonly director: Director;
  camera: CameraState;
  /** Recorded session id, when recording. */
  readonly recordingId: string | undefined;
  /** Frames generated so far. */
  frames = 0;
  /** The input held now (keys and sticks), for planning multi-frame clips. */
  private held: InputState = NO_INPUT;
  private inputSeq = 0;
  private inputClientTimeMs = 0;
  /** Movement time left to integrate (seconds) and when it was last topped up (performance.now() s). */
  private movementBudgetS = 0;
  private movementClockS = performance.now() / 1000;
  private readonly channel: FrameChannel;
  private readonly spectators = new Map<FrameChannel, SpectatorOutput>();
  private readonly abort = new AbortController();
  private active = false;
  private recordingStopped = false;
  /** The memory around the player, streamed to their client (absent: no mirror). */
  readonly mirror: MirrorStream | undefined;
  private mirrorTimer: NodeJS.Timeout | undefined;
  /** Edits of the world since the last recorded clip (recorded with the next one). */
  private editsToRecord: RecordedEdit[] = [];
  private stopHearingEdits: (() => void) | undefined;

  constructor(
    readonly world: World,
    /** Server-wide player number: names the player and mixes into their clip seeds. */
    readonly index: number,
    readonly name: string,
    private readonly settings: SessionSettings,
    private readonly output: SessionOutput,
    record: boolean,
  ) {
    const info = settings.model.describe();
    this.id = `p${index}`;
    this.director = new Director(world.memory, settings.model, {
      worldSeed: world.seed,
      prompt: world.prompt,
      views: settings.views,
    });
    this.camera = world.spawn();
    this.channel = new FrameChannel(
      output.sendFrame,
      settings.queueFrames,
      this.watchdog(output.onUnresponsive),
    );
    this.mirror =
      output.sendMirror && settings.mirrorKbps > 0
        ? new MirrorStream(world.memory.grid, output.sendMirror, settings.mirrorKbps, performance.now())
        : undefined;
    // Peek first: a recording that fails to start must leave the world to be seeded by the next player.
    const seeding = world.needsSeeding;
    const spawnPose = poseOfCamera(this.camera);
    if (record) {
      if (!settings.store) throw new Error('recording needs a world store');
      this.recordingId = settings.store.sessions.start({
        worldId: world.id,
        player: name,
        model: info.name,
        width: info.width,
        height: info.height,
        fps: info.fps,
        prompt: world.prompt,
        startMemory: world.memory,
        erased: [...world.memory.grid.carvedRegions].map((c) => c.world),
        seededFrom:
          seeding && world.scene
            ? {
                scene: world.id,
                rotation: [...spawnPose.rotation],
                position: [...spawnPose.position],
                timeS: 0,
              }
            : undefined,
      });
    }
    // World time 0: the seed frame is part of the world's definition (replay repeats it).
    if (world.claimSeeding() && world.scene) seedFromScene(this.director, world.scene, spawnPose, 0);
  }

  /** Joins the world and starts generating. */
  start(): void {
    if (this.active || this.abort.signal.aborted) return;
    this.active = true;
    this.world.join(this);
    this.stopHearingEdits = this.world.onEdit((e) => {
      this.mirror?.markEdited(e.chunkKeys);
      if (this.recordingId)
        this.editsToRecord.push({
          action: e.action,
          authorId: e.entry.authorId,
          author: e.entry.author,
          op: e.action === 'apply' ? (e.entry.op as EditOp) : undefined,
        });
    });
    if (this.mirror) {
      const mirror = this.mirror;
      this.mirrorTimer = setInterval(() => {
        // Frames first: a batch goes only while no frame waits to be sent to this player.
        if (this.channel.queued > 0) return;
        const pose = poseOfCamera(this.camera);
        const r = pose.rotation;
        mirror.pump(pose.position, [r[2], r[5], r[8]], performance.now());
      }, MIRROR_TICK_MS);
      this.mirrorTimer.unref();
    }
    void this.run();
  }

  /** The client took a mirror batch in; an error reason when the acknowledgement does not fit. */
  acknowledgeMirror(ack: MirrorAck): string | undefined {
    if (!this.mirror) return 'this session has no memory mirror';
    return this.mirror.acknowledge(ack);
  }

  /**
   * Applies one input sample to the camera (the same controller the client predicts with). The step
   * is the client's claimed `dtMs`, but never more than the server's own clock has granted since
   * the last input: a client that claims more time cannot move faster than the controller allows.
   */
  applyInput(input: InputMessage): void {
    const nowS = performance.now() / 1000;
    this.movementBudgetS = Math.min(MOVEMENT_CARRY_S, this.movementBudgetS + (nowS - this.movementClockS));
    this.movementClockS = nowS;
    const dtS = Math.min(input.dtMs / 1000, this.movementBudgetS);
    this.movementBudgetS -= dtS;
    this.camera = stepCamera(this.camera, input, dtS);
    this.held = { ...input, lookDxPx: 0, lookDyPx: 0 };
    this.inputSeq = input.seq;
    this.inputClientTimeMs = input.clientTimeMs;
  }

  /** Sends this player's frames to a spectator too, until `unwatch` or the player leaves (`onPlayerLeft`). */
  watch(spectator: SpectatorOutput): FrameChannel {
    const channel = new FrameChannel(
      spectator.sendFrame,
      this.settings.queueFrames,
      this.watchdog(spectator.onUnresponsive),
    );
    this.spectators.set(channel, spectator);
    return channel;
  }

  unwatch(channel: FrameChannel): void {
    channel.close();
    this.spectators.delete(channel);
  }

  /** Frames dropped on the way to the player because newer ones replaced them. */
  get dropped(): number {
    return this.channel.dropped;
  }

  /** Stops generating, closes every channel, leaves the world and ends the recording. Idempotent. */
  leave(): void {
    if (this.abort.signal.aborted) return;
    this.active = false;
    this.abort.abort();
    clearInterval(this.mirrorTimer);
    this.stopHearingEdits?.();
    this.channel.close();
    const spectators = [...this.spectators];
    this.spectators.clear();
    for (const [channel, spectator] of spectators) {
      channel.close();
      spectator.onPlayerLeft();
    }
    this.world.leave(this);
    if (this.recordingId) this.settings.store?.sessions.end(this.recordingId);
  }

  /** The store refused a recorded clip or frame (size cap or failure): tell the player once. */
  private noteRecording(accepted: boolean): void {
    if (accepted || this.recordingStopped) return;
    this.recordingStopped = true;
    this.output.onError({
      code: 'RECORDING_STOPPED',
      message: 'the server stopped recording this session (size limit or store problem); play goes on',
    });
  }

  private watchdog(onUnresponsive: () => void): Watchdog {
    return { unresponsiveMs: this.settings.unresponsiveMs, onUnresponsive };
  }

  /** The next clip from where the player is: the current pose, then the held input stepped on. */
  private planNext(clip: number): Required<ClipPlan> {
    const now = poseOfCamera(this.camera);
    const poses: Pose[] =
      this.settings.clipFrames === 1
        ? [now]
        : [
            now,
            ...this.director.planClip(this.camera, this.held, undefined, this.settings.clipFrames - 1).poses,
          ];
    // Each player's clips get their own seeds (a real model is stochastic; inventions would differ).
    return {
      poses,
      seed: mixSeed(this.world.seed, this.index, clip),
      timeS: this.world.timeS(),
      prompt: this.world.prompt,
    };
  }

  /** The other players of this world, as avatars. */
  private avatars(): Avatar[] {
    return this.world.players
      .filter((m) => m.id !== this.id)
      .map((m) => ({ name: m.name, eye: m.camera.position, color: avatarColor(m.id) }));
  }

  /**
   * The generation loop: a clip at the current camera, paced to the model's frame rate. A clip
   * that will invent (the memory does not cover its view) runs under the world's invention lock,
   * so two players never invent the same unseen place differently.
   */
  private async run(): Promise<void> {
    const { model, store, jpegQuality, log } = this.settings;
    const intervalMs = 1000 / model.describe().fps;
    const k = this.director.intrinsics;
    let clip = 0;
    let due = performance.now();
    let storeAway = false;
    while (this.active) {
      if (this.settings.generation.paused) {
        await new Promise((r) => setTimeout(r, PAUSED_POLL_MS));
        due = performance.now();
        continue;
      }
      if (clip % RESIDENCY_EVERY_CLIPS === 0)
        try {
          this.world.loadNear(this.camera.position);
          storeAway = false;
        } catch (e) {
          // A damaged stored chunk stays out of RAM; the player walks on (the store logged which).
          // A store that does not answer (PostgreSQL away) is said once until it answers again.
          if ((e as SpatiaError).code !== 'STORE_UNAVAILABLE')
            log.error({ err: e, world: this.world.id }, 'stored chunks near the player could not be loaded');
          else if (!storeAway) {
            storeAway = true;
            log.warn(
              { err: (e as Error).message, world: this.world.id },
              'the store does not answer: chunks near the player stay away until it does',
            );
          }
        }
      const inputSeq = this.inputSeq;
      const clientTimeMs = this.inputClientTimeMs;
      const plan = this.planNext(clip);
      const clipIndex = clip++;
      const generateClip = async (): Promise<void> => {
        if (this.recordingId && store && !this.recordingStopped)
          this.noteRecording(
            store.sessions.clip(this.recordingId, {
              index: clipIndex,
              rotations: plan.poses.map((q) => [...q.rotation]),
              positions: plan.poses.map((q) => [...q.position]),
              seed: plan.seed,
              timeS: plan.timeS,
              prompt: plan.prompt,
              inputSeq,
              ...(this.editsToRecord.length > 0 ? { edits: this.editsToRecord.splice(0) } : {}),
            }),
          );
        for await (const f of playClip(this.director, plan, this.abort.signal)) {
          const { bytes, jpeg } = await encodeWireFrame(f, k, this.avatars(), jpegQuality, {
            frameId: this.frames,
            inputSeq,
            clientTimeMs,
          });
          if (this.recordingId && store && !this.recordingStopped)
            this.noteRecording(
              store.sessions.frame(this.recordingId, {
                index: this.frames,
                clipIndex,
                jpeg,
                rgbCrc: frameChecksum(f),
                timings: { ...f.timings },
              }),
            );
          this.frames++;
          this.channel.push(bytes);
          for (const s of this.spectators.keys()) s.push(bytes);
        }
      };
      try {
        const invents = plan.poses.some((q) => this.director.coverageAt(q) < INVENTS_BELOW_COVERAGE);
        if (invents) await this.world.whileInventing(generateClip);
        else await generateClip();
      } catch (e) {
        if (!this.active) return;
        log.error({ err: e, player: this.id }, 'generation failed');
        this.output.onError({ code: 'INTERNAL', message: `generation failed: ${(e as Error).message}` });
        await new Promise((r) => setTimeout(r, RETRY_AFTER_FAILURE_MS));
      }
      due += intervalMs * plan.poses.length;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else {
        due = performance.now();
        await new Promise<void>((r) => setImmediate(r));
      }
    }
  }
}
