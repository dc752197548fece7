import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import semver from 'semver';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * `npm ci` on the Node the README asks for is quiet and runs no dependency's install script: every
 * package accepts that Node, and every install script has a recorded decision in package.json's
 * allowScripts. The install itself is npm's own, run as a dry run on copies of package.json and the
 * lock (no network, no node_modules touched); the native add-ons whose scripts are skipped are then
 * loaded for real.
 */

const root = path.resolve(import.meta.dirname, '..');
const execFileAsync = promisify(execFile);

interface PackageJson {
  engines?: { node?: string; npm?: string };
  allowScripts?: Record<string, boolean>;
}
interface LockEntry {
  version?: string;
  engines?: { node?: string } | string[];
  hasInstallScript?: boolean;
}

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as PackageJson;
const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, LockEntry>;
};
const locked = Object.entries(lock.packages).filter(([location]) => location !== '');
/** A lock location's package name: what follows its last node_modules/ (scoped names included). */
const nameAt = (location: string) => location.slice(location.lastIndexOf('node_modules/') + 'node_modules/'.length);

const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) fs.rmSync(dir, { recursive: true, force: true });
});

describe('npm ci', () => {
  it('prints nothing on this Node: no engine warnings, no install scripts awaiting review', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-install-'));
    scratch.push(dir);
    for (const file of ['package.json', 'package-lock.json', '.npmrc']) {
      if (fs.existsSync(path.join(root, file))) fs.copyFileSync(path.join(root, file), path.join(dir, file));
    }
    // npm's own variables (set when this runs under `npm test`) would leak the outer command's
    // settings into this one; the user's and the machine's npmrc still apply, as for a person.
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));
    // An empty cache and --offline: the lock alone must be enough, so nothing is downloaded. The
    // update notifier speaks about the person's npm, not about this project.
    const { stdout, stderr } = await execFileAsync(
      'npm',
      [
        'ci',
        '--dry-run',
        '--offline',
        '--no-audit',
        '--no-fund',
        '--no-update-notifier',
        '--loglevel=warn',
        `--cache=${path.join(dir, 'cache')}`,
      ],
      { cwd: dir, env },
    );
    expect(stderr).toBe('');
    expect(stdout).toMatch(/^added \d+ packages/m);
  });

  it('accepts, in every locked package, the oldest Node that package.json promises', () => {
    const oldest = semver.minVersion(pkg.engines?.node ?? '')?.version;
    expect(oldest, 'package.json engines.node').toBeDefined();
    const refusing = locked
      .map(([location, entry]) => ({
        location,
        version: entry.version,
        node: Array.isArray(entry.engines) ? undefined : entry.engines?.node,
      }))
      // npm's engine check includes prereleases the same way.
      .filter(({ node }) => node !== undefined && !semver.satisfies(oldest!, node, { includePrerelease: true }))
      .map(({ location, version, node }) => `${nameAt(location)}@${version} wants node ${node}`);
    expect(refusing).toEqual([]);
  });

  it('is the Node and npm the README asks for, and this npm honours allowScripts', async () => {
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    const asked = /You need Node\.js (\d+\.\d+) or newer and npm (\d+\.\d+) or newer/.exec(readme);
    expect(asked, 'README: "You need Node.js X.Y or newer and npm X.Y or newer"').not.toBeNull();
    expect(pkg.engines).toEqual({ node: `>=${asked![1]}`, npm: `>=${asked![2]}` });
    // An older npm ignores allowScripts and runs every install script (Electron's downloads its
    // binary); it also warns about package.json's engines, but this says why.
    const { stdout } = await execFileAsync('npm', ['--version']);
    expect(
      semver.satisfies(stdout.trim(), pkg.engines!.npm!),
      `npm ${stdout.trim()} runs install scripts that allowScripts denies`,
    ).toBe(true);
  });

  it("runs no install script (so never downloads Electron's binary): each one is denied by name", () => {
    const withScripts = [
      ...new Set(locked.filter(([, entry]) => entry.hasInstallScript).map(([location]) => nameAt(location))),
    ].sort();
    // Name-only entries: a pinned `pkg@x.y.z` entry never matches a lock without resolved URLs
    // (omit-lockfile-registry-resolved), and npm would run the script after a notice.
    expect(Object.fromEntries(withScripts.map((name) => [name, pkg.allowScripts?.[name]]))).toEqual(
      Object.fromEntries(withScripts.map((name) => [name, false])),
    );
  });
});

describe('native add-ons installed without their install scripts', () => {
  const require = createRequire(path.join(root, 'package.json'));

  it('lmdb opens a database with its prebuilt binary', async () => {
    const { open } = await import('lmdb');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-lmdb-'));
    scratch.push(dir);
    const db = open<{ n: number }, string>({ path: path.join(dir, 'db') });
    await db.put('k', { n: 1 });
    expect(db.get('k')).toEqual({ n: 1 });
    await db.close();
  });

  it('msgpackr and ws get their native accelerators (msgpackr-extract, bufferutil), not the JavaScript fallbacks', () => {
    // msgpackr as lmdb loads it (it is lmdb's dependency, not ours).
    const msgpackr = createRequire(require.resolve('lmdb'))('msgpackr') as { isNativeAccelerationEnabled: boolean };
    expect(msgpackr.isNativeAccelerationEnabled).toBe(true);
    // bufferutil falls back to a JavaScript implementation when no binary loads; the binary's
    // functions are native.
    const bufferutil = require('bufferutil') as { mask: (...args: unknown[]) => void };
    expect(Function.prototype.toString.call(bufferutil.mask)).toContain('[native code]');
  });
});
