// @ts-check
/**
 * Draws FarmLink's icons from code and writes them as PNG and ICO files — no image library, no
 * downloads, byte-for-byte reproducible (test/packaging.test.ts regenerates them and compares).
 *
 *   node scripts/make-icons.js [--out <dir>]      (default: the repository root)
 *
 * Writes
 *   assets/tray/{connected,reconnecting,offline}.png      16×16 tray icons (Linux, macOS)
 *   assets/tray/{connected,reconnecting,offline}@2x.png   32×32, picked by Electron on HiDPI
 *   assets/tray/{connected,reconnecting,offline}.ico      16, 24, 32, 48 (Windows tray)
 *   assets/icon.png                                       256×256 window icon at run time (Linux)
 *   build/icon.png                                        512×512 app icon (electron-builder)
 *   build/icon.ico                                        16 … 256 app icon (Windows exe, NSIS)
 *   build/icons/NxN.png                                   16 … 512 app icon set (Linux, hicolor)
 *
 * Shapes are signed distance fields (negative inside); a pixel's coverage is its distance to the
 * edge in pixels, so every edge is antialiased at every size. The tray glyph is the panel's
 * favicon (renderer/public/favicon.svg: a white signal mark on a green disc), redrawn so that it
 * still reads at 16×16, and each state has its own shape as well as its own colour, so that it
 * can be told apart without colour vision: signal (connected), circular arrow (reconnecting),
 * cross (offline). A darker rim keeps the disc's edge visible on light panels.
 */
import { Buffer } from 'node:buffer';
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import zlib from 'node:zlib';

// ---------------------------------------------------------------------------------------------
// PNG and ICO encoding
// ---------------------------------------------------------------------------------------------

const CRC_TABLE = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** @param {Uint8Array} bytes */
function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** @param {string} type @param {Buffer} data */
function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * An 8-bit RGBA PNG (colour type 6), filter None on every row, deflated at level 9.
 * @param {{ size: number, rgba: Uint8Array }} image
 */
export function encodePng({ size, rgba }) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type RGBA
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering
  ihdr[12] = 0; // no interlace
  const stride = size * 4;
  const raw = Buffer.alloc((stride + 1) * size);
  for (let y = 0; y < size; y += 1) {
    raw[y * (stride + 1)] = 0;
    raw.set(rgba.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * An ICO image entry as a classic 32-bit DIB (BITMAPINFOHEADER, BGRA bottom-up, then the 1-bit
 * AND mask): every Windows version, NSIS and resource editors read these. 256×256 goes in as PNG.
 * @param {{ size: number, rgba: Uint8Array }} image
 */
function encodeDib({ size, rgba }) {
  const maskStride = Math.ceil(size / 32) * 4;
  const header = Buffer.alloc(40);
  header.writeUInt32LE(40, 0); // biSize
  header.writeInt32LE(size, 4); // biWidth
  header.writeInt32LE(size * 2, 8); // biHeight: XOR bitmap + AND mask
  header.writeUInt16LE(1, 12); // biPlanes
  header.writeUInt16LE(32, 14); // biBitCount
  header.writeUInt32LE(0, 16); // BI_RGB
  header.writeUInt32LE(size * size * 4 + maskStride * size, 20); // biSizeImage
  const pixels = Buffer.alloc(size * size * 4);
  const mask = Buffer.alloc(maskStride * size);
  for (let y = 0; y < size; y += 1) {
    const row = size - 1 - y; // bottom-up
    for (let x = 0; x < size; x += 1) {
      const src = (y * size + x) * 4;
      const dst = (row * size + x) * 4;
      pixels[dst] = rgba[src + 2];
      pixels[dst + 1] = rgba[src + 1];
      pixels[dst + 2] = rgba[src];
      pixels[dst + 3] = rgba[src + 3];
      if (rgba[src + 3] === 0) mask[row * maskStride + (x >> 3)] |= 0x80 >> (x & 7);
    }
  }
  return Buffer.concat([header, pixels, mask]);
}

/** @param {{ size: number, rgba: Uint8Array }[]} images */
export function encodeIco(images) {
  const sorted = [...images].sort((a, b) => a.size - b.size);
  const header = Buffer.alloc(6);
  header.writeUInt16LE(0, 0); // reserved
  header.writeUInt16LE(1, 2); // type: icon
  header.writeUInt16LE(sorted.length, 4);
  const bodies = sorted.map((image) => (image.size >= 256 ? encodePng(image) : encodeDib(image)));
  const directory = Buffer.alloc(16 * sorted.length);
  let offset = header.length + directory.length;
  sorted.forEach((image, i) => {
    const entry = i * 16;
    directory[entry] = image.size >= 256 ? 0 : image.size; // 0 means 256
    directory[entry + 1] = image.size >= 256 ? 0 : image.size;
    directory[entry + 2] = 0; // no palette
    directory[entry + 3] = 0; // reserved
    directory.writeUInt16LE(1, entry + 4); // planes
    directory.writeUInt16LE(32, entry + 6); // bits per pixel
    directory.writeUInt32LE(bodies[i].length, entry + 8);
    directory.writeUInt32LE(offset, entry + 12);
    offset += bodies[i].length;
  });
  return Buffer.concat([header, directory, ...bodies]);
}

// ---------------------------------------------------------------------------------------------
// Signed distance fields and a tiny compositor
// ---------------------------------------------------------------------------------------------

/** @typedef {[number, number]} Vec */
/** @typedef {(x: number, y: number) => number} Field  signed distance in design units */
/** @typedef {[number, number, number]} Rgb */
/** @typedef {{ field: Field, color: Rgb | ((x: number, y: number) => Rgb), alpha?: number }} Layer */

/** @param {Vec} c @param {number} r @returns {Field} */
const disc = (c, r) => (x, y) => Math.hypot(x - c[0], y - c[1]) - r;

/** Distance to the segment a–b, minus half the stroke: a line with round caps. @param {Vec} a @param {Vec} b @param {number} width @returns {Field} */
const line = (a, b, width) => (x, y) => {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const t = Math.max(0, Math.min(1, ((x - a[0]) * dx + (y - a[1]) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(x - a[0] - t * dx, y - a[1] - t * dy) - width / 2;
};

/**
 * A stroked circular arc with round caps, from angle `from` through `sweep` radians
 * (angles measured clockwise from 3 o'clock, since y points down).
 * @param {Vec} c @param {number} r @param {number} from @param {number} sweep @param {number} width @returns {Field}
 */
const arc = (c, r, from, sweep, width) => {
  const start = /** @type {Vec} */ ([c[0] + r * Math.cos(from), c[1] + r * Math.sin(from)]);
  const end = /** @type {Vec} */ ([c[0] + r * Math.cos(from + sweep), c[1] + r * Math.sin(from + sweep)]);
  return (x, y) => {
    let angle = Math.atan2(y - c[1], x - c[0]) - from;
    angle -= Math.floor(angle / (2 * Math.PI)) * 2 * Math.PI;
    const onArc = angle <= sweep;
    const d = onArc
      ? Math.abs(Math.hypot(x - c[0], y - c[1]) - r)
      : Math.min(Math.hypot(x - start[0], y - start[1]), Math.hypot(x - end[0], y - end[1]));
    return d - width / 2;
  };
};

/** A filled convex polygon (either winding). @param {Vec[]} points @returns {Field} */
const polygon = (points) => {
  let area = 0;
  for (let i = 0; i < points.length; i += 1) {
    const a = points[i];
    const b = points[(i + 1) % points.length];
    area += a[0] * b[1] - b[0] * a[1];
  }
  const winding = Math.sign(area);
  return (x, y) => {
    let outside = -Infinity;
    let edgeDistance = Infinity;
    for (let i = 0; i < points.length; i += 1) {
      const a = points[i];
      const b = points[(i + 1) % points.length];
      const ex = b[0] - a[0];
      const ey = b[1] - a[1];
      const side = (winding * ((x - a[0]) * ey - (y - a[1]) * ex)) / Math.hypot(ex, ey);
      outside = Math.max(outside, side);
      edgeDistance = Math.min(edgeDistance, line(a, b, 0)(x, y));
    }
    return outside > 0 ? edgeDistance : outside;
  };
};

/** A rounded square centred on c. @param {Vec} c @param {number} half @param {number} radius @returns {Field} */
const roundedSquare = (c, half, radius) => (x, y) => {
  const qx = Math.abs(x - c[0]) - half + radius;
  const qy = Math.abs(y - c[1]) - half + radius;
  return Math.hypot(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0) - radius;
};

/** @param {...Field} fields @returns {Field} */
const union =
  (...fields) =>
  (x, y) =>
    Math.min(...fields.map((f) => f(x, y)));

/** @param {string} hex @returns {Rgb} */
const rgb = (hex) => [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16)];
/** @param {Rgb} color @param {number} factor @returns {Rgb} */
const shade = (color, factor) => [color[0] * factor, color[1] * factor, color[2] * factor];

/**
 * Renders layers (bottom first) drawn in a `design`×`design` unit square at `size` pixels.
 * @param {number} size @param {number} design @param {Layer[]} layers
 */
function render(size, design, layers) {
  const rgba = new Uint8Array(size * size * 4);
  const unitsPerPixel = design / size;
  for (let py = 0; py < size; py += 1) {
    for (let px = 0; px < size; px += 1) {
      const x = (px + 0.5) * unitsPerPixel;
      const y = (py + 0.5) * unitsPerPixel;
      let r = 0;
      let g = 0;
      let b = 0;
      let a = 0; // premultiplied
      for (const layer of layers) {
        const coverage = Math.max(0, Math.min(1, 0.5 - layer.field(x, y) / unitsPerPixel)) * (layer.alpha ?? 1);
        if (coverage === 0) continue;
        const color = typeof layer.color === 'function' ? layer.color(x, y) : layer.color;
        r = color[0] * coverage + r * (1 - coverage);
        g = color[1] * coverage + g * (1 - coverage);
        b = color[2] * coverage + b * (1 - coverage);
        a = coverage + a * (1 - coverage);
      }
      const i = (py * size + px) * 4;
      if (a > 0) {
        rgba[i] = Math.round(r / a);
        rgba[i + 1] = Math.round(g / a);
        rgba[i + 2] = Math.round(b / a);
      }
      rgba[i + 3] = Math.round(a * 255);
    }
  }
  return { size, rgba };
}

// ---------------------------------------------------------------------------------------------
// The designs
// ---------------------------------------------------------------------------------------------

const WHITE = rgb('#ffffff');

/** The tray states, in the colours the brief (and the panel) use. */
export const TRAY_STATES = {
  connected: rgb('#1f8f4e'),
  reconnecting: rgb('#c27c0e'),
  offline: rgb('#c0392b'),
};

// Tray icons are designed on a 16-unit grid: one unit is one pixel at 16×16.
const CENTRE = /** @type {Vec} */ ([8, 8]);
const STROKE = 1.55;

/** Dot and two arcs fanning upwards (the favicon's mark, narrowed to read at 16×16). */
const signalMark = (/** @type {Vec} */ c, /** @type {number} */ k) => {
  const spread = (100 * Math.PI) / 180;
  const from = -Math.PI / 2 - spread / 2;
  return union(disc(c, 1.5 * k), arc(c, 3.75 * k, from, spread, STROKE * k), arc(c, 6.5 * k, from, spread, STROKE * k));
};
const signal = signalMark([8, 11.35], 1);

/** A circular arrow: an open ring, its arrowhead at the clockwise end pointing into the gap. */
const circularArrow = (() => {
  const radius = 3.95;
  const gap = 1.75; // radians left open, centred at the top right
  const gapCentre = -0.75;
  const from = gapCentre + gap / 2;
  const sweep = 2 * Math.PI - gap;
  const endAngle = from + sweep;
  const tip = /** @type {Vec} */ ([CENTRE[0] + radius * Math.cos(endAngle), CENTRE[1] + radius * Math.sin(endAngle)]);
  const tangent = /** @type {Vec} */ ([-Math.sin(endAngle), Math.cos(endAngle)]);
  const normal = /** @type {Vec} */ ([Math.cos(endAngle), Math.sin(endAngle)]);
  const half = 2.45;
  const length = 3.2;
  const point = /** @type {Vec} */ ([tip[0] + tangent[0] * length, tip[1] + tangent[1] * length]);
  const outer = /** @type {Vec} */ ([tip[0] + normal[0] * half, tip[1] + normal[1] * half]);
  const inner = /** @type {Vec} */ ([tip[0] - normal[0] * half, tip[1] - normal[1] * half]);
  return union(arc(CENTRE, radius, from, sweep - 0.1, STROKE), polygon([inner, outer, point]));
})();

/** A bold cross. */
const cross = union(line([5.2, 5.2], [10.8, 10.8], 1.9), line([10.8, 5.2], [5.2, 10.8], 1.9));

const TRAY_GLYPHS = { connected: signal, reconnecting: circularArrow, offline: cross };

/** @param {keyof typeof TRAY_STATES} state @param {number} size */
export function trayIcon(state, size) {
  const color = TRAY_STATES[state];
  return render(size, 16, [
    { field: disc(CENTRE, 7.6), color: shade(color, 0.78) }, // a darker rim: the disc holds on light panels
    { field: disc(CENTRE, 6.9), color },
    { field: TRAY_GLYPHS[state], color: WHITE },
  ]);
}

/**
 * The app icon, on the same 16-unit grid: the signal mark on a green rounded square with a soft
 * top-to-bottom gradient — the tray's and the panel favicon's mark, in the connected colour.
 * @param {number} size
 */
export function appIcon(size) {
  const top = rgb('#2aa862');
  const bottom = rgb('#17733e');
  /** @param {number} _x @param {number} y @returns {Rgb} */
  const gradient = (_x, y) => {
    const t = Math.max(0, Math.min(1, (y - 1) / 14));
    return [top[0] + (bottom[0] - top[0]) * t, top[1] + (bottom[1] - top[1]) * t, top[2] + (bottom[2] - top[2]) * t];
  };
  // Small sizes fill their square; large ones keep the usual margin around the tile.
  const margin = size <= 32 ? 0.25 : 1;
  return render(size, 16, [
    { field: roundedSquare(CENTRE, 8 - margin, 3.2 - margin / 2), color: gradient },
    { field: signalMark([8, 11.05], 1.02), color: WHITE },
  ]);
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/** Every file this script writes, relative to the output root, with its bytes. */
export function iconFiles() {
  /** @type {Map<string, Buffer>} */
  const files = new Map();
  for (const state of /** @type {(keyof typeof TRAY_STATES)[]} */ (Object.keys(TRAY_STATES))) {
    files.set(`assets/tray/${state}.png`, encodePng(trayIcon(state, 16)));
    files.set(`assets/tray/${state}@2x.png`, encodePng(trayIcon(state, 32)));
    files.set(`assets/tray/${state}.ico`, encodeIco([16, 24, 32, 48].map((size) => trayIcon(state, size))));
  }
  files.set('assets/icon.png', encodePng(appIcon(256)));
  files.set('build/icon.png', encodePng(appIcon(512)));
  files.set('build/icon.ico', encodeIco([16, 24, 32, 48, 64, 128, 256].map((size) => appIcon(size))));
  for (const size of [16, 32, 48, 64, 128, 256, 512])
    files.set(`build/icons/${size}x${size}.png`, encodePng(appIcon(size)));
  return files;
}

function main() {
  const args = process.argv.slice(2);
  const outIndex = args.indexOf('--out');
  const root =
    outIndex >= 0 && args[outIndex + 1] ? path.resolve(args[outIndex + 1]) : path.resolve(import.meta.dirname, '..');
  for (const [file, bytes] of iconFiles()) {
    const target = path.join(root, file);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, bytes);
    process.stdout.write(`${file}  ${bytes.length} bytes\n`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) main();
