import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { download, upload } from '../bench/lib/tcp-tools.js';
import { ChaosProxy } from './helpers/chaos-proxy.js';
import type { HubProcess } from './helpers/hub-process.js';
import { SERVICE, TunnelRig, adminSessions, seconds, type RigConnect } from './helpers/tunnel-rig.js';
import { waitUntil } from './helpers/wait.js';

/**
 * docs/tunnel.md "Failures and what happens", each with real processes: a hub (or two), a farm PC's
 * agent exposing a hash service, `farmlink connect` in front of it, and data judged byte for byte.
 * Times observed are printed as `[tunnel-failures] …` lines (for bench/README.md); nothing asserts them.
 */

const MB = 1024 * 1024;
let rig: TunnelRig;
afterEach(async () => {
  await rig.dispose();
});

const report = (line: string): void => {
  console.log(`[tunnel-failures] ${line}`);
};

/** Waits for a new stdout line of `connect` matching `pattern`, after `from` lines; resolves with when it was seen. */
async function lineAfter(connect: RigConnect, from: number, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  return waitUntil(
    `farmlink connect to print ${String(pattern)} (output so far: ${connect.lines().slice(from).join(' | ')})`,
    () =>
      connect
        .lines()
        .slice(from)
        .find((l) => pattern.test(l)),
    timeoutMs,
    20,
  );
}

/**
 * An upload to the hash service at a set pace, so that it is still in flight while a fault happens:
 * `total` bytes in 64 KiB chunks, `perTickBytes` every 20 ms. Resolves with whether the far side got
 * every byte (its sha256 and count), and calls `onSent` as bytes go.
 */
async function pacedUpload(
  port: number,
  total: number,
  perTickBytes: number,
  onSent: (sent: number) => void = () => undefined,
): Promise<{ intact: boolean; answer: string }> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const ended = once(socket, 'end');
  // A reset rejects `ended` while the upload is still going: it fails this test when awaited below,
  // instead of surfacing first as an unhandled rejection.
  ended.catch(() => undefined);
  socket.write('PUT\n');
  let sent = 0;
  while (sent < total) {
    let tick = 0;
    while (tick < perTickBytes && sent < total) {
      const chunk = randomBytes(Math.min(64 * 1024, total - sent));
      hash.update(chunk);
      socket.write(chunk);
      sent += chunk.length;
      tick += chunk.length;
    }
    onSent(sent);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  socket.end();
  await ended;
  const answer = Buffer.concat(chunks).toString('latin1').trim();
  return { intact: answer === `HASH ${hash.digest('hex')} ${total}`, answer };
}

async function sessionsOf(hub: HubProcess, agentId: string) {
  return (await adminSessions(hub)).sessions.filter((s) => s.agent_id === agentId);
}

describe('the tunnel survives its failures (real hub, agent and farmlink connect processes)', () => {
  it('farm PC loses power: the client says so, keeps its listener, and carries 50 MB once the farm is back', async () => {
    rig = await TunnelRig.create();
    const agentId = 'pc-power';
    const hub = await rig.hub({ hubId: 'failures-power' });
    const farm = await rig.farm(agentId, [hub.url], hub);
    await farm.linked();
    const connect = await rig.connect(agentId, [hub.url]);
    expect((await upload(connect.port, 4 * MB)).intact).toBe(true);

    const from = connect.lines().length;
    const killedAt = performance.now();
    await farm.agent.kill();
    await lineAfter(connect, from, new RegExp(`^${agentId}/${SERVICE} farm unavailable, reconnecting$`));
    const detectedMs = performance.now() - killedAt;

    // The listener is still there: a connection made now waits for the farm.
    const waiting = upload(connect.port, 1 * MB);
    const restartAt = performance.now();
    await farm.start();
    expect((await waiting).intact).toBe(true);
    const recoveredMs = performance.now() - restartAt;
    const big = await download(connect.port, 50 * MB);
    expect(big.intact).toBe(true);
    expect(connect.cli.proc.exitCode).toBeNull();
    expect(await sessionsOf(hub, agentId)).toHaveLength(1);
    report(
      `farm power loss: detected ${seconds(detectedMs)}, first connection through after restart ` +
        `${seconds(recoveredMs)} (agent process start included); 50 MB after it in ${seconds(big.ms)}`,
    );
  });

  it('remote network drops shorter than the resume window: the transfer in flight completes intact', async () => {
    rig = await TunnelRig.create();
    const agentId = 'pc-blip';
    const hub = await rig.hub({ hubId: 'failures-blip' });
    const farm = await rig.farm(agentId, [hub.url], hub);
    await farm.linked();
    const proxy = await ChaosProxy.start({ port: hub.port });
    rig.defer(() => proxy.stop());
    const connect = await rig.connect(agentId, [proxy.url]);

    const from = connect.lines().length;
    let blackholedAt = 0;
    let healed: Promise<void> | undefined;
    const transfer = pacedUpload(connect.port, 16 * MB, 256 * 1024, (sent) => {
      if (sent < 2 * MB || healed) return;
      proxy.setMode('blackhole');
      blackholedAt = performance.now();
      // Longer than the ping deadline (both ends drop the socket), shorter than the resume window.
      healed = new Promise((resolve) =>
        setTimeout(() => {
          proxy.setMode('pass');
          resolve();
        }, 4500),
      );
    });
    await lineAfter(connect, from, new RegExp(`^${agentId}/${SERVICE} hub connection lost`));
    const detectedMs = performance.now() - blackholedAt;
    await healed;
    const healedAt = performance.now();
    const back = await lineAfter(connect, from, new RegExp(`^${agentId}/${SERVICE} back via relay after`));
    const resumedMs = performance.now() - healedAt;
    expect(back).not.toContain('new session');
    const result = await transfer;
    expect(result).toEqual({ intact: true, answer: expect.stringMatching(/^HASH /) as string });
    expect(await sessionsOf(hub, agentId)).toHaveLength(1);
    report(
      `remote network drop (4.5 s blackhole): detected ${seconds(detectedMs)}, ` +
        `resumed ${seconds(resumedMs)} after the network returned; the 16 MB upload in flight arrived intact`,
    );
  });

  it('the farm↔hub leg slows past the health-ping deadline, its socket alive: the same session carries the transfer intact', async () => {
    rig = await TunnelRig.create();
    const agentId = 'pc-late';
    const hub = await rig.hub({ hubId: 'failures-late' });
    const proxy = await ChaosProxy.start({ port: hub.port });
    rig.defer(() => proxy.stop());
    // Relay only: a direct path would carry the data around the slow leg.
    const farm = await rig.farm(agentId, [proxy.url], hub, { tunnel: { direct: false } });
    await farm.linked();
    const connect = await rig.connect(agentId, [hub.url], { noDirect: true });
    expect((await upload(connect.port, 1 * MB)).intact).toBe(true);
    const [before] = await sessionsOf(hub, agentId);
    expect(before).toBeDefined();

    // From 1 MB on, every byte between farm and hub takes 2 s each way: the session's health pings come
    // back after about 4 s, past their 3 s deadline, and frames keep arriving every ping interval, so
    // neither end of the socket finds it silent; the resume window is 8 s.
    let slowedAt = 0;
    const transfer = pacedUpload(connect.port, 3 * MB, 128 * 1024, (sent) => {
      if (sent < 1 * MB || slowedAt !== 0) return;
      proxy.setDelay(2000);
      slowedAt = performance.now();
    });
    const relayRecovery = async () =>
      (await farm.agent.snapshot()).tunnel?.sessions[0]?.recoveries.find((r) =>
        r.reason.startsWith('relay path stopped answering health pings'),
      );
    const recovery = await waitUntil('the farm to record its relay answering again', relayRecovery, 30_000, 50);
    const revivedMs = performance.now() - slowedAt;
    const result = await transfer;
    expect(result).toEqual({ intact: true, answer: expect.stringMatching(/^HASH /) as string });
    const after = await sessionsOf(hub, agentId);
    expect(after.map((s) => s.session_id)).toEqual([before?.session_id]);
    expect((await farm.agent.snapshot()).tunnel).toMatchObject({
      sessions: [{ session_id: before?.session_id }],
      closed_total: 0,
    });
    expect(connect.lines().some((l) => l.includes('new session'))).toBe(false);
    report(
      `farm↔hub leg slowed to 2 s each way: the farm's relay missed its ping deadline and answered again after ` +
        `${String(recovery.took_ms)} ms (${seconds(revivedMs)} after the slowdown), same session, the 3 MB upload intact`,
    );
  });

  it('remote network drops longer than the resume window: the farm ends the session itself, then a new one works', async () => {
    rig = await TunnelRig.create();
    const agentId = 'pc-outage';
    const hub = await rig.hub({ hubId: 'failures-outage', resumeWindowMs: 4000 });
    const farm = await rig.farm(agentId, [hub.url], hub);
    await farm.linked();
    const proxy = await ChaosProxy.start({ port: hub.port });
    rig.defer(() => proxy.stop());
    const connect = await rig.connect(agentId, [proxy.url]);
    expect((await upload(connect.port, 2 * MB)).intact).toBe(true);
    const [held] = (await farm.agent.snapshot()).tunnel?.sessions ?? [];
    expect(held).toBeDefined();

    proxy.setMode('blackhole');
    const blackholedAt = performance.now();
    // The farm gives up on the session by itself: gone from its snapshot, logged with the reason.
    await waitUntil(
      'the farm to end the session (resume_window_expired)',
      async () =>
        (await farm.agent.snapshot()).tunnel?.sessions.length === 0 &&
        farm.agent.cli.stdout.includes(`Session ${held?.session_id ?? '?'}`) &&
        /closed: resume_window_expired/.test(farm.agent.cli.stdout),
      30_000,
      50,
    );
    const endedMs = performance.now() - blackholedAt;
    expect(await sessionsOf(hub, agentId)).toHaveLength(0);

    const from = connect.lines().length;
    proxy.setMode('pass');
    const healedAt = performance.now();
    expect((await upload(connect.port, 4 * MB)).intact).toBe(true);
    const recoveredMs = performance.now() - healedAt;
    await lineAfter(connect, from, new RegExp(`^${agentId}/${SERVICE} back via relay after .*\\(new session\\)`));
    expect(await sessionsOf(hub, agentId)).toHaveLength(1);
    report(
      `remote network outage past a 4 s resume window: farm ended the session ${seconds(endedMs)} after the drop; ` +
        `first connection through ${seconds(recoveredMs)} after the network returned (new session)`,
    );
  });

  it('either side restarts: the same client replaces its session at once; the farm stopping or dying is waited out', async () => {
    rig = await TunnelRig.create();
    const agentId = 'pc-restarts';
    const hub = await rig.hub({ hubId: 'failures-restarts' });
    const farm = await rig.farm(agentId, [hub.url], hub);
    await farm.linked();
    const connect = await rig.connect(agentId, [hub.url]);
    expect((await upload(connect.port, 1 * MB)).intact).toBe(true);
    const [before] = await sessionsOf(hub, agentId);

    // The client dies and is started again with the same arguments: one session, the old one replaced.
    connect.cli.kill('SIGKILL');
    await connect.cli.exited;
    const restartedAt = performance.now();
    await connect.start();
    expect((await upload(connect.port, 1 * MB)).intact).toBe(true);
    const clientBackMs = performance.now() - restartedAt;
    const after = await sessionsOf(hub, agentId);
    expect(after).toHaveLength(1);
    expect(after[0]?.session_id).not.toBe(before?.session_id);
    expect(after[0]?.client_key).toBe(before?.client_key);
    await hub.waitForLog(
      'the old session ended as replaced',
      (l) => l.session === before?.session_id && l.code === 'replaced',
    );
    expect(connect.lines().join('\n')).not.toMatch(/already registered/);
    expect(hub.logs.some((l) => /already registered/.test(l.msg))).toBe(false);

    // The farm stops on purpose: the client says the farm is away, opens again by itself and waits.
    for (const how of ['SIGTERM', 'SIGKILL'] as const) {
      const from = connect.lines().length;
      const stoppedAt = performance.now();
      if (how === 'SIGTERM') await farm.agent.stop();
      else await farm.agent.kill();
      await lineAfter(connect, from, new RegExp(`^${agentId}/${SERVICE} farm unavailable, reconnecting$`));
      const detectedMs = performance.now() - stoppedAt;
      const startedAt = performance.now();
      await farm.start();
      // Nobody touches the client: it opens the new session on its own as soon as the farm is back.
      await lineAfter(connect, from, new RegExp(`^${agentId}/${SERVICE} back via relay after .*\\(new session\\)`));
      const sessionMs = performance.now() - startedAt;
      const results = await Promise.all(Array.from({ length: 20 }, () => upload(connect.port, 512 * 1024)));
      expect(results.filter((r) => !r.intact)).toEqual([]);
      expect(await sessionsOf(hub, agentId)).toHaveLength(1);
      report(
        `farm restart (${how}): unavailable printed ${seconds(detectedMs)} after the signal; new session ` +
          `${seconds(sessionMs)} after the agent was started again (process start included); 20 streams intact`,
      );
    }
    report(
      `client restart (SIGKILL): first connection through ${seconds(clientBackMs)} after connect was started again`,
    );
  });

  it('the broker restarts during a transfer: both ends reconnect, the session resumes, the transfer is intact', async () => {
    rig = await TunnelRig.create();
    const agentId = 'pc-hub-restart';
    // A resume window that outlasts the agent's reconnect backoff on a busy machine.
    const hubOptions = { hubId: 'failures-hub-restart', resumeWindowMs: 20_000 };
    let hub = await rig.hub(hubOptions);
    const farm = await rig.farm(agentId, [hub.url], hub);
    await farm.linked();
    const connect = await rig.connect(agentId, [hub.url]);
    const from = connect.lines().length;
    let killedAt = 0;
    let restarted: Promise<HubProcess> | undefined;
    const transfer = pacedUpload(connect.port, 12 * MB, 256 * 1024, (sent) => {
      if (sent < 2 * MB || restarted) return;
      killedAt = performance.now();
      restarted = hub.kill().then(() => rig.hub({ ...hubOptions, port: hub.port }));
    });
    await waitUntil('the hub killed', () => restarted, 60_000);
    hub = await (restarted as unknown as Promise<HubProcess>);
    const upAt = performance.now();
    const back = await lineAfter(connect, from, new RegExp(`^${agentId}/${SERVICE} back via relay after`), 60_000);
    const resumedMs = performance.now() - upAt;
    expect(back).not.toContain('new session');
    const result = await transfer;
    expect(result.intact).toBe(true);
    expect(await sessionsOf(hub, agentId)).toHaveLength(1);
    report(
      `hub SIGKILL + restart: hub back ${seconds(upAt - killedAt)} after the kill; the client's session resumed ` +
        `${seconds(resumedMs)} after that; the 12 MB upload in flight arrived intact`,
    );
  });

  it('the broker drains: farm and client move to the next hub in their lists and new connections work', async () => {
    rig = await TunnelRig.create();
    const agentId = 'pc-drain';
    const [a, b] = await Promise.all([
      rig.hub({ hubId: 'failures-a', resumeWindowMs: 20_000 }),
      rig.hub({ hubId: 'failures-b', resumeWindowMs: 20_000 }),
    ]);
    const farm = await rig.farm(agentId, [a.url, b.url], a);
    await farm.linked();
    const connect = await rig.connect(agentId, [a.url, b.url]);
    expect((await sessionsOf(a, agentId)).length).toBe(1);
    const from = connect.lines().length;
    let drainedAt = 0;
    let drained = false;
    const transfer = pacedUpload(connect.port, 12 * MB, 256 * 1024, (sent) => {
      if (sent < 2 * MB || drained) return;
      drained = true;
      drainedAt = performance.now();
      a.signal('SIGTERM');
    });
    const back = await lineAfter(connect, from, new RegExp(`^${agentId}/${SERVICE} back via relay after`), 60_000);
    const movedMs = performance.now() - drainedAt;
    const result = await transfer;
    await waitUntil('the session on hub B', async () => (await sessionsOf(b, agentId)).length === 1, 30_000);
    const results = await Promise.all(Array.from({ length: 20 }, () => upload(connect.port, 512 * 1024)));
    expect(results.filter((r) => !r.intact)).toEqual([]);
    report(
      `hub drain (SIGTERM on A): client back on B ${seconds(movedMs)} after the signal ` +
        `(${back.includes('new session') ? 'new session' : 'same session resumed'}); ` +
        `transfer in flight ${result.intact ? 'arrived intact' : `was cut (${result.answer || 'closed'})`}`,
    );
    // Either the session resumed and the transfer is intact, or it was closed cleanly (no wrong bytes).
    expect(result.intact || result.answer === '').toBe(true);
  });

  it('idle sessions end on every side with idle_timeout; the listener stays and a new connection works', async () => {
    rig = await TunnelRig.create();
    const agentId = 'pc-idle';
    const hub = await rig.hub({ hubId: 'failures-idle', args: ['--tunnel-idle-timeout-ms', '1500'] });
    const farm = await rig.farm(agentId, [hub.url], hub);
    await farm.linked();
    const connect = await rig.connect(agentId, [hub.url]);
    const from = connect.lines().length;
    expect((await upload(connect.port, 1 * MB)).intact).toBe(true);
    const lastUse = performance.now();
    await lineAfter(connect, from, new RegExp(`^${agentId}/${SERVICE} session ended \\(idle_timeout\\): `));
    const endedMs = performance.now() - lastUse;
    await waitUntil(
      'the farm to end the session (idle_timeout)',
      async () =>
        (await farm.agent.snapshot()).tunnel?.sessions.length === 0 &&
        /closed: idle_timeout/.test(farm.agent.cli.stdout),
      20_000,
      50,
    );
    expect(await sessionsOf(hub, agentId)).toHaveLength(0);
    expect((await farm.agent.snapshot()).tunnel?.closed_total).toBeGreaterThanOrEqual(1);

    const again = performance.now();
    expect((await upload(connect.port, 2 * MB)).intact).toBe(true);
    const reopenMs = performance.now() - again;
    expect(await sessionsOf(hub, agentId)).toHaveLength(1);
    report(
      `idle session (1.5 s limit): ended ${seconds(endedMs)} after the last use; ` +
        `next connection through ${seconds(reopenMs)} (new session)`,
    );
  });
});
