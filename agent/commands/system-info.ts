import os from 'node:os';
import type { SystemUsage } from '../system/system-usage.js';
import type { CommandHandler } from './registry.js';

/** `system.info`: what the hub's operator needs to know about this PC. */
export function systemInfoCommand(usage: SystemUsage, agentVersion: string): CommandHandler {
  return () => {
    const cpus = os.cpus();
    const sample = usage.sample();
    return Promise.resolve({
      hostname: os.hostname(),
      platform: process.platform,
      arch: process.arch,
      os_release: os.release(),
      os_version: typeof os.version === 'function' ? os.version() : null,
      cpu_model: cpus[0]?.model ?? null,
      cpu_count: cpus.length,
      total_memory_bytes: os.totalmem(),
      free_memory_bytes: os.freemem(),
      cpu_usage: sample.cpu_usage,
      ram_usage: sample.ram_usage,
      uptime_s: Math.round(os.uptime()),
      agent_version: agentVersion,
      agent_uptime_s: Math.round(process.uptime()),
      node_version: process.version,
    });
  };
}
