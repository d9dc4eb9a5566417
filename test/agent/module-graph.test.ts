// The agent never loads @kubernetes/client-node at run time: importing it costs about 77 MB
// of RSS (its KubeConfig pulls in every generated API and model), and the agent has its own
// client (src/kube/client). Walks the compiled JavaScript the way Node resolves it, from
// `kst`'s entry through the agent command, following static imports and re-exports and
// the dynamic imports with a literal specifier (the agent's own lazy loads); `import type`
// is erased by tsc, so it never appears here. Fails naming the chain that reaches it.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from '@jest/globals';

const root = resolve(new URL('../../', import.meta.url).pathname);
const dist = join(root, 'dist', 'src');
const FORBIDDEN = '@kubernetes/client-node';

/** Specifiers a module imports: `import ... from 'x'`, `import 'x'`, `export ... from 'x'`, `import('x')`. */
export function importsOf(code: string): string[] {
  const out: string[] = [];
  const patterns = [/^\s*(?:import|export)\s[^;'"]*?\sfrom\s*['"]([^'"]+)['"]/gm, /^\s*import\s*['"]([^'"]+)['"]/gm, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const re of patterns) for (const m of code.matchAll(re)) out.push(m[1]!);
  return out;
}

/**
 * Walks the graph from `entry`: the chain of files to the first module importing
 * `forbidden` (or undefined), and every file reached.
 */
function walk(entry: string, forbidden: string, skip: (from: string, spec: string) => boolean): { chain?: string[]; reached: Set<string> } {
  const parent = new Map<string, string | undefined>([[entry, undefined]]);
  const queue = [entry];
  const chain = (file: string) => {
    const out = [];
    for (let f: string | undefined = file; f; f = parent.get(f)) out.unshift(relative(root, f));
    return out;
  };
  while (queue.length) {
    const file = queue.shift()!;
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (skip(file, spec)) continue;
      if (spec === forbidden || spec.startsWith(`${forbidden}/`)) return { chain: [...chain(file), spec], reached: new Set(parent.keys()) };
      // Other packages are not ours to walk (none of the agent's imports client-node).
      if (!spec.startsWith('.')) continue;
      const next = resolve(dirname(file), spec);
      if (!existsSync(next)) throw new Error(`${relative(root, file)} imports ${spec}, which does not exist in dist/ (run tsc first)`);
      if (parent.has(next)) continue;
      parent.set(next, file);
      queue.push(next);
    }
  }
  return { reached: new Set(parent.keys()) };
}

// main.js loads every command lazily; the agent process only ever loads its own.
const onlyTheAgentCommand = (from: string, spec: string) => from === join(dist, 'cli', 'main.js') && spec.startsWith('./commands/') && spec !== './commands/agent.js';

describe("the agent's module graph", () => {
  it(`never reaches ${FORBIDDEN} (static and dynamic imports from kst agent)`, () => {
    const { chain, reached } = walk(join(dist, 'cli', 'main.js'), FORBIDDEN, onlyTheAgentCommand);
    // The walk went through the agent's lazy load into everything it runs.
    for (const file of ['cli/commands/agent.js', 'agent/run.js', 'kube/watcher.js', 'kube/lease.js', 'kube/client/client.js']) expect(reached).toContain(join(dist, file));
    expect(chain === undefined ? 'no chain' : `agent loads ${FORBIDDEN} through: ${chain.join(' -> ')}`).toBe('no chain');
  });

  it('the walk does find a chain where one exists (the lab area, whose API server is checked against client-node)', () => {
    const { chain } = walk(join(dist, 'lab', 'index.js'), FORBIDDEN, () => false);
    expect(chain?.at(-1)).toBe(FORBIDDEN);
    expect(chain![0]).toBe('dist/src/lab/index.js');
    expect(importsOf("import { a } from './x.js';\nexport * from './y.js';\nconst m = await import('./z.js');\nimport './side.js';")).toEqual(['./x.js', './y.js', './side.js', './z.js']);
  });
});
