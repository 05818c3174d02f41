import { Counter, Gauge, Registry } from 'prom-client';

/** What a node's /metrics reads when Prometheus scrapes it. */
export interface NodeMetricsSource {
  players(): number;
  worlds(): number;
  /** Clustered: world leases this node holds, and seconds until the least recently confirmed would lapse. */
  leases?(): { held: number; headroomS: number };
  /** Clustered remote workers: clip jobs waiting in the queue. */
  queueWaiting?(): Promise<number>;
}

/**
 * Prometheus metrics of one server node (text format at /metrics): players, worlds in RAM, frames
 * sent (a counter: frames/s is its rate), and in clustered mode its leases and the clip queue's depth.
 */
export class NodeMetrics {
  private readonly registry = new Registry();
  private readonly frames: Counter;

  constructor(source: NodeMetricsSource) {
    const registers = [this.registry];
    // A gauge read from `read` at each scrape.
    const gauge = (name: string, help: string, read: () => number | Promise<number>): void => {
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          this.set(await read());
        },
      });
    };
    gauge('spatia_players', 'Players (and spectators) connected to this node.', source.players);
    gauge('spatia_worlds_loaded', 'Worlds this node holds in RAM.', source.worlds);
    this.frames = new Counter({
      name: 'spatia_frames_sent_total',
      help: 'Frames sent to viewers.',
      registers,
    });
    const leases = source.leases;
    if (leases) {
      gauge(
        'spatia_world_leases',
        'World leases this node holds in the cluster directory.',
        () => leases().held,
      );
      gauge(
        'spatia_lease_headroom_seconds',
        'Seconds until the least recently confirmed lease of this node would be given up unrenewed.',
        () => leases().headroomS,
      );
    }
    const waiting = source.queueWaiting;
    if (waiting)
      gauge('spatia_clip_queue_waiting', 'Clip jobs waiting for a worker in the cluster queue.', () =>
        waiting().catch(() => Number.NaN),
      );
  }

  frameSent(): void {
    this.frames.inc();
  }

  /** The text exposition Prometheus scrapes. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
