import {
  type Bounds,
  type EditOp,
  type EditRecord,
  type EditRegion,
  editBounds,
  type LoggedEditOp,
  regionBounds,
} from '../../shared/edit/editOps.ts';
import { carve, forEachChunkIn, uncarve } from '../memory/carvedSpace.ts';
import {
  applyDiff,
  applyEditOp,
  boundsOfPoints,
  type EditDiff,
  insertPoints,
  type PointsToInsert,
} from '../memory/edit.ts';
import type { CarvedRegion, VoxelGrid } from '../memory/voxelGrid.ts';

/** Edits one player can undo (older ones stay in the log, but their diffs leave RAM). */
const UNDO_DEPTH = 32;

/** Who made an edit: a player (id for their undo history, name for the log) or a tool. */
export interface EditAuthor {
  readonly id: string;
  readonly name: string;
}

/** One entry of a world's edit log. */
export interface EditEntry extends EditRecord {
  readonly authorId: string;
  undone: boolean;
  /** The voxels it changed, while its author can still undo it. */
  diff: EditDiff | undefined;
  /** Its erased region, while it is applied (erase only). */
  carved: CarvedRegion | undefined;
}

/** What happened to the memory: an edit applied, undone or redone, and the chunks it touched. */
export interface EditEvent {
  readonly action: 'apply' | 'undo' | 'redo';
  readonly entry: EditEntry;
  readonly chunkKeys: readonly number[];
  /** Voxels changed. */
  readonly voxels: number;
}

/**
 * A world's edit log: every edit in order (author, time, bounds, operation), each player's undo and
 * redo history, and the erased regions the memory keeps empty. Restored from the store's rows: an
 * applied erase carves its region again (the chunks already hold the edited voxels).
 */
export class EditLog {
  private readonly entries: EditEntry[] = [];
  private readonly undoable = new Map<string, EditEntry[]>();
  private readonly redoable = new Map<string, EditEntry[]>();

  constructor(
    private readonly grid: VoxelGrid,
    stored: readonly EditRecord[] = [],
  ) {
    for (const s of stored) {
      const entry: EditEntry = { ...s, authorId: '', diff: undefined, carved: undefined };
      if (!s.undone && s.op.op === 'erase') entry.carved = carve(grid, s.op.region);
      this.entries.push(entry);
    }
  }

  /** Every entry, oldest first. */
  get all(): readonly EditEntry[] {
    return this.entries;
  }

  private get nextSeq(): number {
    return (this.entries.at(-1)?.seq ?? 0) + 1;
  }

  /** Applies an edit operation (CAPACITY when it would change too many voxels: nothing changed). */
  apply(op: EditOp, author: EditAuthor, at: Date): EditEvent {
    return this.record(op, applyEditOp(this.grid, op), author, at);
  }

  /** Places a point cloud (the `world edit --insert-ply` tool); the log keeps `summary`. */
  insertPoints(points: PointsToInsert, summary: LoggedEditOp, author: EditAuthor, at: Date): EditEvent {
    return this.record(summary, insertPoints(this.grid, points), author, at, boundsOfPoints(points));
  }

  private record(op: LoggedEditOp, diff: EditDiff, author: EditAuthor, at: Date, bounds?: Bounds): EditEvent {
    const entry: EditEntry = {
      seq: this.nextSeq,
      author: author.name,
      authorId: author.id,
      at: at.toISOString(),
      op,
      bounds: bounds ?? editBounds(op as EditOp),
      undone: false,
      diff,
      carved: op.op === 'erase' ? carve(this.grid, op.region) : undefined,
    };
    this.entries.push(entry);
    const stack = this.stack(this.undoable, author.id);
    stack.push(entry);
    if (stack.length > UNDO_DEPTH) stack.shift()!.diff = undefined;
    this.redoable.delete(author.id);
    return { action: 'apply', entry, chunkKeys: [...diff.chunks.keys()], voxels: diff.voxels };
  }

  /** Undoes `authorId`'s latest edit; undefined when they have none left to undo. */
  undo(authorId: string): EditEvent | undefined {
    const entry = this.undoable.get(authorId)?.pop();
    if (!entry?.diff) return undefined;
    const r = applyDiff(this.grid, entry.diff, 'undo');
    if (entry.carved) uncarve(this.grid, entry.carved);
    entry.carved = undefined;
    entry.undone = true;
    this.stack(this.redoable, authorId).push(entry);
    return { action: 'undo', entry, chunkKeys: this.chunksOf(entry), voxels: r.applied };
  }

  /**
   * Redoes `authorId`'s latest undone edit: the operation runs again on the memory as it is now (an
   * erase also takes what was fused into its region since the undo).
   */
  redo(authorId: string): EditEvent | undefined {
    const entry = this.redoable.get(authorId)?.pop();
    if (!entry?.diff) return undefined;
    const op = entry.op;
    let voxels: number;
    if (op.op === 'insertPly') voxels = applyDiff(this.grid, entry.diff, 'redo').applied;
    else {
      entry.diff = applyEditOp(this.grid, op);
      voxels = entry.diff.voxels;
      if (op.op === 'erase') entry.carved = carve(this.grid, op.region);
    }
    entry.undone = false;
    this.stack(this.undoable, authorId).push(entry);
    return { action: 'redo', entry, chunkKeys: this.chunksOf(entry), voxels };
  }

  private chunksOf(entry: EditEntry): number[] {
    const keys = new Set(entry.diff?.chunks.keys());
    forEachChunkIn(this.grid, entry.bounds, (_x, _y, _z, key) => {
      if (this.grid.hasChunk(key)) keys.add(key);
    });
    return [...keys];
  }

  private stack(stacks: Map<string, EditEntry[]>, authorId: string): EditEntry[] {
    let s = stacks.get(authorId);
    if (!s) {
      s = [];
      stacks.set(authorId, s);
    }
    return s;
  }
}

/** The log's row for an entry. */
export const storedEdit = (e: EditEntry): EditRecord => ({
  seq: e.seq,
  author: e.author,
  at: e.at,
  op: e.op,
  bounds: e.bounds,
  undone: e.undone,
});

/** Log rows that keep `regions` erased: a recorded session's world as it started, for replay. */
export const erasedAtStart = (regions: readonly EditRegion[]): EditRecord[] =>
  regions.map((region, i) => ({
    seq: i + 1,
    author: '',
    at: '',
    op: { op: 'erase', region },
    bounds: regionBounds(region),
    undone: false,
  }));
