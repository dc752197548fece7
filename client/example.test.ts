import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');

describe('the client API example', () => {
  it('is the same in docs/tunnel.md as in client/example.ts, which compiles', () => {
    const source = fs.readFileSync(path.join(root, 'client/example.ts'), 'utf8');
    const code = /\/\/ example:start\n([\s\S]*?)\/\/ example:end/.exec(source)?.[1];
    expect(code).toBeDefined();
    const docs = fs.readFileSync(path.join(root, 'docs/tunnel.md'), 'utf8');
    expect(docs).toContain('```ts\n' + code! + '```');
  });
});
