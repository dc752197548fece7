import { describe, expect, it } from 'vitest';
import { tunnelEndpointFor } from './tunnel-servers.js';

describe('tunnelEndpointFor', () => {
  it("puts the tunnel path where the agent's was, keeping a hub's path prefix", () => {
    expect(tunnelEndpointFor('wss://adb.example.com/api/v1/pc/ws')).toBe('wss://adb.example.com/api/v1/tunnel');
    expect(tunnelEndpointFor('ws://127.0.0.1:42001/farm/api/v1/pc/ws')).toBe('ws://127.0.0.1:42001/farm/api/v1/tunnel');
  });

  it('uses the origin of a ws URL written with another path', () => {
    expect(tunnelEndpointFor('ws://10.0.0.2:9000/custom?x=1')).toBe('ws://10.0.0.2:9000/api/v1/tunnel');
  });
});
