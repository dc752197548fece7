import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * Integration tests spawn the built CLI and open the built panel: build all of it once per run
 * (the same three steps as `npm run build`) so nothing they run is stale.
 */
export default function setup(): void {
  // Two projects (integration, netns) name this setup; one build per run is enough.
  if (process.env.FARMLINK_TEST_BUILT === '1') return;
  process.env.FARMLINK_TEST_BUILT = '1';
  const root = path.resolve(import.meta.dirname, '..');
  const run = (script: string, ...args: string[]) =>
    execFileSync(process.execPath, [path.join(root, 'node_modules', script), ...args], { cwd: root, stdio: 'inherit' });
  run('typescript/bin/tsc', '-p', 'tsconfig.build.json');
  run('vite/bin/vite.js', 'build', '--config', 'renderer/vite.config.ts');
  run('vite/bin/vite.js', 'build', '--config', 'electron/vite.preload.config.ts');
}
