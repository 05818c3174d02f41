import type { SceneMaterial } from '../../scene/sceneFormat.ts';

export type Rgb = [number, number, number];

/** How the procedural model dresses what it invents, chosen from the prompt. */
export interface WorldStyle {
  readonly name: string;
  readonly indoor: boolean;
  readonly floor: SceneMaterial;
  readonly wall: SceneMaterial;
  readonly ceiling: SceneMaterial;
  readonly props: readonly SceneMaterial[];
  readonly entities: readonly SceneMaterial[];
  readonly sky: { zenith: Rgb; horizon: Rgb };
  /** Share of 3 m cells that hold a prop. */
  readonly propDensity: number;
  /** Trees (a trunk and a crown) among the props: their materials; absent where the style has none. */
  readonly trees?: { readonly trunk: SceneMaterial; readonly crown: SceneMaterial };
  /**
   * What the props are, drawn uniformly per prop (a kind listed twice comes twice as often); trees
   * come on top of these where the style has them (half the props).
   */
  readonly kinds: readonly PropKind[];
  /** Materials of the built props: houses' roofs and doors, fences, lamp poles, rocks. */
  readonly structures: {
    readonly roof: SceneMaterial;
    readonly door: SceneMaterial;
    readonly fence: SceneMaterial;
    readonly pole: SceneMaterial;
    readonly rock: SceneMaterial;
  };
  /** Lights are on (night, neon): windows and lamps glow instead of reflecting the day. */
  readonly lit: boolean;
  /** The prompt's modifiers applied, in order (snowy, autumn, night, …). */
  readonly modifiers: readonly string[];
}

/**
 * Props the model invents: a crate (box), a pillar (cylinder), a ball, a rock (a sphere sunk in the
 * ground), a street lamp, a fence panel, a small house with a door, windows and a roof.
 */
export type PropKind = 'crate' | 'pillar' | 'ball' | 'rock' | 'lamp' | 'fence' | 'house';

const m = (texture: SceneMaterial['texture'], color: Rgb, color2: Rgb, scale: number): SceneMaterial => ({
  texture,
  color,
  color2,
  scale,
});

const SNOW_ROOF: Rgb = [232, 236, 244];

/** Windows and lamp heads: the sky's reflection by day, warm light when the style's lights are on. */
export function lightMaterials(lit: boolean): { window: SceneMaterial; lampHead: SceneMaterial } {
  return lit
    ? {
        window: m('solid', [255, 215, 130], [255, 215, 130], 1),
        lampHead: m('solid', [255, 235, 170], [255, 235, 170], 1),
      }
    : {
        window: m('solid', [120, 160, 195], [120, 160, 195], 1),
        lampHead: m('solid', [225, 225, 215], [225, 225, 215], 1),
      };
}

/** Built props' materials most places share (a style may give its own). */
const STRUCTURES: WorldStyle['structures'] = {
  roof: m('tiles', [120, 60, 45], [70, 40, 35], 3),
  door: m('wood', [110, 70, 40], [70, 45, 25], 6),
  fence: m('stripes', [150, 110, 70], [80, 55, 35], 8),
  pole: m('solid', [55, 58, 62], [55, 58, 62], 1),
  rock: m('noise', [130, 128, 120], [85, 84, 80], 3),
};

type StyleLook = Omit<WorldStyle, 'name' | 'modifiers' | 'lit'>;

const STYLES: Record<string, StyleLook> = {
  courtyard: {
    indoor: false,
    floor: m('tiles', [170, 165, 150], [95, 90, 85], 1),
    wall: m('brick', [160, 75, 55], [205, 200, 190], 1.5),
    ceiling: m('solid', [200, 200, 200], [200, 200, 200], 1),
    props: [
      m('brick', [150, 80, 60], [210, 205, 195], 2),
      m('noise', [140, 140, 135], [95, 95, 100], 3),
      m('wood', [140, 90, 50], [90, 55, 30], 5),
    ],
    entities: [m('solid', [220, 50, 40], [220, 50, 40], 1), m('stripes', [40, 150, 220], [20, 60, 120], 6)],
    sky: { zenith: [90, 140, 210], horizon: [200, 220, 240] },
    kinds: ['crate', 'pillar', 'ball'],
    structures: STRUCTURES,
    propDensity: 0.35,
  },
  forest: {
    indoor: false,
    floor: m('noise', [70, 110, 45], [110, 90, 50], 1.5),
    wall: m('noise', [60, 90, 50], [40, 60, 35], 2),
    ceiling: m('solid', [200, 200, 200], [200, 200, 200], 1),
    props: [
      m('stripes', [90, 60, 40], [60, 40, 25], 20),
      m('noise', [50, 120, 40], [110, 170, 60], 4),
      m('noise', [120, 115, 105], [80, 80, 75], 3),
    ],
    entities: [m('solid', [200, 160, 60], [200, 160, 60], 1), m('checker', [240, 240, 240], [40, 40, 40], 6)],
    sky: { zenith: [110, 160, 220], horizon: [210, 225, 235] },
    kinds: ['rock', 'rock', 'fence', 'ball'],
    structures: STRUCTURES,
    propDensity: 0.55,
    trees: {
      trunk: m('stripes', [90, 60, 40], [60, 40, 25], 20),
      crown: m('noise', [50, 120, 40], [90, 150, 50], 4),
    },
  },
  desert: {
    indoor: false,
    floor: m('noise', [215, 185, 130], [185, 150, 100], 0.8),
    wall: m('noise', [200, 160, 110], [170, 130, 90], 1),
    ceiling: m('solid', [200, 200, 200], [200, 200, 200], 1),
    props: [m('noise', [190, 150, 100], [150, 110, 70], 2), m('stripes', [90, 140, 70], [60, 100, 50], 8)],
    entities: [m('solid', [120, 80, 50], [120, 80, 50], 1)],
    sky: { zenith: [70, 130, 220], horizon: [230, 215, 190] },
    kinds: ['rock', 'rock', 'pillar', 'house'],
    structures: {
      ...STRUCTURES,
      roof: m('noise', [190, 150, 105], [160, 120, 80], 2),
      rock: m('noise', [200, 150, 100], [160, 110, 70], 2),
    },
    propDensity: 0.15,
  },
  snow: {
    indoor: false,
    floor: m('noise', [235, 238, 245], [200, 210, 225], 1),
    wall: m('noise', [220, 225, 235], [180, 190, 210], 1),
    ceiling: m('solid', [200, 200, 200], [200, 200, 200], 1),
    props: [m('noise', [40, 80, 50], [230, 235, 240], 3), m('stripes', [90, 60, 40], [60, 40, 25], 20)],
    entities: [m('solid', [200, 40, 40], [200, 40, 40], 1)],
    sky: { zenith: [150, 170, 200], horizon: [225, 230, 240] },
    kinds: ['rock', 'ball', 'house'],
    structures: { ...STRUCTURES, roof: m('noise', SNOW_ROOF, [205, 214, 228], 2) },
    propDensity: 0.3,
    trees: {
      trunk: m('stripes', [90, 60, 40], [60, 40, 25], 20),
      crown: m('noise', [40, 80, 50], [230, 235, 240], 3),
    },
  },
  beach: {
    indoor: false,
    floor: m('noise', [225, 205, 160], [200, 180, 135], 0.8),
    wall: m('noise', [210, 190, 150], [180, 160, 120], 1),
    ceiling: m('solid', [200, 200, 200], [200, 200, 200], 1),
    props: [m('stripes', [230, 80, 60], [245, 240, 230], 6), m('noise', [150, 140, 120], [110, 100, 90], 3)],
    entities: [m('solid', [240, 200, 60], [240, 200, 60], 1)],
    sky: { zenith: [60, 140, 230], horizon: [200, 225, 245] },
    kinds: ['rock', 'ball', 'lamp'],
    structures: STRUCTURES,
    propDensity: 0.12,
  },
  ruins: {
    indoor: false,
    floor: m('tiles', [140, 135, 120], [90, 88, 80], 1.2),
    wall: m('brick', [150, 140, 120], [100, 95, 85], 2),
    ceiling: m('solid', [200, 200, 200], [200, 200, 200], 1),
    props: [m('brick', [155, 145, 125], [95, 90, 80], 2), m('noise', [120, 120, 110], [80, 80, 75], 3)],
    entities: [m('solid', [200, 150, 60], [200, 150, 60], 1)],
    sky: { zenith: [100, 140, 200], horizon: [215, 215, 210] },
    kinds: ['pillar', 'pillar', 'rock', 'crate'],
    structures: { ...STRUCTURES, rock: m('noise', [150, 140, 120], [100, 95, 85], 3) },
    propDensity: 0.45,
  },
  town: {
    indoor: false,
    floor: m('tiles', [120, 120, 125], [80, 80, 85], 0.8),
    wall: m('brick', [170, 90, 70], [215, 205, 190], 1.5),
    ceiling: m('solid', [200, 200, 200], [200, 200, 200], 1),
    props: [m('brick', [180, 100, 75], [220, 210, 195], 2), m('stripes', [210, 200, 180], [120, 90, 70], 6)],
    entities: [m('solid', [40, 90, 200], [40, 90, 200], 1), m('solid', [220, 50, 40], [220, 50, 40], 1)],
    sky: { zenith: [90, 140, 210], horizon: [200, 220, 240] },
    kinds: ['house', 'house', 'lamp', 'fence', 'crate'],
    structures: STRUCTURES,
    propDensity: 0.4,
  },
  room: {
    indoor: true,
    floor: m('wood', [150, 105, 70], [95, 60, 35], 2),
    wall: m('stripes', [200, 190, 170], [175, 160, 140], 4),
    ceiling: m('tiles', [230, 230, 225], [150, 150, 150], 1.5),
    props: [
      m('wood', [170, 120, 70], [110, 70, 40], 6),
      m('checker', [160, 50, 50], [200, 180, 120], 8),
      m('noise', [235, 235, 230], [150, 150, 160], 4),
    ],
    entities: [m('checker', [250, 220, 30], [30, 30, 30], 6), m('stripes', [40, 160, 220], [20, 60, 120], 6)],
    sky: { zenith: [90, 140, 210], horizon: [200, 220, 240] },
    kinds: ['crate', 'pillar', 'ball'],
    structures: STRUCTURES,
    propDensity: 0.3,
  },
  dungeon: {
    indoor: true,
    floor: m('tiles', [110, 105, 100], [60, 58, 55], 1),
    wall: m('brick', [120, 110, 100], [70, 65, 60], 2),
    ceiling: m('noise', [90, 85, 80], [60, 58, 55], 1),
    props: [m('wood', [120, 80, 45], [70, 45, 25], 5), m('noise', [130, 125, 120], [80, 78, 75], 3)],
    entities: [m('solid', [230, 140, 40], [230, 140, 40], 1)],
    sky: { zenith: [30, 30, 40], horizon: [60, 60, 70] },
    kinds: ['crate', 'pillar', 'rock'],
    structures: { ...STRUCTURES, rock: m('noise', [110, 105, 100], [70, 68, 65], 3) },
    propDensity: 0.35,
  },
};

/** Place words, first match wins (the order settles "a forest cave" and the like). */
const KEYWORDS: [RegExp, string][] = [
  [/\b(dungeon|caves?|cavern|crypt|cellar|castle hall)\b/i, 'dungeon'],
  [/\b(forests?|woods?|woodland|park|garden|jungle|meadow)\b/i, 'forest'],
  [/\b(beach|coast|shore|seaside)\b/i, 'beach'],
  [/\b(deserts?|dunes?|sand|canyon)\b/i, 'desert'],
  [/\b(ruins?|ruined|ancient|temple)\b/i, 'ruins'],
  [/\b(town|city|village|street|market)\b/i, 'town'],
  [/\b(snowfield|glacier|arctic|tundra)\b/i, 'snow'],
  [/\b(room|house|home|office|indoor|interior|apartment|hall|museum|library|kitchen)\b/i, 'room'],
];

type Modifier = (s: StyleLook & { lit: boolean }) => StyleLook & { lit: boolean };

const mix = (a: Rgb, b: Rgb, t: number): Rgb => [
  Math.round(a[0] + (b[0] - a[0]) * t),
  Math.round(a[1] + (b[1] - a[1]) * t),
  Math.round(a[2] + (b[2] - a[2]) * t),
];
const scaleRgb = (a: Rgb, k: number): Rgb => [
  Math.round(a[0] * k),
  Math.round(a[1] * k),
  Math.round(a[2] * k),
];
/** A material with both colours mapped. */
const recolour = (mat: SceneMaterial, f: (c: Rgb) => Rgb): SceneMaterial => ({
  ...mat,
  color: f(mat.color as Rgb),
  color2: f((mat.color2 ?? mat.color) as Rgb),
});
/** Every material and the sky mapped by one colour function. */
const everything = <S extends StyleLook>(s: S, f: (c: Rgb) => Rgb, sky: (c: Rgb) => Rgb): S => ({
  ...s,
  floor: recolour(s.floor, f),
  wall: recolour(s.wall, f),
  ceiling: recolour(s.ceiling, f),
  props: s.props.map((p) => recolour(p, f)),
  trees: s.trees && { trunk: recolour(s.trees.trunk, f), crown: recolour(s.trees.crown, f) },
  structures: structuresMapped(s.structures, (mat) => recolour(mat, f)),
  sky: { zenith: sky(s.sky.zenith), horizon: sky(s.sky.horizon) },
});
const structuresMapped = (
  st: WorldStyle['structures'],
  f: (m: SceneMaterial) => SceneMaterial,
): WorldStyle['structures'] => ({
  roof: f(st.roof),
  door: f(st.door),
  fence: f(st.fence),
  pole: f(st.pole),
  rock: f(st.rock),
});

const SNOW: Rgb = [238, 242, 248];
const GREY: Rgb = [185, 188, 192];

/** Weather, season and time of day: each maps a place's look. */
const MODIFIERS: [RegExp, string, Modifier][] = [
  [
    /\b(snowy|snow|snowing|winter|frozen|icy)\b/i,
    'snowy',
    (s) => ({
      ...s,
      // Snow on the ground and on every crown; walls and trunks keep a little.
      floor: m('noise', SNOW, [205, 214, 228], 1),
      wall: recolour(s.wall, (c) => mix(c, SNOW, 0.35)),
      props: s.props.map((p) => recolour(p, (c) => mix(c, SNOW, 0.5))),
      trees: s.trees && { trunk: s.trees.trunk, crown: recolour(s.trees.crown, (c) => mix(c, SNOW, 0.6)) },
      structures: {
        ...s.structures,
        roof: recolour(s.structures.roof, (c) => mix(c, SNOW, 0.7)),
        rock: recolour(s.structures.rock, (c) => mix(c, SNOW, 0.65)),
      },
      sky: { zenith: [160, 178, 205], horizon: [228, 232, 240] },
    }),
  ],
  [
    /\b(autumn|autumnal|fall)\b/i,
    'autumn',
    (s) => ({
      ...s,
      floor: m('noise', [160, 95, 40], [120, 70, 35], 1.2),
      props: s.props.map((p) => recolour(p, (c) => mix(c, [200, 100, 30], 0.5))),
      trees: s.trees && { trunk: s.trees.trunk, crown: m('noise', [210, 110, 30], [170, 50, 30], 4) },
      sky: { zenith: [120, 150, 200], horizon: [235, 215, 185] },
    }),
  ],
  [
    /\b(foggy|fog|mist|misty|hazy)\b/i,
    'foggy',
    (s) =>
      everything(
        s,
        (c) => mix(c, GREY, 0.45),
        () => GREY,
      ),
  ],
  [
    /\b(rainy|rain|raining|storm|stormy|wet)\b/i,
    'rainy',
    (s) =>
      everything(
        s,
        (c) => mix(scaleRgb(c, 0.7), [70, 80, 100], 0.2),
        (c) => mix(c, [110, 115, 125], 0.7),
      ),
  ],
  [
    /\b(neon|cyberpunk)\b/i,
    'neon',
    (s) => ({
      ...everything(
        s,
        (c) => scaleRgb(c, 0.45),
        () => [20, 15, 40],
      ),
      props: [m('stripes', [255, 40, 200], [40, 10, 60], 6), m('stripes', [30, 240, 255], [10, 30, 60], 6)],
      lit: true,
    }),
  ],
  [
    /\b(night|nighttime|midnight|dark|moonlit)\b/i,
    'night',
    (s) => ({
      ...everything(
        s,
        (c) => scaleRgb(c, 0.3),
        (c) => mix(scaleRgb(c, 0.12), [10, 14, 40], 0.5),
      ),
      lit: true,
    }),
  ],
];

/**
 * The style a prompt asks for: the first place word (an outdoor courtyard when none: an unknown
 * word falls back to it), then every weather, season or time-of-day word in a fixed order (snowy,
 * autumn, foggy, rainy, neon, night), each applied to the last. "a snowy forest" is the forest
 * with snow on the ground and on the trees' crowns.
 */
export function styleFromPrompt(prompt: string): WorldStyle {
  const name = KEYWORDS.find(([re]) => re.test(prompt))?.[1] ?? 'courtyard';
  let style = { ...STYLES[name]!, lit: false };
  const modifiers: string[] = [];
  for (const [re, modifier, apply] of MODIFIERS) {
    if (!re.test(prompt)) continue;
    style = apply(style);
    modifiers.push(modifier);
  }
  return { name, modifiers, ...style };
}

/** The words styleFromPrompt understands (README), place words first. */
export const STYLE_WORDS = {
  places: Object.keys(STYLES),
  modifiers: MODIFIERS.map(([, name]) => name),
};
