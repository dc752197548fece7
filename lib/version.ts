import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function readVersion(): string {
  // The package.json sits two levels up from both lib/ (sources) and dist/lib/ (build).
  for (const candidate of ['../package.json', '../../package.json']) {
    try {
      const pkg = require(candidate) as { name?: string; version?: string };
      if (pkg.name === 'farmlink' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0';
}

/** This build's version, from package.json. */
export const AGENT_VERSION = readVersion();
