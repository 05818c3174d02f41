// The layering rules of ARCHITECTURE.md ("Layout") and STYLE.md ("For this repo") as checks that fail
// the build. Paths are relative to the folder being cruised (the repo root, or a fixture root in
// test/layering/), so every `path` below is anchored with `^`.
//
// Rules are written so that one bad import breaks as few rules as possible: a builtin import is
// reported by the *-node-builtins rule only; the others skip `core` dependencies.

/** Files the docs call pure (typed arrays in, typed arrays out; no I/O, clocks or sockets). */
const PURE_DOCUMENTED = [
  '^server/memory/',
  '^server/metrics/',
  '^server/scene/(?!loadScene[.]ts$)',
  // the director side of world/ and the edit log (World and PlayerSession are not pure: they hold stores and queues)
  '^server/world/(director|clipLoop|trajectory|editLog)[.]ts$',
  '^server/eval/',
  '^server/models/onnx/(sampler|conditioning)[.]ts$',
];

/**
 * Modules the pure path reaches that are pure today and must stay so for the path to be pure:
 * the model contract, the procedural model (conditioning.ts and sampler.ts import from it) and the
 * local models the eval builds.
 * Checking them with the same rule makes "pure" hold transitively, not just for direct imports.
 */
const PURE_SUPPORT = [
  '^server/models/worldModel[.]ts$',
  '^server/models/procedural/',
  '^server/models/localModels[.]ts$',
  '^server/models/sceneModel[.]ts$',
];

const PURE = [...PURE_DOCUMENTED, ...PURE_SUPPORT];

/** Entry points (composition roots): they wire things up and nothing imports them. */
const ENTRY_POINTS = ['^server/main[.]ts$', '^server/tools/(?!cli[.]ts$)', '^server/remote/workerMain[.]ts$'];

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    // --- shared/: the contract both sides compile against -------------------------------------
    {
      name: 'shared-no-node-builtins',
      severity: 'error',
      comment:
        'shared/ runs in the browser and the server alike: no node: builtins (ARCHITECTURE.md, shared/).',
      from: { path: '^shared/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'shared-only-shared-and-zod',
      severity: 'error',
      comment: 'shared/ imports only shared/ and zod: never server/, client/ or another package.',
      from: { path: '^shared/' },
      to: { dependencyTypesNot: ['core'], pathNot: ['^shared/', '(^|/)node_modules/zod/'] },
    },

    // --- client / server separation -----------------------------------------------------------
    {
      name: 'client-not-to-server',
      severity: 'error',
      comment: 'The client talks to the server over the protocol in shared/protocol/, never by import.',
      from: { path: '^client/' },
      to: { path: '^server/' },
    },
    {
      name: 'not-to-client',
      severity: 'error',
      comment: 'Nothing outside client/ (and its tests) imports client code: not server/, shared/ or tools/.',
      from: { pathNot: ['^client/', '^test/'] },
      to: { path: '^client/' },
    },
    {
      name: 'client-no-node-builtins',
      severity: 'error',
      comment: 'client/ runs in the browser: no node: builtins.',
      from: { path: '^client/' },
      to: { dependencyTypes: ['core'] },
    },

    // --- the pure data path -------------------------------------------------------------------
    {
      name: 'pure-no-node-builtins',
      severity: 'error',
      comment:
        'The data path is pure (memory, metrics, scene except loadScene.ts, director, clip loop, trajectories, ' +
        'eval, onnx sampler and conditioning, and the models they use): no files, sockets, ' +
        'processes or threads. Do the I/O at the edge and pass the data in.',
      from: { path: PURE },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'memory-only-shared-and-memory',
      severity: 'error',
      comment: 'server/memory/ is the core data path: it imports only shared/ and server/memory/.',
      from: { path: '^server/memory/' },
      to: { dependencyTypesNot: ['core'], pathNot: ['^server/memory/', '^shared/'] },
    },
    {
      name: 'pure-only-pure',
      severity: 'error',
      comment:
        'Pure modules import only pure modules, shared/ and zod, so the path stays pure transitively ' +
        '(no net/, store/, io/, remote/, tools/, loadScene.ts, registry.ts, socket.io, sharp, ' +
        'better-sqlite3, pino, onnxruntime-node ...).',
      from: { path: PURE, pathNot: '^server/memory/' },
      to: { dependencyTypesNot: ['core'], pathNot: [...PURE, '^shared/', '(^|/)node_modules/zod/'] },
    },
    {
      name: 'memory-internals-private',
      severity: 'error',
      comment:
        'The voxel record layout (voxelChunk.ts: STRIDE, CONF, offsets) stays inside server/memory/ ' +
        '(and the store, which persists chunks); everything else goes through the SpatialMemory facade.',
      from: { pathNot: ['^server/memory/', '^server/store/', '^test/'] },
      to: { path: '^server/memory/voxelChunk[.]ts$' },
    },

    // --- data flows one way: input -> path -> condition -> generate -> update -> stream ----------
    {
      name: 'scene-only-scene-and-shared',
      severity: 'error',
      comment:
        'Ground-truth scenes sit below everything else: server/scene/ imports only scene/, shared/ and zod.',
      from: { path: '^server/scene/' },
      to: { dependencyTypesNot: ['core'], pathNot: ['^server/scene/', '^shared/', '(^|/)node_modules/zod/'] },
    },
    {
      name: 'models-not-up-the-chain',
      severity: 'error',
      comment:
        'Models are stateless: everything they use arrives in the request. They never import the ' +
        'director/world, the store, eval, io or the entry points.',
      from: { path: '^server/models/' },
      to: { path: ['^server/(world|store|eval|io|tools)/', '^server/main[.]ts$', '^server/config[.]ts$'] },
    },
    {
      name: 'store-not-up-the-chain',
      severity: 'error',
      comment:
        'The store persists memory and sessions; it knows nothing of worlds, players, models or entry points.',
      from: { path: '^server/store/' },
      to: { path: ['^server/(world|models|remote|eval|tools)/', '^server/main[.]ts$'] },
    },
    {
      name: 'net-only-from-main',
      severity: 'error',
      comment:
        'server/net/ is the socket edge: only server/main.ts (and tests/benches) import it. world/, ' +
        'store/, models/ and the rest never do; net imports them.',
      from: { pathNot: ['^server/net/', '^server/main[.]ts$', '^test/'] },
      to: { path: '^server/net/' },
    },

    // --- composition roots --------------------------------------------------------------------
    {
      name: 'entry-points-not-imported',
      severity: 'error',
      comment:
        'server/main.ts, server/tools/*.ts (except the cli.ts helper) and server/remote/workerMain.ts ' +
        'are composition roots: nothing but tests imports them.',
      from: { pathNot: '^test/' },
      to: { path: ENTRY_POINTS },
    },
    {
      name: 'cli-helper-only-from-entry-points',
      severity: 'error',
      comment: 'server/tools/cli.ts (argument and path helpers) is for entry points only.',
      from: { pathNot: [...ENTRY_POINTS, '^tools/', '^test/'] },
      to: { path: '^server/tools/cli[.]ts$' },
    },
    {
      name: 'not-to-test',
      severity: 'error',
      comment: 'Runtime code never imports test code or fixtures.',
      from: { pathNot: '^test/' },
      to: { path: '^test/' },
    },

    // --- graph hygiene ------------------------------------------------------------------------
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Data flows one way; a cycle means a module reaches back up the chain.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'This import resolves to nothing on disk (a typo, or a package missing from package.json).',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-non-package-json',
      severity: 'error',
      comment: 'This imports a package that package.json does not declare; declare it.',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'not-to-dev-dep',
      severity: 'error',
      comment:
        'Runtime code (server/, client/, shared/) imports a devDependency: it will be missing after ' +
        '`npm ci --omit=dev`. Make it a dependency, or keep the import to types only.',
      from: { path: '^(server|client|shared)/' },
      to: {
        dependencyTypes: ['npm-dev'],
        dependencyTypesNot: ['type-only'],
        pathNot: '(^|/)node_modules/@types/',
      },
    },
  ],
  options: {
    doNotFollow: { path: '(^|/)node_modules/' },
    exclude: { path: ['^test/fixtures/', '^client/(dist|public)/'] },
    moduleSystems: ['es6', 'cjs'],
    tsPreCompilationDeps: true,
    detectProcessBuiltinModuleCalls: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
      extensions: ['.ts', '.mts', '.mjs', '.js', '.json'],
    },
    skipAnalysisNotInRules: true,
  },
};
