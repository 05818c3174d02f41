/** A 5×7 pixel font (digits, A–Z, a little punctuation) for labels drawn into images. */

// 5×7 glyphs, one row per byte (bit 4 = leftmost column).
const GLYPHS: Record<string, readonly number[]> = {
  '0': [14, 17, 19, 21, 25, 17, 14],
  '1': [4, 12, 4, 4, 4, 4, 14],
  '2': [14, 17, 1, 2, 4, 8, 31],
  '3': [31, 2, 4, 2, 1, 17, 14],
  '4': [2, 6, 10, 18, 31, 2, 2],
  '5': [31, 16, 30, 1, 1, 17, 14],
  '6': [6, 8, 16, 30, 17, 17, 14],
  '7': [31, 1, 2, 4, 8, 8, 8],
  '8': [14, 17, 17, 14, 17, 17, 14],
  '9': [14, 17, 17, 15, 1, 2, 12],
  A: [14, 17, 17, 31, 17, 17, 17],
  B: [30, 17, 17, 30, 17, 17, 30],
  C: [14, 17, 16, 16, 16, 17, 14],
  D: [28, 18, 17, 17, 17, 18, 28],
  E: [31, 16, 16, 30, 16, 16, 31],
  F: [31, 16, 16, 30, 16, 16, 16],
  G: [14, 17, 16, 23, 17, 17, 15],
  H: [17, 17, 17, 31, 17, 17, 17],
  I: [14, 4, 4, 4, 4, 4, 14],
  J: [7, 2, 2, 2, 2, 18, 12],
  K: [17, 18, 20, 24, 20, 18, 17],
  L: [16, 16, 16, 16, 16, 16, 31],
  M: [17, 27, 21, 21, 17, 17, 17],
  N: [17, 17, 25, 21, 19, 17, 17],
  O: [14, 17, 17, 17, 17, 17, 14],
  P: [30, 17, 17, 30, 16, 16, 16],
  Q: [14, 17, 17, 17, 21, 18, 13],
  R: [30, 17, 17, 30, 20, 18, 17],
  S: [15, 16, 16, 14, 1, 1, 30],
  T: [31, 4, 4, 4, 4, 4, 4],
  U: [17, 17, 17, 17, 17, 17, 14],
  V: [17, 17, 17, 17, 17, 10, 4],
  W: [17, 17, 17, 21, 21, 21, 10],
  X: [17, 17, 10, 4, 10, 17, 17],
  Y: [17, 17, 10, 4, 4, 4, 4],
  Z: [31, 1, 2, 4, 8, 16, 31],
  '-': [0, 0, 0, 31, 0, 0, 0],
  '.': [0, 0, 0, 0, 0, 12, 12],
  ':': [0, 12, 12, 0, 12, 12, 0],
  '(': [2, 4, 8, 8, 8, 4, 2],
  ')': [8, 4, 2, 2, 2, 4, 8],
  '/': [1, 1, 2, 4, 8, 16, 16],
  ' ': [0, 0, 0, 0, 0, 0, 0],
  '=': [0, 0, 31, 0, 31, 0, 0],
  ',': [0, 0, 0, 0, 12, 4, 8],
  '%': [24, 25, 2, 4, 8, 19, 3],
};

/** Rows of a character's glyph (bit 4 = leftmost column); unknown characters draw blank. */
export function glyphOf(ch: string): readonly number[] {
  return GLYPHS[ch.toUpperCase()] ?? GLYPHS[' ']!;
}

/**
 * Draws `text` into a packed RGB image at (x, y) (top-left), each font pixel `scale`×`scale`,
 * with a one-pixel dark outline so it reads on any background.
 */
export function drawText(
  rgb: Uint8Array,
  width: number,
  height: number,
  x: number,
  y: number,
  text: string,
  color: readonly [number, number, number],
  scale = 1,
): void {
  const put = (px: number, py: number, c: readonly number[]): void => {
    if (px < 0 || py < 0 || px >= width || py >= height) return;
    const o = (py * width + px) * 3;
    rgb[o] = c[0]!;
    rgb[o + 1] = c[1]!;
    rgb[o + 2] = c[2]!;
  };
  for (const pass of [0, 1]) {
    let cx = Math.round(x);
    for (const ch of text) {
      const g = glyphOf(ch);
      for (let row = 0; row < 7; row++)
        for (let col = 0; col < 5; col++) {
          if (!((g[row]! >> (4 - col)) & 1)) continue;
          for (let sy = 0; sy < scale; sy++)
            for (let sx = 0; sx < scale; sx++) {
              const px = cx + col * scale + sx;
              const py = Math.round(y) + row * scale + sy;
              if (pass === 0)
                for (const [dx, dy] of [
                  [-1, 0],
                  [1, 0],
                  [0, -1],
                  [0, 1],
                ] as const)
                  put(px + dx, py + dy, [20, 20, 20]);
              else put(px, py, color);
            }
        }
      cx += 6 * scale;
    }
  }
}
