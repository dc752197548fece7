import path from 'node:path';
import { defineConfig } from 'vite';

const root = import.meta.dirname;

/** The preload as one CommonJS file: a sandboxed preload can require `electron` and nothing of ours. */
export default defineConfig({
  build: {
    outDir: path.resolve(root, '../dist/electron'),
    emptyOutDir: false,
    sourcemap: false,
    minify: false,
    lib: { entry: path.resolve(root, 'preload.ts'), formats: ['cjs'], fileName: () => 'preload.cjs' },
    rolldownOptions: { external: ['electron'] },
  },
  logLevel: 'warn',
});
