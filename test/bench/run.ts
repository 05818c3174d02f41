import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { benchDirector } from './directorBench.ts';
import { type BenchResult, formatTable } from './harness.ts';
import { benchMemory } from './memoryBench.ts';
import { benchRealData } from './realDataBench.ts';
import { benchStore } from './storeBench.ts';

/** `npm run bench -- [--json FILE] [--quick]`: prints a table; --json also writes the results. */
async function main(): Promise<void> {
  let args: ReturnType<
    typeof parseArgs<{
      options: { json: { type: 'string' }; quick: { type: 'boolean' }; help: { type: 'boolean' } };
    }>
  >;
  try {
    args = parseArgs({
      options: { json: { type: 'string' }, quick: { type: 'boolean' }, help: { type: 'boolean' } },
    });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\nusage: npm run bench -- [--json FILE] [--quick]\n`);
    process.exit(2);
  }
  if (args.values.help) {
    process.stdout.write('usage: npm run bench -- [--json FILE] [--quick]\n');
    return;
  }
  const quick = args.values.quick ?? false;
  const results: BenchResult[] = [
    ...benchMemory({ quick }),
    ...(await benchDirector({ quick })),
    // The world store on PostgreSQL beside SQLite (where PostgreSQL can be started).
    ...(await benchStore({ quick })),
    // Real captured data, beside Open3D's TSDF (where ../shared/data is present; skipped with --quick).
    ...(quick ? [] : await benchRealData()),
  ];
  process.stdout.write(`\n${formatTable(results)}\n`);
  if (args.values.json) {
    const json = results.map(({ note: _note, ...r }) => r);
    writeFileSync(args.values.json, `${JSON.stringify(json, null, 2)}\n`);
    process.stdout.write(`wrote ${args.values.json}\n`);
  }
}

await main();
