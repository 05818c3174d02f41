import { SpatiaError, type SpatiaErrorCode } from '../errors.ts';

/** Growable little-endian byte writer. */
export class BinaryWriter {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(x: number): void {
    this.reserve(1);
    this.view.setUint8(this.length, x);
    this.length += 1;
  }
  u32(x: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, x, true);
    this.length += 4;
  }
  i32(x: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, x, true);
    this.length += 4;
  }
  f64(x: number): void {
    this.reserve(8);
    this.view.setFloat64(this.length, x, true);
    this.length += 8;
  }
  /** Raw bytes of a typed array (platform order: little-endian on every target we run on). */
  bytes(a: ArrayBufferView): void {
    const b = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  /** Length-prefixed UTF-8 string. */
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u32(b.length);
    this.bytes(b);
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Bounds-checked little-endian reader; every overrun throws `code` with the offset. */
export class BinaryReader {
  private readonly view: DataView;
  offset = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly code: SpatiaErrorCode,
    private readonly what: string,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get remaining(): number {
    return this.buf.length - this.offset;
  }
  private need(n: number): void {
    if (!(n >= 0) || this.offset + n > this.buf.length) {
      throw new SpatiaError(
        this.code,
        `${this.what} is truncated: needs ${n} bytes at offset ${this.offset}, has ${this.remaining}`,
      );
    }
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.offset++);
  }
  u32(): number {
    this.need(4);
    const x = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return x;
  }
  i32(): number {
    this.need(4);
    const x = this.view.getInt32(this.offset, true);
    this.offset += 4;
    return x;
  }
  f64(): number {
    this.need(8);
    const x = this.view.getFloat64(this.offset, true);
    this.offset += 8;
    return x;
  }
  /** A copy of the next n bytes. */
  bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.buf.slice(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }
  string(): string {
    const n = this.u32();
    return new TextDecoder().decode(this.bytes(n));
  }
}
