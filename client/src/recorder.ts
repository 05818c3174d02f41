import {
  BufferTarget,
  CanvasSource,
  getFirstEncodableVideoCodec,
  Mp4OutputFormat,
  Output,
  QUALITY_HIGH,
  WebMOutputFormat,
} from 'mediabunny';

/**
 * Records what the player sees (the view canvas) in the browser: WebCodecs encodes, Mediabunny
 * muxes. H.264 in MP4 where the browser can encode it, otherwise VP9/VP8 in WebM.
 */
export class ViewRecorder {
  private output: Output | undefined;
  private source: CanvasSource | undefined;
  private started = 0;
  private lastTimestamp = -1;
  private busy = false;
  mime = '';
  frames = 0;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly fps = 30,
  ) {}

  get recording(): boolean {
    return this.output !== undefined;
  }

  /** Seconds recorded so far. */
  get seconds(): number {
    return this.recording ? (performance.now() - this.started) / 1000 : 0;
  }

  async start(): Promise<void> {
    if (this.output) return;
    const size = { width: this.canvas.width & ~1, height: this.canvas.height & ~1 };
    const mp4 = await getFirstEncodableVideoCodec(['avc'], size);
    const codec = mp4 ?? (await getFirstEncodableVideoCodec(['vp9', 'vp8'], size));
    if (!codec) throw new Error('this browser cannot encode video (WebCodecs)');
    this.mime = mp4 ? 'video/mp4' : 'video/webm';
    this.output = new Output({
      format: mp4 ? new Mp4OutputFormat() : new WebMOutputFormat(),
      target: new BufferTarget(),
    });
    this.source = new CanvasSource(this.canvas, {
      codec,
      quality: QUALITY_HIGH,
      sizeChangeBehavior: 'contain',
    });
    this.output.addVideoTrack(this.source, { frameRate: this.fps });
    await this.output.start();
    this.started = performance.now();
    this.lastTimestamp = -1;
    this.frames = 0;
  }

  /** Call after each render: adds the canvas at most `fps` times a second (frames are dropped while the encoder is busy). */
  capture(): void {
    if (!this.source || this.busy) return;
    const t = (performance.now() - this.started) / 1000;
    if (this.lastTimestamp >= 0 && t - this.lastTimestamp < 1 / this.fps) return;
    this.lastTimestamp = t;
    this.busy = true;
    void this.source
      .add(t, 1 / this.fps)
      .then(() => {
        this.frames++;
      })
      .finally(() => {
        this.busy = false;
      });
  }

  /** Finishes the file and returns it. */
  async stop(): Promise<Blob> {
    const output = this.output;
    if (!output) throw new Error('not recording');
    while (this.busy) await new Promise((r) => setTimeout(r, 10));
    this.source?.close();
    await output.finalize();
    const buffer = (output.target as BufferTarget).buffer;
    this.output = undefined;
    this.source = undefined;
    if (!buffer) throw new Error('the recording is empty');
    return new Blob([buffer], { type: this.mime });
  }
}
