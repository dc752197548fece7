import { describe, expect, it } from 'vitest';
import { SAMPLE_TUNNELS, sampleTunnelSession } from '../../protocol/fake-host.fixture.js';
import { TunnelSummarySchema } from '../../protocol/tunnel.js';
import { noSessionsText, sessionRow, tunnelLinkView } from './tunnel-labels.js';

const NOW = 1_000_000;

describe('tunnel labels', () => {
  it('the sample states pass the snapshot schema', () => {
    for (const make of Object.values(SAMPLE_TUNNELS)) expect(TunnelSummarySchema.parse(make())).toEqual(make());
  });

  it('says how to turn the tunnel on when nothing is exposed', () => {
    const off = SAMPLE_TUNNELS.off();
    expect(tunnelLinkView(off, NOW)).toMatchObject({ tone: 'neutral', label: 'Off' });
    expect(tunnelLinkView(off, NOW).detail).toContain('add tunnel.services to the config');
    expect(noSessionsText(off)).toBe('Nothing can connect: no services are exposed.');
  });

  it('says why it waits and when it tries again', () => {
    expect(tunnelLinkView(SAMPLE_TUNNELS.waiting(), NOW)).toEqual({
      tone: 'bad',
      label: 'Waiting',
      detail: 'No broker reachable (connect ECONNREFUSED 203.0.113.5:443). Next attempt in 4s.',
    });
    expect(tunnelLinkView(SAMPLE_TUNNELS.waiting(), NOW + 5000).detail).toMatch(/Trying again now\.$/);
  });

  it('says where the PC is reachable when connected, and how to connect when no one is', () => {
    const idle = SAMPLE_TUNNELS.idle();
    expect(tunnelLinkView(idle, NOW)).toEqual({
      tone: 'good',
      label: 'Connected',
      detail: 'Reachable through wss://hub.example.com/api/v1/tunnel, which sees this PC at 198.51.100.23:53122.',
    });
    expect(noSessionsText(idle)).toBe(
      'No one is connected. A client connects with: farmlink connect AGENT_ID SERVICE --hub URL --listen PORT (3 sessions ended since the agent started).',
    );
  });

  it('shows who, which service, path, RTT, bytes, streams, state and since when', () => {
    expect(sessionRow(sampleTunnelSession(), NOW)).toMatchObject({
      who: 'alice',
      service: 'adb',
      path: 'relay',
      rtt: '3.4 ms',
      bytesIn: '1.3 MB',
      bytesOut: '48 MB',
      streams: '2 open / 17',
      state: { label: 'Active', tone: 'good' },
      since: '12m 34s',
      lastRecovery: null,
    });
    const [, direct, away] = SAMPLE_TUNNELS.busy().sessions;
    expect(sessionRow(direct!, NOW)).toMatchObject({
      path: 'direct',
      lastRecovery: 'direct up: direct path answered for 10 s',
    });
    expect(sessionRow(away!, NOW)).toMatchObject({ rtt: '—', state: { label: 'Degraded', tone: 'warn' } });
  });
});
