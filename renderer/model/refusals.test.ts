import { describe, expect, it } from 'vitest';
import type { PanelServer, Snapshot } from '../../protocol/agent-host.js';
import { hubRefusals } from './refusals.js';

const server = (index: number, over: Partial<PanelServer> = {}): PanelServer => ({
  index,
  url: `ws://hub${index}/api/v1/pc/ws`,
  configured_url: `https://hub${index}`,
  role: index === 0 ? 'primary' : 'fallback',
  status: 'failed',
  attempts: 3,
  failures: 3,
  registrations: 0,
  last_error: null,
  last_success_at: null,
  ...over,
});

const closed = (code: number, said: string, at = 5000) => ({
  code: 'closed_by_hub' as const,
  close_code: code,
  message: `Hub closed the connection: ${code} NAME "${said}"`,
  at,
});

const snap = (
  servers: PanelServer[],
  hasToken = true,
  overridden: Snapshot['settings']['overridden'] = [],
): Pick<Snapshot, 'servers' | 'agent' | 'settings'> => ({
  servers,
  agent: { id: 'pc-017', name: 'Rack 3', version: '0.1.0' },
  settings: { has_token: hasToken, overridden } as Snapshot['settings'],
});

describe('hubRefusals (the banner for a hub that refuses this PC)', () => {
  it('says nothing while no hub refuses: network errors, a drain or a replaced session are not refusals', () => {
    expect(hubRefusals(snap([server(0, { status: 'active' })]))).toBeNull();
    expect(
      hubRefusals(snap([server(0, { last_error: { code: 'connect_refused', message: 'refused', at: 1 } })])),
    ).toBeNull();
    expect(hubRefusals(snap([server(0, { last_error: closed(1001, 'hub shutting down') })]))).toBeNull();
    expect(hubRefusals(snap([server(0, { last_error: closed(4409, 'replaced') })]))).toBeNull();
  });

  it("every server refuses the token: an error banner naming them, the code's meaning and the fix with this agent's id", () => {
    const banner = hubRefusals(
      snap([
        server(0, { last_error: closed(4401, "token signature does not match this hub's secret") }),
        server(1, { status: 'connecting', last_error: closed(4403, 'token is for agent "pc-9", hello says "pc-017"') }),
      ]),
    )!;
    expect(banner.scope).toBe('all');
    expect(banner.title).toBe("Every hub refuses this PC's token: this PC cannot connect until that is fixed");
    expect(banner.refusals).toMatchObject([
      {
        name: 'Primary',
        url: 'https://hub0',
        closeCode: 4401,
        codeName: 'UNAUTHORIZED',
        meaning: expect.stringMatching(/not valid there.*expired/) as string,
        hubSaid: "token signature does not match this hub's secret",
      },
      {
        name: 'Fallback #1',
        closeCode: 4403,
        codeName: 'FORBIDDEN',
        meaning: expect.stringMatching(/another agent id/) as string,
        hubSaid: 'token is for agent "pc-9", hello says "pc-017"',
      },
    ]);
    expect(banner.steps).toEqual([expect.stringContaining('`farmlink token --agent pc-017`')]);
    expect(banner.steps[0]).toContain('Settings → This agent → Replace token');
  });

  it('a single hub, and no token at all', () => {
    const banner = hubRefusals(snap([server(0, { last_error: closed(4401, 'no token') })], false))!;
    expect(banner.title).toBe(
      'The hub refuses this PC, which has no token: this PC cannot connect until that is fixed',
    );
    expect(banner.refusals[0]!.meaning).toBe('this PC has no token');
  });

  it('some servers refuse: a warning with different words, while the agent uses the others', () => {
    const banner = hubRefusals(
      snap([
        server(0, { status: 'active', registrations: 1, last_success_at: 6000 }),
        server(1, { last_error: closed(4401, 'token expired') }),
      ]),
    )!;
    expect(banner.scope).toBe('some');
    expect(banner.title).toBe(
      "Fallback #1 refuses this PC's token: the agent uses the others, but cannot fall back to it",
    );
    expect(banner.refusals.map((r) => r.index)).toEqual([1]);
  });

  it('a token set by a flag or the environment is to be replaced there: Settings cannot', () => {
    const banner = hubRefusals(
      snap([server(0, { last_error: closed(4403, 'token is for agent "x"') })], true, [
        { path: 'agent.token', source: 'FARMLINK_AGENT_TOKEN (environment)' },
      ]),
    )!;
    expect(banner.steps).toEqual([
      expect.stringContaining(
        'through FARMLINK_AGENT_TOKEN (environment), which sets its token now, and restart the agent',
      ),
    ]);
    expect(banner.steps[0]).not.toContain('Settings');
  });

  it('a token given with --token is replaced through a token file, never through --token again', () => {
    const banner = hubRefusals(
      snap([server(0, { last_error: closed(4401, 'token expired') })], true, [
        { path: 'agent.token', source: '--token' },
      ]),
    )!;
    expect(banner.steps[0]).toContain('--token-file FILE');
    expect(banner.steps[0]).toContain('--out FILE');
    expect(banner.steps[0]).not.toMatch(/through --token\b/);
  });

  it('a token read from a file named by a flag or the environment is replaced in that file', () => {
    const banner = hubRefusals(
      snap([server(0, { last_error: closed(4401, 'token expired') })], true, [
        { path: 'agent.token_file', source: '--token-file' },
      ]),
    )!;
    expect(banner.steps).toEqual([
      expect.stringContaining('put the token in the file named by --token-file, then restart the agent'),
    ]);
  });

  it('a version refusal asks for an update, not a token', () => {
    const banner = hubRefusals(
      snap([server(0, { last_error: closed(4426, 'protocol 2 unsupported; this hub speaks 1') })]),
    )!;
    expect(banner.title).toMatch(/FarmLink version/);
    expect(banner.steps).toEqual([expect.stringMatching(/same version/)]);
  });

  it('forgets a refusal the hub has since got over (registered after it)', () => {
    expect(
      hubRefusals(
        snap([server(0, { status: 'ok', last_error: closed(4401, 'token expired', 5000), last_success_at: 7000 })]),
      ),
    ).toBeNull();
  });
});
