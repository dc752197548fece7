import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { Packager, type Configuration } from 'electron-builder';
// electron-builder's own internals, used exactly as its build does (app-builder-lib is its engine).
import { DebugLogger } from 'builder-util';
import type { FilterStats } from 'builder-util/out/fs.js';
import { validateConfiguration } from 'app-builder-lib/out/util/config/config.js';
import { convertIcon } from 'app-builder-lib/out/util/iconConverter.js';
import * as fileMatchers from 'app-builder-lib/out/fileMatcher.js';
import { PlatformPackager } from 'app-builder-lib/out/platformPackager.js';
import { FuseV1Options } from '@electron/fuses';

/**
 * The packaging configuration, checked without building anything (nothing can be downloaded here):
 * electron-builder's own loader and schema accept electron-builder.yml, every icon it names is a
 * valid image of the right size, the tray has its three states, and electron-builder's own file
 * matchers put the app's entry points — and nothing else — into app.asar.
 */

const root = path.resolve(import.meta.dirname, '..');
const configFile = path.join(root, 'electron-builder.yml');

/** Packages that vite bundles into the renderer: the main process never loads them. */
const RENDERER_PACKAGES = ['react', 'react-dom', 'zustand', 'recharts'];
const TRAY_STATES = ['connected', 'reconnecting', 'offline'] as const;

// ---- image parsing (independent of scripts/make-icons.js, which writes them) -------------------

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

interface Png {
  width: number;
  height: number;
  /** RGBA, 8 bits per channel. */
  rgba: Uint8Array;
}

/** Decodes an 8-bit RGBA PNG, checking the signature, every chunk's CRC and the IHDR. */
function decodePng(bytes: Buffer, name: string): Png {
  if (!bytes.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error(`${name}: not a PNG (bad signature)`);
  let offset = 8;
  let header: { width: number; height: number; depth: number; colorType: number; interlace: number } | undefined;
  const data: Buffer[] = [];
  let ended = false;
  while (offset < bytes.length && !ended) {
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString('latin1', offset + 4, offset + 8);
    const body = bytes.subarray(offset + 8, offset + 8 + length);
    const crc = bytes.readUInt32BE(offset + 8 + length);
    if (zlib.crc32(bytes.subarray(offset + 4, offset + 8 + length)) !== crc)
      throw new Error(`${name}: bad CRC in ${type}`);
    if (type === 'IHDR') {
      header = {
        width: body.readUInt32BE(0),
        height: body.readUInt32BE(4),
        depth: body[8]!,
        colorType: body[9]!,
        interlace: body[12]!,
      };
    } else if (type === 'IDAT') {
      data.push(body);
    } else if (type === 'IEND') {
      ended = true;
    }
    offset += 12 + length;
  }
  if (!header || offset === 8) throw new Error(`${name}: no IHDR`);
  if (!ended) throw new Error(`${name}: no IEND`);
  if (header.depth !== 8 || header.colorType !== 6 || header.interlace !== 0) {
    throw new Error(
      `${name}: expected 8-bit RGBA, not interlaced (depth ${header.depth}, colour type ${header.colorType})`,
    );
  }
  const { width, height } = header;
  const raw = zlib.inflateSync(Buffer.concat(data));
  const stride = width * 4;
  if (raw.length !== (stride + 1) * height)
    throw new Error(`${name}: image data has ${raw.length} bytes, expected ${(stride + 1) * height}`);
  const rgba = new Uint8Array(stride * height);
  for (let y = 0; y < height; y += 1) {
    const filter = raw[y * (stride + 1)]!;
    for (let x = 0; x < stride; x += 1) {
      const value = raw[y * (stride + 1) + 1 + x]!;
      const a = x >= 4 ? rgba[y * stride + x - 4]! : 0;
      const b = y > 0 ? rgba[(y - 1) * stride + x]! : 0;
      const c = x >= 4 && y > 0 ? rgba[(y - 1) * stride + x - 4]! : 0;
      const p = a + b - c;
      const paeth =
        Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c)
          ? a
          : Math.abs(p - b) <= Math.abs(p - c)
            ? b
            : c;
      const predictor = [0, a, b, (a + b) >> 1, paeth][filter];
      if (predictor === undefined) throw new Error(`${name}: bad filter ${filter} on row ${y}`);
      rgba[y * stride + x] = (value + predictor) & 0xff;
    }
  }
  return { width, height, rgba };
}

interface IcoEntry {
  size: number;
  format: 'png' | 'bmp';
}

/** Reads an ICO's directory and checks each image: a PNG of the declared size or a 32-bit DIB. */
function readIco(bytes: Buffer, name: string): IcoEntry[] {
  if (bytes.length < 6 || bytes.readUInt16LE(0) !== 0 || bytes.readUInt16LE(2) !== 1)
    throw new Error(`${name}: not an ICO`);
  const count = bytes.readUInt16LE(4);
  const entries: IcoEntry[] = [];
  for (let i = 0; i < count; i += 1) {
    const at = 6 + i * 16;
    const width = bytes[at] || 256;
    const height = bytes[at + 1] || 256;
    const length = bytes.readUInt32LE(at + 8);
    const offset = bytes.readUInt32LE(at + 12);
    if (width !== height) throw new Error(`${name}: entry ${i} is not square`);
    if (offset + length > bytes.length) throw new Error(`${name}: entry ${i} runs past the end of the file`);
    const body = bytes.subarray(offset, offset + length);
    if (body.subarray(0, 8).equals(PNG_SIGNATURE)) {
      const png = decodePng(body, `${name} [${width}]`);
      if (png.width !== width || png.height !== height)
        throw new Error(`${name}: entry says ${width}, its PNG is ${png.width}×${png.height}`);
      entries.push({ size: width, format: 'png' });
    } else {
      const dibWidth = body.readInt32LE(4);
      const dibHeight = body.readInt32LE(8);
      const bits = body.readUInt16LE(14);
      const maskStride = Math.ceil(width / 32) * 4;
      if (body.readUInt32LE(0) !== 40 || dibWidth !== width || dibHeight !== height * 2 || bits !== 32) {
        throw new Error(`${name}: entry ${i} is neither a PNG nor a 32-bit DIB of ${width}×${height}`);
      }
      if (length < 40 + width * height * 4 + maskStride * height) throw new Error(`${name}: entry ${i} is truncated`);
      entries.push({ size: width, format: 'bmp' });
    }
  }
  return entries;
}

const read = (relative: string) => fs.readFileSync(path.join(root, relative));
const pngSize = (relative: string) => {
  const png = decodePng(read(relative), relative);
  return [png.width, png.height];
};
const alphaAt = (png: Png, x: number, y: number) => png.rgba[(y * png.width + x) * 4 + 3];
/** The most frequent fully opaque colour, as #rrggbb. */
function dominantColour(png: Png): string {
  const counts = new Map<string, number>();
  for (let i = 0; i < png.rgba.length; i += 4) {
    if (png.rgba[i + 3] !== 255) continue;
    const hex = `#${[png.rgba[i]!, png.rgba[i + 1]!, png.rgba[i + 2]!].map((v) => v.toString(16).padStart(2, '0')).join('')}`;
    counts.set(hex, (counts.get(hex) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'none';
}

// ---- the configuration, as electron-builder loads it -------------------------------------------

interface FuseOptions {
  runAsNode?: boolean;
  enableCookieEncryption?: boolean;
  enableNodeOptionsEnvironmentVariable?: boolean;
  enableNodeCliInspectArguments?: boolean;
  enableEmbeddedAsarIntegrityValidation?: boolean;
  onlyLoadAppFromAsar?: boolean;
  grantFileProtocolExtraPrivileges?: boolean;
}

/** getMainFileMatchers and getNodeModuleFileMatcher are internal (not in the .d.ts) but exported. */
interface InternalFileMatchers {
  getMainFileMatchers(
    appDir: string,
    destination: string,
    macroExpander: (pattern: string) => string,
    platformSpecificBuildOptions: object,
    platformPackager: { info: Packager },
    outDir: string,
    isElectronCompile: boolean,
  ): fileMatchers.FileMatcher[];
  getNodeModuleFileMatcher(
    appDir: string,
    destination: string,
    macroExpander: (pattern: string) => string,
    platformSpecificBuildOptions: object,
    packager: Packager,
  ): fileMatchers.FileMatcher;
}
const internals = fileMatchers as unknown as InternalFileMatchers;

/** PlatformPackager.generateFuseConfig is private in the .d.ts; it reads only its argument. */
interface InternalFuses {
  generateFuseConfig: (fuses: FuseOptions) => Promise<Partial<Record<FuseV1Options, boolean>>>;
}

const same = (pattern: string) => pattern;
const fakeStat = (isDirectory: boolean, moduleFullFilePath?: string) =>
  ({ isDirectory: () => isDirectory, ...(moduleFullFilePath ? { moduleFullFilePath } : {}) }) as unknown as FilterStats;

let packager: Packager;
let config: Configuration;
let raw: Record<string, unknown>;
let tmp: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'farmlink-packaging-'));
  raw = YAML.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  // What `electron-builder --config electron-builder.yml` does before building: load the file,
  // merge the defaults, check package.json (with extraMetadata) and validate against scheme.json.
  packager = new Packager({ projectDir: root, config: configFile });
  await packager.validateConfig();
  config = packager.config;
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('electron-builder.yml', () => {
  it('parses, and electron-builder loads and validates it with its own schema', () => {
    expect(raw.appId).toBe('com.farmlink.desktop');
    expect(config.appId).toBe('com.farmlink.desktop');
    expect(config.productName).toBe('FarmLink');
    expect(config.directories).toEqual({ output: 'release', buildResources: 'build' });
    expect(config.asar).toBe(true);
    expect(packager.metadata.main).toBe('dist/electron/main.js');
  });

  it('is checked by a validator that really rejects mistakes', async () => {
    const logger = new DebugLogger(false);
    const misspelledFuse = {
      ...config,
      electronFuses: { ...(config.electronFuses as FuseOptions), runAsnode: false },
    } as Configuration;
    await expect(validateConfiguration(misspelledFuse, logger)).rejects.toThrow(
      /Invalid configuration object[\s\S]*configuration\.electronFuses/,
    );
    const badTarget = { ...config, nsis: { ...config.nsis, oneClick: 'no' } } as unknown as Configuration;
    await expect(validateConfiguration(badTarget, logger)).rejects.toThrow(
      /Invalid configuration object[\s\S]*configuration\.nsis/,
    );
    await expect(validateConfiguration(config, logger)).resolves.toBeUndefined();
  });

  it('pins the installed Electron and flips the release fuses', () => {
    const installed = (
      JSON.parse(fs.readFileSync(path.join(root, 'node_modules/electron/package.json'), 'utf8')) as { version: string }
    ).version;
    expect(config.electronVersion).toBe(installed);
    expect(config.electronFuses).toEqual({
      runAsNode: false,
      enableCookieEncryption: true,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
      // The window loads app://panel/ (electron/panel-protocol.ts): nothing needs file:// to fetch, run
      // service workers or reach into other file:// frames.
      grantFileProtocolExtraPrivileges: false,
    } satisfies FuseOptions);
  });

  it('turns the file:// extra privileges off in the fuse wire electron-builder writes', async () => {
    // The packager's own translation of electronFuses into @electron/fuses' wire positions, as it runs
    // right before signing: a key it does not know would be dropped here without a word.
    const { generateFuseConfig } = PlatformPackager.prototype as unknown as InternalFuses;
    const wire = await generateFuseConfig(config.electronFuses as FuseOptions);
    expect(wire).toMatchObject({
      [FuseV1Options.GrantFileProtocolExtraPrivileges]: false,
      [FuseV1Options.RunAsNode]: false,
      [FuseV1Options.OnlyLoadAppFromAsar]: true,
    });
  });

  it('never publishes, and never rebuilds native modules (they ship N-API prebuilds)', () => {
    expect(raw).toHaveProperty('publish', null);
    expect(config.publish).toBeNull();
    expect(config.npmRebuild).toBe(false);
    for (const platform of ['linux-x64', 'win32-x64']) {
      expect(
        fs.existsSync(path.join(root, 'node_modules/bufferutil/prebuilds', platform, 'bufferutil.node')),
        platform,
      ).toBe(true);
    }
  });

  it('builds an assisted, per-user NSIS installer for Windows x64', () => {
    expect(config.win?.target).toEqual([{ target: 'nsis', arch: ['x64'] }]);
    expect(config.nsis).toMatchObject({
      oneClick: false,
      perMachine: false,
      allowToChangeInstallationDirectory: true,
      createDesktopShortcut: true,
      createStartMenuShortcut: true,
      shortcutName: 'FarmLink',
      runAfterFinish: true,
    });
  });

  it("registers FarmLink to start at sign-in, hidden, under the name Electron's login item uses (not built here: NSIS needs downloads)", () => {
    expect(config.nsis?.include).toBe('build/installer.nsh');
    const script = read('build/installer.nsh').toString('utf8');
    const run = 'HKCU "Software\\Microsoft\\Windows\\CurrentVersion\\Run" "${APP_ID}"';
    // Electron's app.setLoginItemSettings() names its value after the AppUserModelId, which is the appId.
    expect(config.appId).toBe('com.farmlink.desktop');
    expect(script).toContain(`WriteRegStr ${run} '"$appExe" --hidden'`);
    expect(script).toContain(`DeleteRegValue ${run}`);
    // Both only outside updates, so an update keeps the person's choice.
    expect(script.match(/\$\{ifNot\} \$\{isUpdated\}/g)).toHaveLength(2);
  });

  it('builds an AppImage and a deb for Linux x64 whose desktop entry matches Electron’s WM_CLASS', () => {
    expect(config.linux?.target).toEqual([
      { target: 'AppImage', arch: ['x64'] },
      { target: 'deb', arch: ['x64'] },
    ]);
    expect(config.linux?.category).toBe('Network');
    const entry = config.linux?.desktop?.entry ?? {};
    expect(entry).toMatchObject({ Name: 'FarmLink', Comment: expect.any(String) as string });
    // electron-builder writes `category` into Categories; the two must agree.
    expect(entry.Categories).toBe(`${config.linux?.category};`);
    // Electron takes its Linux app_id / WM_CLASS from package.json's desktopName.
    const desktopName = packager.metadata.desktopName ?? '';
    expect(desktopName).toMatch(/\.desktop$/);
    expect(entry.StartupWMClass).toBe(desktopName.replace(/\.desktop$/, ''));
    // The deb target (fpm) refuses to build without a maintainer and a homepage.
    expect(config.linux?.maintainer).toMatch(/^.+ <.+@.+>$/);
    expect(packager.metadata.homepage).toMatch(/^https:\/\//);
    expect(config.deb?.depends).toEqual(expect.arrayContaining(['libnss3', 'libgbm1']));
  });
});

describe('icons', () => {
  it('names only icons that exist and are what electron-builder expects', async () => {
    // Every icon option the configuration sets, resolved as electron-builder resolves them: against
    // the build resources folder first, then the project folder.
    const named = {
      icon: config.icon,
      'win.icon': config.win?.icon,
      'nsis.installerIcon': config.nsis?.installerIcon,
      'nsis.uninstallerIcon': config.nsis?.uninstallerIcon,
      'linux.icon': config.linux?.icon,
      'deb.icon': config.deb?.icon,
    };
    const roots = [packager.buildResourcesDir, root];
    const resolved = Object.entries(named)
      .filter((entry): entry is [string, string] => typeof entry[1] === 'string')
      .map(([option, value]) => {
        const found = roots.map((dir) => path.resolve(dir, value)).find((file) => fs.existsSync(file));
        if (!found) throw new Error(`${option}: ${value} does not exist`);
        return [option, path.relative(root, found)] as const;
      });
    expect(Object.fromEntries(resolved)).toEqual({ 'win.icon': 'build/icon.ico', 'linux.icon': 'build/icons' });
    for (const [option, file] of resolved) {
      if (file.endsWith('.ico')) {
        const entries = readIco(read(file), file);
        expect(Math.max(...entries.map((e) => e.size)), `${option}: electron-builder wants a 256×256 image`).toBe(256);
      } else if (file.endsWith('.png')) {
        expect(Math.min(...pngSize(file)), `${option}: at least 256×256`).toBeGreaterThanOrEqual(256);
      } else {
        for (const name of fs.readdirSync(path.join(root, file))) {
          const n = Number(/^(\d+)x\1\.png$/.exec(name)?.[1]);
          expect(n, `${option}: ${name} is not named NxN.png`).toBeGreaterThan(0);
          expect(pngSize(path.join(file, name)), `${file}/${name}`).toEqual([n, n]);
        }
      }
    }
    expect(readIco(read('build/icon.ico'), 'build/icon.ico').map((e) => e.size)).toEqual([
      16, 24, 32, 48, 64, 128, 256,
    ]);
    const sizes = [16, 32, 48, 64, 128, 256, 512];
    expect(fs.readdirSync(path.join(root, 'build/icons')).sort()).toEqual(sizes.map((n) => `${n}x${n}.png`).sort());
    expect(pngSize('build/icon.png')).toEqual([512, 512]);
    expect(pngSize('assets/icon.png')).toEqual([256, 256]);

    // electron-builder's own icon resolution accepts them as they are: no conversion, so its icon
    // tool (a download) is never needed.
    const ico = await convertIcon({
      sources: [config.win!.icon!],
      fallbackSources: [],
      roots,
      format: 'ico',
      outDir: tmp,
    });
    expect(ico.icons).toEqual([{ file: path.join(root, 'build/icon.ico'), size: 256 }]);
    const set = await convertIcon({
      sources: [config.linux!.icon!],
      fallbackSources: [],
      roots,
      format: 'set',
      outDir: tmp,
    });
    expect(set.icons).toEqual(
      sizes.map((size) => ({ file: path.join(root, `build/icons/${size}x${size}.png`), size })),
    );
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  it('has a tray icon for every state: PNG at 1x and @2x, and ICO', () => {
    for (const state of TRAY_STATES) {
      expect(pngSize(`assets/tray/${state}.png`), state).toEqual([16, 16]);
      expect(pngSize(`assets/tray/${state}@2x.png`), state).toEqual([32, 32]);
      expect(
        readIco(read(`assets/tray/${state}.ico`), `${state}.ico`).map((e) => e.size),
        state,
      ).toEqual([16, 24, 32, 48]);
    }
  });

  it('draws each tray state in its colour on a transparent background', () => {
    const colours = { connected: '#1f8f4e', reconnecting: '#c27c0e', offline: '#c0392b' };
    for (const state of TRAY_STATES) {
      for (const file of [`assets/tray/${state}.png`, `assets/tray/${state}@2x.png`]) {
        const png = decodePng(read(file), file);
        expect(alphaAt(png, 0, 0), file).toBe(0);
        expect(alphaAt(png, png.width - 1, png.height - 1), file).toBe(0);
        expect(alphaAt(png, png.width / 2, png.height / 2), file).toBe(255);
        expect(dominantColour(png), file).toBe(colours[state]);
      }
    }
  });

  it('are exactly what scripts/make-icons.js draws', () => {
    const out = path.join(tmp, 'icons');
    execFileSync(process.execPath, [path.join(root, 'scripts/make-icons.js'), '--out', out], { stdio: 'pipe' });
    const listed = (dir: string): string[] =>
      fs
        .readdirSync(path.join(out, dir), { recursive: true, encoding: 'utf8' })
        .filter((f) => fs.statSync(path.join(out, dir, f)).isFile());
    for (const dir of ['assets', 'build']) {
      for (const file of listed(dir)) {
        expect(
          read(path.join(dir, file)).equals(fs.readFileSync(path.join(out, dir, file))),
          `${dir}/${file} is stale: run node scripts/make-icons.js`,
        ).toBe(true);
      }
    }
  });
});

describe('files packaged into app.asar', () => {
  /** electron-builder's own filter for the app's files, with its default exclusions. */
  function appFilter() {
    const [matcher] = internals.getMainFileMatchers(
      root,
      '/app',
      same,
      config.linux ?? {},
      { info: packager },
      path.resolve(root, config.directories!.output!),
      false,
    );
    const filter = matcher!.createFilter();
    // The walker descends only into directories the filter keeps, so a file needs every parent too.
    return (relative: string) => {
      const parts = relative.split('/');
      return parts.every((_, i) => filter(path.join(root, ...parts.slice(0, i + 1)), fakeStat(i < parts.length - 1)));
    };
  }

  it('include the main process, the preload, the renderer, the tray icons and package.json', () => {
    const packaged = appFilter();
    for (const file of [
      'package.json',
      'dist/electron/main.js',
      'dist/electron/preload.cjs',
      'dist/renderer/index.html',
      'dist/renderer/assets/index-abc123.js',
      'dist/lib/cache/cache.js',
      'dist/agent/host/agent-host.js',
      'dist/server/hub.js',
      'dist/bin/farmlink.js',
      'assets/icon.png',
      ...TRAY_STATES.flatMap((s) => [`assets/tray/${s}.png`, `assets/tray/${s}@2x.png`, `assets/tray/${s}.ico`]),
    ]) {
      expect(packaged(file), file).toBe(true);
    }
  });

  it('leave out sources, tests, maps, benchmarks, build resources and the release folder', () => {
    const packaged = appFilter();
    for (const file of [
      'electron/main.ts',
      'renderer/main.tsx',
      'renderer/index.html',
      'lib/backoff.test.ts',
      'test/packaging.test.ts',
      'dist/electron/main.js.map',
      'dist/lib/backoff.test.js',
      'dist/bench/run-all.js',
      'dist/.tsbuildinfo',
      'build/icon.ico',
      'release/linux-unpacked/farmlink',
      'scripts/make-icons.js',
      'electron-builder.yml',
      'README.md',
      'tsconfig.json',
      'package-lock.json',
    ]) {
      expect(packaged(file), file).toBe(false);
    }
  });

  it("ship every package the main process imports, and none of the renderer's (vite bundles those)", () => {
    const manifest = (dir: string) =>
      JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name: string;
        dependencies?: Record<string, string>;
        optionalDependencies?: Record<string, string>;
        devDependencies?: Record<string, string>;
      };
    /** Resolves a package as Node would from `fromDir`. */
    const resolve = (name: string, fromDir: string): string | undefined => {
      for (let dir = fromDir; dir.startsWith(root); dir = path.dirname(dir)) {
        const candidate = path.join(dir, 'node_modules', name);
        if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
        if (dir === root) break;
      }
      return undefined;
    };
    /** Every installed package reachable from `names` through dependencies. */
    const closure = (names: string[]) => {
      const found = new Set<string>();
      const queue = names.map((name) => [name, root] as const);
      for (let next = queue.pop(); next; next = queue.pop()) {
        const dir = resolve(next[0], next[1]);
        if (!dir || found.has(dir)) continue;
        found.add(dir);
        const m = manifest(dir);
        for (const dep of Object.keys({ ...m.dependencies, ...m.optionalDependencies })) queue.push([dep, dir]);
      }
      return found;
    };
    const pkg = manifest(root);
    const dependencies = Object.keys(pkg.dependencies ?? {});
    expect(
      dependencies.filter((name) => RENDERER_PACKAGES.includes(name)),
      'renderer libraries belong in devDependencies',
    ).toEqual([]);
    expect(RENDERER_PACKAGES.every((name) => pkg.devDependencies?.[name])).toBe(true);

    // electron-builder's filter for node_modules, as its NodeModuleCopyHelper applies it.
    const main = closure(dependencies);
    const modules = internals.getNodeModuleFileMatcher(root, '/app', same, config.linux ?? {}, packager);
    const copied = (dir: string) => {
      const relative = path.relative(root, dir).split(path.sep).join('/');
      const filter = new fileMatchers.FileMatcher(
        dir,
        path.join('/app', relative),
        same,
        modules.patterns,
      ).createFilter();
      return filter(path.join(dir, 'package.json'), fakeStat(false, `${relative}/package.json`));
    };
    const wronglyExcluded = [...main].filter((dir) => !copied(dir)).map((dir) => path.relative(root, dir));
    expect(
      wronglyExcluded,
      'the main process needs these: remove them from the exclusions in electron-builder.yml',
    ).toEqual([]);
    expect(main.size).toBeGreaterThan(5);

    // Every package the main process's code imports is a production dependency (or Node's, or Electron).
    const sources = ['protocol', 'lib', 'agent', 'server', 'cli', 'bin', 'electron'].flatMap((dir) =>
      fs
        .readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
        .filter((f) => /\.(ts|js)$/.test(f) && !/\.test\.ts$/.test(f) && !/config\.ts$/.test(f))
        .map((f) => path.join(dir, f)),
    );
    const offenders: string[] = [];
    for (const file of sources) {
      const text = fs.readFileSync(path.join(root, file), 'utf8');
      for (const match of text.matchAll(
        /^\s*(?:import|export)\s+(?!type\b)[^;'"]*?from\s+['"]((?:@[^/'"]+\/)?[^/'".][^/'"]*)[^'"]*['"]/gm,
      )) {
        const name = match[1]!;
        if (name.startsWith('node:') || name === 'electron' || dependencies.includes(name)) continue;
        offenders.push(`${file} imports ${name}`);
      }
    }
    expect(
      offenders,
      'imported by the main process but not in dependencies: the packaged app would not find them',
    ).toEqual([]);
  });
});
