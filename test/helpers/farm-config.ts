import fs from 'node:fs';
import path from 'node:path';

export interface FarmConfig {
  /** Primary first; the rest become `server.fallback_urls`. */
  servers: string[];
  agentId: string;
  /** The agent token: written to `agent-token` beside the config and named by `agent.token_file`. */
  token: string;
  /** `tunnel.services`: name → "host:port". */
  services: Record<string, string>;
  /** Other `tunnel:` keys (direct, address_check_interval). */
  tunnel?: Record<string, string | number | boolean>;
}

/**
 * The config of a farm PC in the tunnel's tests and bench: its hubs, its id and token, no adb device
 * tracking (nothing here has phones), and the services it exposes. Returns the config file's path.
 */
export function writeFarmConfig(dir: string, config: FarmConfig): string {
  const tokenFile = path.join(dir, 'agent-token');
  fs.writeFileSync(tokenFile, config.token);
  const [primary, ...fallbacks] = config.servers;
  const services = Object.entries(config.services);
  const configFile = path.join(dir, 'agent.yaml');
  fs.writeFileSync(
    configFile,
    [
      'server:',
      `  url: ${primary ?? ''}`,
      ...(fallbacks.length > 0 ? ['  fallback_urls:', ...fallbacks.map((url) => `    - ${url}`)] : []),
      'agent:',
      `  id: ${config.agentId}`,
      `  token_file: ${tokenFile}`,
      'adb:',
      '  track_devices: false',
      'tunnel:',
      ...Object.entries(config.tunnel ?? {}).map(([key, value]) => `  ${key}: ${String(value)}`),
      services.length === 0 ? '  services: {}' : '  services:',
      ...services.map(([name, target]) => `    ${name}: "${target}"`),
      '',
    ].join('\n'),
  );
  return configFile;
}
