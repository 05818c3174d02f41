import { check, SpatiaError } from '../../shared/errors.ts';
import { CHUNK_VOXELS, CONF, CR, OBS, PX, PY, PZ, STRIDE, SUB_STEPS } from './voxelChunk.ts';
import { VoxelGrid, validateVoxelSize } from './voxelGrid.ts';

/**
 * PLY export/import of the memory. Export writes binary little-endian PLY with double x/y/z and
 * uchar red/green/blue, which MeshLab, CloudCompare and Open3D all read, plus Spatia's own per-voxel
 * fields (observations, confidence, 16-bit colour) that those tools ignore or show as scalars, so a
 * round trip through Spatia is exact. Import reads ASCII and binary (either endianness) PLY with any
 * property layout; points without Spatia's fields are fused as one observation each.
 */

/** Serialises every voxel of the grid as a binary PLY point cloud. O(voxels). */
export function exportPly(grid: VoxelGrid): Uint8Array {
  const n = grid.voxelCount;
  const header =
    'ply\nformat binary_little_endian 1.0\ncomment Spatia spatial memory\n' +
    `comment voxel_size ${grid.voxelSizeM}\n` +
    `element vertex ${n}\n` +
    'property double x\nproperty double y\nproperty double z\n' +
    'property uchar red\nproperty uchar green\nproperty uchar blue\n' +
    'property ushort observations\nproperty uchar confidence\n' +
    'property ushort red16\nproperty ushort green16\nproperty ushort blue16\n' +
    'end_header\n';
  const headerBytes = new TextEncoder().encode(header);
  const stride = 24 + 3 + 2 + 1 + 6;
  const out = new Uint8Array(headerBytes.length + n * stride);
  out.set(headerBytes);
  const dv = new DataView(out.buffer);
  let o = headerBytes.length;
  const step = grid.positionStepM;
  for (const c of grid.chunks()) {
    const ox = c.cx * grid.chunkSizeM;
    const oy = c.cy * grid.chunkSizeM;
    const oz = c.cz * grid.chunkSizeM;
    const d = c.data;
    for (let s = 0, r = 0; s < c.count; s++, r += STRIDE) {
      dv.setFloat64(o, ox + d[r + PX]! * step, true);
      dv.setFloat64(o + 8, oy + d[r + PY]! * step, true);
      dv.setFloat64(o + 16, oz + d[r + PZ]! * step, true);
      for (let ch = 0; ch < 3; ch++) {
        const c16 = d[r + CR + ch]!;
        out[o + 24 + ch] = Math.min(255, (c16 + 128) >>> 8);
        dv.setUint16(o + 30 + ch * 2, c16, true);
      }
      dv.setUint16(o + 27, d[r + OBS]!, true);
      out[o + 29] = d[r + CONF]! & 255; // the confidence, without the authored flag
      o += stride;
    }
  }
  return out;
}

type PlyType = 'char' | 'uchar' | 'short' | 'ushort' | 'int' | 'uint' | 'float' | 'double';
const TYPE_ALIASES: Record<string, PlyType> = {
  char: 'char',
  int8: 'char',
  uchar: 'uchar',
  uint8: 'uchar',
  short: 'short',
  int16: 'short',
  ushort: 'ushort',
  uint16: 'ushort',
  int: 'int',
  int32: 'int',
  uint: 'uint',
  uint32: 'uint',
  float: 'float',
  float32: 'float',
  double: 'double',
  float64: 'double',
};
const TYPE_SIZE: Record<PlyType, number> = {
  char: 1,
  uchar: 1,
  short: 2,
  ushort: 2,
  int: 4,
  uint: 4,
  float: 4,
  double: 8,
};

interface PlyProperty {
  name: string;
  type: PlyType;
  /** For list properties: the type of the count. */
  countType?: PlyType;
}
interface PlyElement {
  name: string;
  count: number;
  props: PlyProperty[];
}

/** Points read from a PLY file, before they touch a grid. */
export interface PlyPoints {
  readonly count: number;
  readonly positions: Float64Array;
  /** 0–255 per channel, in 1/256 steps when the file carries 16-bit colour. */
  readonly colors: Float64Array;
  readonly observations?: Uint16Array;
  readonly confidence?: Uint8Array;
  /** From a `comment voxel_size` line, when present. */
  readonly voxelSizeM?: number;
}

function fail(message: string): never {
  throw new SpatiaError('PLY_FORMAT', `invalid PLY: ${message}`);
}

/** Parses a PLY file's vertices (positions, colours, Spatia fields). Throws PLY_FORMAT on any defect. */
export function parsePly(bytes: Uint8Array): PlyPoints {
  check(bytes instanceof Uint8Array, 'PLY_FORMAT', 'invalid PLY: expected bytes');
  // The header is ASCII and ends at the first "end_header" line.
  const probe = new TextDecoder('latin1').decode(bytes.subarray(0, Math.min(bytes.length, 65536)));
  if (!probe.startsWith('ply')) fail('missing "ply" magic');
  const endMatch = /end_header\r?\n/.exec(probe);
  if (!endMatch) fail('no end_header within the first 64 KiB');
  const headerEnd = endMatch.index + endMatch[0].length;
  const lines = probe.slice(0, endMatch.index).split(/\r?\n/);
  let format = '';
  let voxelSizeM: number | undefined;
  const elements: PlyElement[] = [];
  for (const raw of lines.slice(1)) {
    const parts = raw.trim().split(/\s+/);
    const kw = parts[0];
    if (kw === 'format') format = parts[1] ?? '';
    else if (kw === 'comment' && parts[1] === 'voxel_size') voxelSizeM = Number(parts[2]);
    else if (kw === 'element') {
      const count = Number(parts[2]);
      if (!Number.isInteger(count) || count < 0) fail(`bad element count "${parts[2]}"`);
      elements.push({ name: parts[1] ?? '', count, props: [] });
    } else if (kw === 'property') {
      const el = elements.at(-1);
      if (!el) fail('property before any element');
      if (parts[1] === 'list') {
        const countType = TYPE_ALIASES[parts[2] ?? ''];
        const type = TYPE_ALIASES[parts[3] ?? ''];
        if (!countType || !type) fail(`unknown list types in "${raw}"`);
        el.props.push({ name: parts[4] ?? '', type, countType });
      } else {
        const type = TYPE_ALIASES[parts[1] ?? ''];
        if (!type) fail(`unknown property type in "${raw}"`);
        el.props.push({ name: parts[2] ?? '', type });
      }
    }
  }
  if (format !== 'ascii' && format !== 'binary_little_endian' && format !== 'binary_big_endian') {
    fail(`unsupported format "${format}"`);
  }
  const vertexIndex = elements.findIndex((e) => e.name === 'vertex');
  if (vertexIndex < 0) fail('no vertex element');
  const vertex = elements[vertexIndex]!;
  const propIndex = (name: string): number => vertex.props.findIndex((p) => p.name === name && !p.countType);
  const ix = propIndex('x');
  const iy = propIndex('y');
  const iz = propIndex('z');
  if (ix < 0 || iy < 0 || iz < 0) fail('vertex element lacks x, y or z');
  const colorIdx = [propIndex('red'), propIndex('green'), propIndex('blue')];
  const color16Idx = [propIndex('red16'), propIndex('green16'), propIndex('blue16')];
  const obsIdx = propIndex('observations');
  const confIdx = propIndex('confidence');
  const n = vertex.count;
  if (n > 200_000_000) fail(`too many vertices (${n})`);
  const positions = new Float64Array(n * 3);
  const colors = new Float64Array(n * 3).fill(128);
  const observations = obsIdx >= 0 ? new Uint16Array(n) : undefined;
  const confidence = confIdx >= 0 ? new Uint8Array(n) : undefined;
  const values = new Float64Array(vertex.props.length);
  const colorScale = colorIdx.map((i) =>
    (i >= 0 && vertex.props[i]!.type === 'float') || (i >= 0 && vertex.props[i]!.type === 'double') ? 255 : 1,
  );
  const store = (v: number): void => {
    positions[v * 3] = values[ix]!;
    positions[v * 3 + 1] = values[iy]!;
    positions[v * 3 + 2] = values[iz]!;
    for (let ch = 0; ch < 3; ch++) {
      const i16 = color16Idx[ch]!;
      const i8 = colorIdx[ch]!;
      if (i16 >= 0) colors[v * 3 + ch] = values[i16]! / 256;
      else if (i8 >= 0) colors[v * 3 + ch] = Math.max(0, Math.min(255, values[i8]! * colorScale[ch]!));
    }
    if (observations) observations[v] = values[obsIdx]!;
    if (confidence) confidence[v] = values[confIdx]!;
    if (!Number.isFinite(values[ix]!) || !Number.isFinite(values[iy]!) || !Number.isFinite(values[iz]!)) {
      fail(`vertex ${v} has a non-finite coordinate`);
    }
  };

  if (format === 'ascii') {
    const text = new TextDecoder('latin1').decode(bytes.subarray(headerEnd));
    const tokens = text.split(/\s+/).filter((t) => t.length > 0);
    let t = 0;
    const next = (): number => {
      if (t >= tokens.length) fail('file ends before all elements were read (truncated)');
      const x = Number(tokens[t++]);
      if (Number.isNaN(x)) fail(`non-numeric value "${tokens[t - 1]}"`);
      return x;
    };
    for (let e = 0; e < elements.length; e++) {
      const el = elements[e]!;
      for (let r = 0; r < el.count; r++) {
        for (let p = 0; p < el.props.length; p++) {
          const prop = el.props[p]!;
          if (prop.countType) {
            const len = next();
            for (let j = 0; j < len; j++) next();
            values[p] = 0;
          } else values[p] = next();
        }
        if (e === vertexIndex) store(r);
      }
      if (e === vertexIndex) break;
    }
  } else {
    const le = format === 'binary_little_endian';
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let o = headerEnd;
    const read = (type: PlyType): number => {
      const size = TYPE_SIZE[type];
      if (o + size > bytes.length)
        fail(`file ends at byte ${bytes.length} before all elements were read (truncated)`);
      let x: number;
      switch (type) {
        case 'char':
          x = dv.getInt8(o);
          break;
        case 'uchar':
          x = dv.getUint8(o);
          break;
        case 'short':
          x = dv.getInt16(o, le);
          break;
        case 'ushort':
          x = dv.getUint16(o, le);
          break;
        case 'int':
          x = dv.getInt32(o, le);
          break;
        case 'uint':
          x = dv.getUint32(o, le);
          break;
        case 'float':
          x = dv.getFloat32(o, le);
          break;
        case 'double':
          x = dv.getFloat64(o, le);
          break;
      }
      o += size;
      return x;
    };
    for (let e = 0; e <= vertexIndex; e++) {
      const el = elements[e]!;
      const fixed = el.props.every((p) => !p.countType);
      const rowSize = el.props.reduce((a, p) => a + TYPE_SIZE[p.type], 0);
      if (fixed && o + rowSize * el.count > bytes.length) {
        fail(
          `file ends at byte ${bytes.length} but ${el.count} ${el.name} rows need ${o + rowSize * el.count} (truncated)`,
        );
      }
      for (let r = 0; r < el.count; r++) {
        for (let p = 0; p < el.props.length; p++) {
          const prop = el.props[p]!;
          if (prop.countType) {
            const len = read(prop.countType);
            for (let j = 0; j < len; j++) read(prop.type);
            values[p] = 0;
          } else values[p] = read(prop.type);
        }
        if (e === vertexIndex) store(r);
      }
    }
  }
  return { count: n, positions, colors, observations, confidence, voxelSizeM };
}

/**
 * Builds a grid from a PLY file. The voxel size comes from the file's `comment voxel_size` (Spatia's
 * exports) or `voxelSizeM`. Points sharing a voxel are merged by observation-weighted means.
 */
export function importPly(bytes: Uint8Array, voxelSizeM?: number): VoxelGrid {
  const pts = parsePly(bytes);
  const vs = voxelSizeM ?? pts.voxelSizeM;
  if (vs === undefined) fail('no voxel size: pass one, or use a file with a "comment voxel_size" line');
  validateVoxelSize(vs);
  const grid = new VoxelGrid(vs);
  const step = grid.positionStepM;
  const perChunk = CHUNK_VOXELS * SUB_STEPS;
  for (let i = 0; i < pts.count; i++) {
    // Exact integer position in quantisation steps, then split into chunk / local parts.
    const q = [0, 1, 2].map((a) => Math.round(pts.positions[i * 3 + a]! / step));
    if (q.some((x) => !Number.isSafeInteger(x))) fail(`vertex ${i} is outside the addressable world`);
    const ch = q.map((x) => Math.floor(x / perChunk));
    const chunk = grid.ensureChunk(ch[0]!, ch[1]!, ch[2]!);
    const local = q.map((x, a) => x - ch[a]! * perChunk);
    const lv = local.map((x) => Math.floor(x / SUB_STEPS));
    const slot = chunk.findOrInsert((lv[0]! << 10) | (lv[1]! << 5) | lv[2]!);
    const add = pts.observations ? Math.max(1, pts.observations[i]!) : 1;
    const d = chunk.data;
    const r = slot * STRIDE;
    const old = d[r + OBS]!;
    const w = old + add;
    for (let a = 0; a < 3; a++) {
      const c16 = pts.colors[i * 3 + a]! * 256;
      d[r + CR + a] = old === 0 ? Math.round(c16) : Math.round((d[r + CR + a]! * old + c16 * add) / w);
      d[r + PX + a] = old === 0 ? local[a]! : Math.round((d[r + PX + a]! * old + local[a]! * add) / w);
    }
    d[r + OBS] = Math.min(65535, w);
    const conf = pts.confidence ? pts.confidence[i]! : 64;
    d[r + CONF] = old === 0 ? conf : Math.max(d[r + CONF]!, conf);
  }
  grid.revision++;
  return grid;
}
