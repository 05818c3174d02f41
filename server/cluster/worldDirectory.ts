import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { SpatiaError } from '../../shared/errors.ts';

/** A server node as the directory names it: its id and the URL players reach it at. */
export interface NodeAddress {
  readonly id: string;
  readonly url: string;
}

/** Who serves a world: this node, or another one (for as long again as `leaseMs`, unless it renews). */
export type Claim =
  /** `epoch`: the lease's fencing token, larger for every new lease of the world (commits carry it). */
  | { readonly mine: true; readonly epoch: number }
  | { readonly mine: false; readonly owner: NodeAddress; readonly leaseMs: number };

export interface WorldDirectoryOptions {
  /** Redis URL (`redis://127.0.0.1:6379`). */
  readonly url: string;
  readonly node: NodeAddress;
  /**
   * A world's lease: the owner renews it every third of this; a node that dies or loses Redis for
   * this long loses its worlds to whichever node a player asks next (default 5000 ms).
   */
  readonly leaseMs?: number;
  readonly logger: Logger;
  /** Key prefix, so several clusters (or tests) can share one Redis (default `spatia:`). */
  readonly prefix?: string;
}

export const DEFAULT_LEASE_MS = 5000;

/** Whether `url` names a Redis (`redis://` or `rediss://`): the form every cluster flag takes. */
export const isRedisUrl = (url: string): boolean => /^rediss?:\/\/\S+$/.test(url);
/** Nodes listed to clients at most (a client needs a few to fail over to, not the whole fleet). */
const MAX_LISTED_NODES = 64;
/** A lease is given up this long before it could expire unrenewed: another node may take it then. */
const SAFETY_MARGIN_SHARE = 0.2;

// Takes a free lease and numbers it, in one step: epochs grow in the order leases are taken.
const TAKE = `if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return redis.call('INCR', KEYS[2]) else return 0 end`;
// Renews the lease when this node still holds it; 1 renewed, 0 lost.
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
// Deletes the lease only when this node holds it (a lease another node took is not ours to drop).
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/**
 * The cluster's directory of world owners, in Redis: each world is served by exactly one node at a
 * time, which holds a lease (`SET NX PX`) and renews it while it serves the world. Any node asked
 * for a world either takes a free lease or names the owner; when an owner dies its leases expire
 * and the next node asked takes the world over from the shared store. A node that cannot confirm
 * a lease before it could expire (Redis unreachable, the process stalled) stops serving that world
 * (`onLost`), so two nodes never write one world's memory. The pattern of Colyseus's room
 * presence, on plain Redis commands.
 */
export class WorldDirectory {
  readonly leaseMs: number;
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly self: string;
  /** Worlds this node holds a lease on → until when (performance.now()) it is confirmed, since when, its epoch. */
  private readonly held = new Map<string, { until: number; since: number; epoch: number }>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Every live node's URL (this one's included), as of the last renewal round. */
  private nodes: string[];
  /** Told when this node lost a world it served (lease taken or unconfirmed): it must stop serving it. */
  onLost: (worldId: string, why: string) => void = () => {};
  /** Whether this node serves the world now (set by the server): a lease held for none is given back. */
  serving: (worldId: string) => boolean = () => true;

  private constructor(
    private readonly o: WorldDirectoryOptions,
    redis: Redis,
  ) {
    this.leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
    this.redis = redis;
    this.prefix = o.prefix ?? 'spatia:';
    this.self = JSON.stringify(o.node);
    this.nodes = [o.node.url];
  }

  /** Connects (throws a SpatiaError when Redis does not answer) and starts renewing. */
  static async open(o: WorldDirectoryOptions): Promise<WorldDirectory> {
    const leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
    if (!Number.isInteger(leaseMs) || leaseMs < 500 || leaseMs > 600_000)
      throw new SpatiaError('INVALID_ARGUMENT', `leaseMs must be an integer in 500..600000, got ${leaseMs}`);
    const redis = new Redis(o.url, {
      lazyConnect: true,
      // Commands fail fast while Redis is away: a join then gets an error, not a hang.
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      enableOfflineQueue: false,
    });
    redis.on('error', (e: Error) => o.logger.warn({ err: e.message }, 'redis connection error'));
    try {
      await redis.connect();
      await redis.ping();
    } catch (e) {
      redis.disconnect();
      throw new SpatiaError('CLUSTER', `cannot reach Redis at ${o.url}: ${(e as Error).message}`);
    }
    const directory = new WorldDirectory(o, redis);
    await directory.heartbeat();
    directory.timer = setInterval(() => void directory.renew(), Math.max(100, Math.floor(leaseMs / 3)));
    return directory;
  }

  private key(worldId: string): string {
    return `${this.prefix}world:${worldId}`;
  }

  private nodeKey(id: string): string {
    return `${this.prefix}node:${id}`;
  }

  /** The URLs of the nodes alive as of the last renewal round (clients fail over to them). */
  liveNodes(): readonly string[] {
    return this.nodes;
  }

  /** Says this node is alive (for a lease's length) and reads which others are. */
  private async heartbeat(): Promise<void> {
    await this.redis.set(this.nodeKey(this.o.node.id), this.o.node.url, 'PX', this.leaseMs);
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', this.nodeKey('*'), 'COUNT', 100);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0' && keys.length < MAX_LISTED_NODES);
    const urls = keys.length > 0 ? await this.redis.mget(...keys) : [];
    this.nodes = [...new Set(urls.filter((u): u is string => typeof u === 'string'))].sort();
  }

  /** This node's address. */
  get node(): NodeAddress {
    return this.o.node;
  }

  /** The worlds this node holds leases on. */
  owned(): string[] {
    return [...this.held.keys()];
  }

  /** Milliseconds until the oldest unconfirmed lease of this node would expire (Infinity: none held). */
  leaseHeadroomMs(now = performance.now()): number {
    let least = Number.POSITIVE_INFINITY;
    for (const { until } of this.held.values()) least = Math.min(least, until - now);
    return least;
  }

  /** Takes the world's lease if it is free (or already this node's); otherwise names its owner. */
  async claim(worldId: string): Promise<Claim> {
    const key = this.key(worldId);
    const started = performance.now();
    const epoch = Number(await this.redis.eval(TAKE, 2, key, `${key}:epoch`, this.self, this.leaseMs));
    if (epoch > 0) {
      this.held.delete(worldId);
      this.confirm(worldId, started, epoch);
      this.o.logger.info({ world: worldId, node: this.o.node.id, epoch }, 'world lease taken');
      return { mine: true, epoch };
    }
    const [owner, ttl] = await Promise.all([this.redis.get(key), this.redis.pttl(key)]);
    const mine = this.held.get(worldId);
    if (owner === this.self && mine) {
      const renewed = await this.redis.eval(RENEW, 1, key, this.self, this.leaseMs);
      if (renewed === 1) {
        this.confirm(worldId, started, mine.epoch);
        return { mine: true, epoch: mine.epoch };
      }
    }
    if (owner === null) return this.claim(worldId); // expired between the two calls
    return { mine: false, owner: parseOwner(owner), leaseMs: Math.max(0, ttl) };
  }

  /** Gives a world's lease up (after its last commit), so the next node asked takes it at once. */
  async release(worldId: string): Promise<void> {
    if (!this.held.delete(worldId)) return;
    try {
      await this.redis.eval(RELEASE, 1, this.key(worldId), this.self);
      this.o.logger.info({ world: worldId }, 'world lease released');
    } catch (e) {
      // It expires on its own within leaseMs.
      this.o.logger.warn({ err: (e as Error).message, world: worldId }, 'world lease release failed');
    }
  }

  /** One renewal round: every held lease is renewed, or given up as lost; the node list refreshed. */
  private async renew(): Promise<void> {
    if (this.closed) return;
    await this.heartbeat().catch(() => {});
    if (this.held.size === 0) return;
    const started = performance.now();
    const worlds = [...this.held.keys()];
    let results: ([Error | null, unknown] | null)[] | null = null;
    try {
      const batch = this.redis.pipeline();
      for (const w of worlds) batch.eval(RENEW, 1, this.key(w), this.self, this.leaseMs);
      results = await batch.exec();
    } catch {
      results = null;
    }
    const now = performance.now();
    worlds.forEach((w, i) => {
      if (!this.held.has(w)) return; // released meanwhile
      const r = results?.[i];
      const lease = this.held.get(w)!;
      if (r && r[0] === null && r[1] === 1) {
        this.confirm(w, started, lease.epoch);
        // Held but not served (a join that never completed, a commit that never flushed): given back.
        if (!this.serving(w) && now - lease.since > this.leaseMs) void this.release(w);
      } else if (r && r[0] === null) {
        this.lose(w, 'another node holds its lease now');
      } else if (now >= lease.until) {
        this.lose(w, 'its lease could not be renewed before it could expire (Redis unreachable)');
      }
    });
  }

  /** Marks a lease confirmed as of `at` (it holds for a lease's length from then, less the margin). */
  private confirm(worldId: string, at: number, epoch: number): void {
    const since = this.held.get(worldId)?.since ?? at;
    this.held.set(worldId, { until: at + this.leaseMs * (1 - SAFETY_MARGIN_SHARE), since, epoch });
  }

  private lose(worldId: string, why: string): void {
    this.held.delete(worldId);
    this.o.logger.warn({ world: worldId, why }, 'world lease lost: no longer serving it');
    this.onLost(worldId, why);
  }

  /** Stops renewing, releases every lease (the worlds were committed by the caller), disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await Promise.all(this.owned().map((w) => this.release(w)));
    await this.redis.del(this.nodeKey(this.o.node.id)).catch(() => 0);
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

function parseOwner(raw: string): NodeAddress {
  try {
    const v = JSON.parse(raw) as Partial<NodeAddress>;
    if (typeof v.id === 'string' && typeof v.url === 'string') return { id: v.id, url: v.url };
  } catch {
    // fall through
  }
  throw new SpatiaError('CLUSTER', `the directory holds a malformed owner record: ${raw.slice(0, 80)}`);
}
