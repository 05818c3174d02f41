import type { CameraState } from '../../shared/camera/controller.ts';
import type { WorldStats } from '../../shared/protocol/events.ts';

/** The memory seen from above (sent by the server every few seconds) with the player's trail. */
export class Minimap {
  private readonly ctx: CanvasRenderingContext2D;
  private map: { image: ImageBitmap; minX: number; minZ: number; pxPerM: number } | undefined;
  private readonly path: [number, number][] = [];
  private camera: CameraState | undefined;

  constructor(private readonly canvas: HTMLCanvasElement) {
    this.ctx = canvas.getContext('2d')!;
  }

  setMap(m: NonNullable<WorldStats['map']>): void {
    void createImageBitmap(new Blob([m.png as BlobPart], { type: 'image/png' })).then((image) => {
      this.map?.image.close();
      this.map = { image, minX: m.minX, minZ: m.minZ, pxPerM: m.pxPerM };
      this.draw();
    });
  }

  trail(camera: CameraState): void {
    this.camera = camera;
    const lastPoint = this.path.at(-1);
    const [x, , z] = camera.position;
    if (!lastPoint || Math.hypot(lastPoint[0] - x, lastPoint[1] - z) > 0.1) {
      this.path.push([x, z]);
      if (this.path.length > 2000) this.path.shift();
    }
    this.draw();
  }

  private draw(): void {
    const { ctx, canvas } = this;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const cam = this.camera;
    if (!cam) return;
    // Player-centred, north (−z) up, 12 px per metre.
    const s = 12;
    const toPx = (x: number, z: number): [number, number] => [
      canvas.width / 2 + (x - cam.position[0]) * s,
      canvas.height / 2 + (z - cam.position[2]) * s,
    ];
    if (this.map) {
      const m = this.map;
      const [x0, y0] = toPx(m.minX, m.minZ);
      ctx.globalAlpha = 0.9;
      ctx.drawImage(m.image, x0, y0, (m.image.width / m.pxPerM) * s, (m.image.height / m.pxPerM) * s);
      ctx.globalAlpha = 1;
    }
    ctx.strokeStyle = '#ffd24a';
    ctx.lineWidth = 2;
    ctx.beginPath();
    this.path.forEach(([x, z], i) => {
      const [px, py] = toPx(x, z);
      if (i === 0) ctx.moveTo(px, py);
      else ctx.lineTo(px, py);
    });
    ctx.stroke();
    const [cx, cy] = toPx(cam.position[0], cam.position[2]);
    ctx.fillStyle = '#ff4a4a';
    ctx.beginPath();
    ctx.arc(cx, cy, 4, 0, Math.PI * 2);
    ctx.fill();
    ctx.strokeStyle = '#ff4a4a';
    ctx.beginPath();
    ctx.moveTo(cx, cy);
    ctx.lineTo(cx + Math.sin(cam.yaw) * 14, cy - Math.cos(cam.yaw) * 14);
    ctx.stroke();
  }
}
