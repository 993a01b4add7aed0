/**
 * Benchmark dispatcher: `npm run bench -- <name> [args…]` runs bench/<name>.ts's `main(args)`.
 * Each benchmark runs bounded loops on loopback and prints its numbers; nothing is asserted.
 */
const BENCHES: Readonly<Record<string, () => Promise<{ main: (args: readonly string[]) => Promise<void> }>>> = {
  proxy: () => import('./proxy.js'),
  descriptor: () => import('./descriptor.js'),
  failover: () => import('./failover.js'),
  availability: () => import('./availability.js'),
};

const [name, ...args] = process.argv.slice(2);
const load = name === undefined ? undefined : BENCHES[name];
if (load === undefined) {
  console.error(`usage: npm run bench -- <${Object.keys(BENCHES).join('|')}> [args…]`);
  process.exitCode = 2;
} else {
  await (await load()).main(args);
}
