import { WorldStore } from '../../server/store/worldStore.ts';

/** `tsx test/helpers/openStore.ts LOCATION`: opens a world store (creating or checking its schema) and closes it. */
new WorldStore(process.argv[2]!).close();
process.stdout.write('opened\n');
