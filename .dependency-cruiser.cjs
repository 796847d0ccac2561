/**
 * The layering of docs/architecture.md, checked by dependency-cruiser in `npm test`
 * (test/architecture.test.ts runs it; `npx depcruise src` shows the same).
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'space-imports-nothing-of-ours',
      comment: 'src/space is the domain: it imports nothing else of ours',
      severity: 'error',
      from: { path: '^src/space/' },
      to: { path: '^src/', pathNot: '^src/space/' },
    },
    {
      name: 'space-is-pure',
      comment: 'src/space does no I/O: no Node built-in modules',
      severity: 'error',
      from: { path: '^src/space/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'protocol-is-pure',
      comment: 'src/protocol is the wire format: it may use the domain, nothing else of ours, and no I/O',
      severity: 'error',
      from: { path: '^src/protocol/' },
      to: { path: '^src/', pathNot: '^src/(protocol|space)/' },
    },
    {
      name: 'protocol-does-no-io',
      severity: 'error',
      from: { path: '^src/protocol/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'sim-is-pure',
      comment: 'src/sim (the model, the runner, the scenario schema) imports only itself, protocol, space and the Clock type',
      severity: 'error',
      from: { path: '^src/sim/' },
      to: { path: '^src/', pathNot: '^src/(sim|protocol|space)/|^src/clock\\.ts$' },
    },
    {
      name: 'sim-does-no-io',
      comment: 'the only I/O of src/sim is reading a scenario file, in scenario.ts',
      severity: 'error',
      from: { path: '^src/sim/', pathNot: '^src/sim/scenario\\.ts$' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'server-never-imports-sim-or-load',
      comment: 'the server reaches a replay only through ReplayView, and never the load generator',
      severity: 'error',
      from: { path: '^src/server/' },
      to: { path: '^src/(sim|load|replay|report|dashboards|cluster|cli)/' },
    },
    {
      name: 'only-cli-imports-cli',
      comment: 'src/cli is the top: nothing imports it',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
