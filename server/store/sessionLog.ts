import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';

/**
 * Recorded play sessions, in the world store's database: one row per session (who, where, which
 * model, the memory snapshot it started from), one per clip (target poses, seed, world time,
 * prompt: everything `replay` needs) and one per frame (the JPEG the player saw, the CRC-32 of the
 * generated RGB, stage timings). Rows are buffered and written by `flush` in one transaction.
 */
export interface SessionStart {
  readonly worldId: string;
  readonly player: string;
  readonly model: string;
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly prompt: string;
  /** The world's memory when the session began (snapshot format), so replay can start from it. */
  readonly startSnapshot: Uint8Array;
  /** The ground-truth seed frame this session fused first, if it seeded the world. */
  readonly seededFrom?: { scene: string; rotation: number[]; position: number[]; timeS: number } | undefined;
}

export interface RecordedClip {
  readonly index: number;
  readonly rotations: number[][];
  readonly positions: number[][];
  readonly seed: number;
  readonly timeS: number;
  readonly prompt: string;
  readonly inputSeq: number;
}

export interface RecordedFrame {
  readonly index: number;
  readonly clipIndex: number;
  readonly jpeg: Uint8Array;
  readonly rgbCrc: number;
  readonly timings: Record<string, number>;
}

export class SessionLog {
  private pendingClips: { id: string; clip: RecordedClip }[] = [];
  private pendingFrames: { id: string; frame: RecordedFrame }[] = [];

  /** `db` already holds the session tables (`schema.ts`). */
  constructor(private readonly db: Database.Database) {}

  start(s: SessionStart): string {
    const id = randomUUID();
    this.db
      .prepare(
        `INSERT INTO sessions (id, world_id, player, model, width, height, fps, prompt, seeded_from, start_snapshot, started_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        s.worldId,
        s.player,
        s.model,
        s.width,
        s.height,
        s.fps,
        s.prompt,
        s.seededFrom ? JSON.stringify(s.seededFrom) : null,
        s.startSnapshot,
        new Date().toISOString(),
      );
    return id;
  }

  clip(id: string, clip: RecordedClip): void {
    this.pendingClips.push({ id, clip });
  }

  frame(id: string, frame: RecordedFrame): void {
    this.pendingFrames.push({ id, frame });
  }

  end(id: string): void {
    this.flush();
    this.db.prepare('UPDATE sessions SET ended_at = ? WHERE id = ?').run(new Date().toISOString(), id);
  }

  /** Writes buffered clips and frames in one transaction. */
  flush(): number {
    if (this.pendingClips.length === 0 && this.pendingFrames.length === 0) return 0;
    const clips = this.pendingClips;
    const frames = this.pendingFrames;
    this.pendingClips = [];
    this.pendingFrames = [];
    const putClip = this.db.prepare(
      'INSERT OR REPLACE INTO session_clips (session_id, idx, clip) VALUES (?, ?, ?)',
    );
    const putFrame = this.db.prepare(
      'INSERT OR REPLACE INTO session_frames (session_id, idx, clip_idx, rgb_crc, timings, jpeg) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.db.transaction(() => {
      for (const { id, clip } of clips) putClip.run(id, clip.index, JSON.stringify(clip));
      for (const { id, frame } of frames)
        putFrame.run(
          id,
          frame.index,
          frame.clipIndex,
          frame.rgbCrc,
          JSON.stringify(frame.timings),
          frame.jpeg,
        );
    })();
    return clips.length + frames.length;
  }

  session(id: string): (SessionStart & { id: string; frames: number; clips: number }) | undefined {
    const row = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as
      | {
          id: string;
          world_id: string;
          player: string;
          model: string;
          width: number;
          height: number;
          fps: number;
          prompt: string;
          seeded_from: string | null;
          start_snapshot: Buffer;
        }
      | undefined;
    if (!row) return undefined;
    const count = (table: string): number =>
      (this.db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE session_id = ?`).get(id) as { n: number }).n;
    return {
      id: row.id,
      worldId: row.world_id,
      player: row.player,
      model: row.model,
      width: row.width,
      height: row.height,
      fps: row.fps,
      prompt: row.prompt,
      seededFrom: row.seeded_from ? JSON.parse(row.seeded_from) : undefined,
      startSnapshot: new Uint8Array(row.start_snapshot),
      frames: count('session_frames'),
      clips: count('session_clips'),
    };
  }

  listSessions(): { id: string; worldId: string; player: string; startedAt: string; frames: number }[] {
    return this.db
      .prepare(
        `SELECT s.id, s.world_id AS worldId, s.player, s.started_at AS startedAt,
                (SELECT COUNT(*) FROM session_frames f WHERE f.session_id = s.id) AS frames
         FROM sessions s ORDER BY s.started_at`,
      )
      .all() as { id: string; worldId: string; player: string; startedAt: string; frames: number }[];
  }

  *clips(id: string): Generator<RecordedClip> {
    for (const row of this.db
      .prepare('SELECT clip FROM session_clips WHERE session_id = ? ORDER BY idx')
      .iterate(id) as Iterable<{ clip: string }>)
      yield JSON.parse(row.clip) as RecordedClip;
  }

  *frames(id: string): Generator<{ index: number; clipIndex: number; rgbCrc: number; jpeg: Uint8Array }> {
    for (const row of this.db
      .prepare('SELECT idx, clip_idx, rgb_crc, jpeg FROM session_frames WHERE session_id = ? ORDER BY idx')
      .iterate(id) as Iterable<{ idx: number; clip_idx: number; rgb_crc: number; jpeg: Buffer }>)
      yield { index: row.idx, clipIndex: row.clip_idx, rgbCrc: row.rgb_crc, jpeg: new Uint8Array(row.jpeg) };
  }
}
