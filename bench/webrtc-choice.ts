/**
 * Which WebRTC library carries the tunnel's direct path: node-datachannel or werift, measured the same way.
 *
 *   npm run build:node && node dist/bench/webrtc-choice.js [--mb 50] [--pings 2000] [--timeout 120]
 *
 * Each library runs in a child process of its own (so CPU and RSS are its own): two peers on loopback,
 * host candidates on 127.0.0.1 only (no STUN or TURN), one reliable ordered data channel. It measures the
 * time from creating the peers to both ends of the channel open, a bulk transfer (64 KiB messages, the
 * sender stops above a high-water mark of bufferedAmount and resumes on the low-water event), then 1-byte
 * ping-pong round trips. A library that does not install or load here is reported as such. werift is
 * not a dependency: `npm install --no-save werift` first to measure it.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { table, ms, num } from './lib/markdown.js';
import { summarize } from './lib/stats.js';

const LIBRARIES = ['node-datachannel', 'werift'] as const;
type Library = (typeof LIBRARIES)[number];

const MESSAGE_BYTES = 64 * 1024;
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;

interface Result {
  library: Library;
  ok: boolean;
  error?: string;
  version?: string;
  openMs?: number;
  mbPerS?: number;
  pingP50?: number;
  pingP99?: number;
  cpuPct?: number;
  rssMb?: number;
  candidate?: string;
}

/** One end of an open channel, the same shape for both libraries. */
interface Channel {
  send(data: Buffer): void;
  bufferedAmount(): number;
  onLow(cb: () => void): void;
  onMessage(cb: (data: Buffer) => void): void;
}

interface Pair {
  a: Channel;
  b: Channel;
  candidate: string;
  close(): Promise<void>;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name}: expected a positive number`);
  return value;
}

/** Loads a module by a name the compiler does not resolve (werift is measured only when installed by hand). */
async function load(name: string): Promise<unknown> {
  return (await import(name)) as unknown;
}

/** The installed version, from the package.json above the resolved entry (neither exports its package.json). */
async function versionOf(name: string): Promise<string> {
  const { createRequire } = await import('node:module');
  const { readFileSync, existsSync } = await import('node:fs');
  const path = await import('node:path');
  let dir = path.dirname(createRequire(import.meta.url).resolve(name));
  while (dir !== path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name) return pkg.version ?? '?';
    }
    dir = path.dirname(dir);
  }
  return '?';
}

// ---- node-datachannel ----------------------------------------------------------------------------

interface NdcChannel {
  sendMessageBinary(b: Buffer): boolean;
  bufferedAmount(): number;
  setBufferedAmountLowThreshold(n: number): void;
  onBufferedAmountLow(cb: () => void): void;
  onMessage(cb: (m: string | Buffer | ArrayBuffer) => void): void;
  onOpen(cb: () => void): void;
  close(): void;
}
interface NdcPeer {
  onLocalDescription(cb: (sdp: string, type: string) => void): void;
  onLocalCandidate(cb: (candidate: string, mid: string) => void): void;
  onDataChannel(cb: (dc: NdcChannel) => void): void;
  setRemoteDescription(sdp: string, type: string): void;
  addRemoteCandidate(candidate: string, mid: string): void;
  createDataChannel(label: string): NdcChannel;
  getSelectedCandidatePair(): { local: { candidate: string } } | null;
  close(): void;
}
interface NdcModule {
  PeerConnection: new (name: string, config: Record<string, unknown>) => NdcPeer;
  cleanup(): void;
}

function ndcChannel(dc: NdcChannel): Channel {
  dc.setBufferedAmountLowThreshold(LOW_WATER);
  return {
    send: (data) => void dc.sendMessageBinary(data),
    bufferedAmount: () => dc.bufferedAmount(),
    onLow: (cb) => {
      dc.onBufferedAmountLow(cb);
    },
    onMessage: (cb) => {
      dc.onMessage((m) => {
        cb(Buffer.isBuffer(m) ? m : Buffer.from(m as ArrayBuffer));
      });
    },
  };
}

async function ndcPair(): Promise<Pair> {
  const mod = (await load('node-datachannel')) as NdcModule;
  const config = { iceServers: [], bindAddress: '127.0.0.1', enableIceUdpMux: false };
  const pa = new mod.PeerConnection('a', config);
  const pb = new mod.PeerConnection('b', config);
  pa.onLocalDescription((sdp, type) => {
    pb.setRemoteDescription(sdp, type);
  });
  pb.onLocalDescription((sdp, type) => {
    pa.setRemoteDescription(sdp, type);
  });
  pa.onLocalCandidate((c, mid) => {
    pb.addRemoteCandidate(c, mid);
  });
  pb.onLocalCandidate((c, mid) => {
    pa.addRemoteCandidate(c, mid);
  });
  const remote = new Promise<NdcChannel>((resolve) => {
    pb.onDataChannel(resolve);
  });
  const local = pa.createDataChannel('tunnel');
  const opened = new Promise<void>((resolve) => {
    local.onOpen(resolve);
  });
  const [dcb] = await Promise.all([remote, opened]);
  return {
    a: ndcChannel(local),
    b: ndcChannel(dcb),
    candidate: pa.getSelectedCandidatePair()?.local.candidate ?? 'unknown',
    close: () => {
      local.close();
      dcb.close();
      pa.close();
      pb.close();
      mod.cleanup();
      return Promise.resolve();
    },
  };
}

// ---- werift --------------------------------------------------------------------------------------

interface WeriftEvent<T extends unknown[]> {
  subscribe(cb: (...args: T) => void): unknown;
}
interface WeriftChannel {
  send(b: Buffer): void;
  bufferedAmount: number;
  bufferedAmountLowThreshold: number;
  bufferedAmountLow: WeriftEvent<[]>;
  onMessage: WeriftEvent<[string | Buffer]>;
  readyState: string;
  stateChanged: WeriftEvent<[string]>;
  close(): void;
}
interface WeriftPeer {
  onIceCandidate: WeriftEvent<[{ candidate: string; sdpMid?: string } | undefined]>;
  onDataChannel: WeriftEvent<[WeriftChannel]>;
  createDataChannel(label: string): WeriftChannel;
  createOffer(): Promise<unknown>;
  createAnswer(): Promise<unknown>;
  setLocalDescription(d: unknown): Promise<{ sdp: string; type: string }>;
  setRemoteDescription(d: { sdp: string; type: string }): Promise<void>;
  addIceCandidate(c: { candidate: string; sdpMid?: string }): Promise<void>;
  close(): Promise<void>;
}
interface WeriftModule {
  RTCPeerConnection: new (config: Record<string, unknown>) => WeriftPeer;
}

function weriftChannel(dc: WeriftChannel): Channel {
  dc.bufferedAmountLowThreshold = LOW_WATER;
  return {
    send: (data) => {
      dc.send(data);
    },
    bufferedAmount: () => dc.bufferedAmount,
    onLow: (cb) => {
      dc.bufferedAmountLow.subscribe(cb);
    },
    onMessage: (cb) => {
      dc.onMessage.subscribe((m) => {
        cb(typeof m === 'string' ? Buffer.from(m) : m);
      });
    },
  };
}

function weriftOpen(dc: WeriftChannel): Promise<void> {
  if (dc.readyState === 'open') return Promise.resolve();
  return new Promise((resolve) => {
    dc.stateChanged.subscribe((s) => {
      if (s === 'open') resolve();
    });
  });
}

async function weriftPair(): Promise<Pair> {
  const mod = (await load('werift')) as WeriftModule;
  // Loopback only: bind to 127.0.0.1 and keep only loopback host candidates (werift leaves loopback out by default).
  const config = {
    iceServers: [],
    iceUseIpv6: false,
    iceInterfaceAddresses: { udp4: '127.0.0.1' },
    iceAdditionalHostAddresses: ['127.0.0.1'],
    iceFilterCandidatePair: (pair: { remoteCandidate: { host: string } }) =>
      pair.remoteCandidate.host.startsWith('127.'),
  };
  const pa = new mod.RTCPeerConnection(config);
  const pb = new mod.RTCPeerConnection(config);
  pa.onIceCandidate.subscribe((c) => {
    if (c) void pb.addIceCandidate(c);
  });
  pb.onIceCandidate.subscribe((c) => {
    if (c) void pa.addIceCandidate(c);
  });
  const remote = new Promise<WeriftChannel>((resolve) => {
    pb.onDataChannel.subscribe(resolve);
  });
  const local = pa.createDataChannel('tunnel');
  const offer = await pa.setLocalDescription(await pa.createOffer());
  await pb.setRemoteDescription(offer);
  const answer = await pb.setLocalDescription(await pb.createAnswer());
  await pa.setRemoteDescription(answer);
  const dcb = await remote;
  await Promise.all([weriftOpen(local), weriftOpen(dcb)]);
  return {
    a: weriftChannel(local),
    b: weriftChannel(dcb),
    candidate: 'host 127.0.0.1 (filtered)',
    close: async () => {
      await Promise.all([pa.close(), pb.close()]);
    },
  };
}

// ---- the measurement (child) ---------------------------------------------------------------------

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what}: no result within ${String(timeoutMs)} ms`));
    }, timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

async function bulk(pair: Pair, totalBytes: number): Promise<number> {
  const message = Buffer.alloc(MESSAGE_BYTES, 0xab);
  let received = 0;
  const done = new Promise<void>((resolve) => {
    pair.b.onMessage((data) => {
      received += data.length;
      if (received >= totalBytes) resolve();
    });
  });
  const start = performance.now();
  let sent = 0;
  const pump = () => {
    while (sent < totalBytes && pair.a.bufferedAmount() < HIGH_WATER) {
      pair.a.send(message);
      sent += message.length;
    }
  };
  pair.a.onLow(pump);
  pump();
  await done;
  return performance.now() - start;
}

async function pingPong(pair: Pair, count: number): Promise<number[]> {
  const one = Buffer.from([1]);
  const times: number[] = [];
  pair.b.onMessage(() => {
    pair.b.send(one);
  });
  let resolveOne: (() => void) | undefined;
  pair.a.onMessage(() => resolveOne?.());
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      resolveOne = resolve;
      pair.a.send(one);
    });
    times.push(performance.now() - t0);
  }
  return times;
}

async function child(library: Library, totalBytes: number, pings: number): Promise<Result> {
  const version = await versionOf(library);
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 50);
  const t0 = performance.now();
  const pair = await (library === 'node-datachannel' ? ndcPair() : weriftPair());
  const openMs = performance.now() - t0;
  const cpu0 = process.cpuUsage();
  const bulkMs = await bulk(pair, totalBytes);
  const cpu = process.cpuUsage(cpu0);
  // The bulk transfer's message handlers stay subscribed; ping-pong adds its own, so a fresh pair keeps them apart.
  await pair.close();
  const pingPair = await (library === 'node-datachannel' ? ndcPair() : weriftPair());
  const times = (await pingPong(pingPair, pings)).sort((x, y) => x - y);
  await pingPair.close();
  clearInterval(sampler);
  const summary = summarize(times);
  return {
    library,
    ok: true,
    version,
    openMs,
    mbPerS: totalBytes / 1e6 / (bulkMs / 1000),
    pingP50: summary.p50,
    pingP99: summary.p99,
    cpuPct: ((cpu.user + cpu.system) / 1000 / bulkMs) * 100,
    rssMb: peakRss / 1e6,
    candidate: pair.candidate,
  };
}

// ---- the table (parent) --------------------------------------------------------------------------

function runChild(library: Library, mb: number, pings: number, timeoutS: number): Promise<Result> {
  return new Promise((resolve) => {
    const proc = spawn(
      process.execPath,
      [fileURLToPath(import.meta.url), '--child', library, '--mb', String(mb), '--pings', String(pings)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutS * 1000);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as Result);
      } catch {
        const why = signal === 'SIGKILL' ? `no result within ${String(timeoutS)} s` : `exit ${String(code)}`;
        const detail = err.trim().split('\n').slice(-3).join(' / ');
        resolve({ library, ok: false, error: `${why}${detail ? `: ${detail}` : ''}` });
      }
    });
  });
}

async function main(): Promise<void> {
  const childAt = process.argv.indexOf('--child');
  const mb = arg('mb', 50);
  const pings = arg('pings', 2000);
  if (childAt >= 0) {
    const library = process.argv[childAt + 1] as Library;
    let result: Result;
    try {
      result = await withTimeout(child(library, mb * 1e6, pings), 110_000, library);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const message = error instanceof Error ? error.message : String(error);
      result = {
        library,
        ok: false,
        error:
          code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND'
            ? `not installed (npm install --no-save ${library} to measure it)`
            : (message.split('\n')[0] ?? message),
      };
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
    // A library that leaves native handles behind must not keep the measurement hanging.
    process.exit(0);
  }
  const timeoutS = arg('timeout', 120);
  const rows: string[][] = [];
  for (const library of LIBRARIES) {
    process.stderr.write(`measuring ${library} (${String(mb)} MB, ${String(pings)} pings)…\n`);
    const r = await runChild(library, mb, pings, timeoutS);
    rows.push(
      r.ok
        ? [
            `${library} ${r.version ?? ''}`,
            ms(r.openMs ?? Number.NaN),
            num(r.mbPerS ?? Number.NaN, 1),
            ms(r.pingP50 ?? Number.NaN),
            ms(r.pingP99 ?? Number.NaN),
            `${num(r.cpuPct ?? Number.NaN)} %`,
            num(r.rssMb ?? Number.NaN),
            'ok',
          ]
        : [library, '–', '–', '–', '–', '–', '–', r.error ?? 'failed'],
    );
  }
  process.stdout.write(
    `${String(mb)} MB in 64 KiB messages, one reliable ordered channel on 127.0.0.1, both peers in one process\n\n` +
      `${table(['library', 'open (ms)', 'MB/s', 'ping p50 (ms)', 'ping p99 (ms)', 'CPU during bulk', 'peak RSS (MB)', 'result'], rows)}\n`,
  );
}

await main();
