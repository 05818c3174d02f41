import type { SceneMaterial } from '../../scene/sceneFormat.ts';

type Rgb = [number, number, number];

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
}

const m = (texture: SceneMaterial['texture'], color: Rgb, color2: Rgb, scale: number): SceneMaterial => ({
  texture,
  color,
  color2,
  scale,
});

const STYLES: Record<string, Omit<WorldStyle, 'name'>> = {
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
    propDensity: 0.55,
  },
  desert: {
    indoor: false,
    floor: m('noise', [215, 185, 130], [185, 150, 100], 0.8),
    wall: m('noise', [200, 160, 110], [170, 130, 90], 1),
    ceiling: m('solid', [200, 200, 200], [200, 200, 200], 1),
    props: [m('noise', [190, 150, 100], [150, 110, 70], 2), m('stripes', [90, 140, 70], [60, 100, 50], 8)],
    entities: [m('solid', [120, 80, 50], [120, 80, 50], 1)],
    sky: { zenith: [70, 130, 220], horizon: [230, 215, 190] },
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
    propDensity: 0.3,
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
    propDensity: 0.35,
  },
};

const KEYWORDS: [RegExp, string][] = [
  [/\b(forest|wood(s|land)?|park|garden|jungle|meadow)\b/i, 'forest'],
  [/\b(desert|dune|beach|sand|canyon)\b/i, 'desert'],
  [/\b(snow|ice|winter|arctic|glacier)\b/i, 'snow'],
  [/\b(dungeon|cave|crypt|cellar|castle hall)\b/i, 'dungeon'],
  [/\b(room|house|home|office|indoor|interior|apartment|hall|museum|library|kitchen)\b/i, 'room'],
];

/** The style a prompt asks for (first matching keyword; an outdoor courtyard otherwise). */
export function styleFromPrompt(prompt: string): WorldStyle {
  const name = KEYWORDS.find(([re]) => re.test(prompt))?.[1] ?? 'courtyard';
  return { name, ...STYLES[name]! };
}
