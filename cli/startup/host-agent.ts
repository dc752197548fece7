import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { resolveAgentSettings } from '../../agent/config/agent-settings.js';
import type { ConfigOverride } from '../../agent/config/load-config.js';
import { defaultConfigPath } from '../../agent/config/paths.js';
import { privateDataDir, tightenDataDir } from '../../agent/config/private-files.js';
import { AgentHost, type EventSender } from '../../agent/host/agent-host.js';
import { LmdbOutbox } from '../../agent/outbox/lmdb-outbox.js';
import type { OutboxStore } from '../../agent/outbox/outbox-store.js';
import { systemClock } from '../../lib/clock.js';
import { errorInfo } from '../../lib/errors.js';
import { LogBuffer } from '../../agent/host/log-buffer.js';
import type { LocalHub } from '../../agent/host/local-hub.js';
import { createLogger, type ConsoleFormat } from '../../agent/log/logger.js';
import { processSecrets } from '../../agent/log/secrets.js';
import { PanelServer, isLoopbackHost } from '../../agent/panel/panel-server.js';
import { loadOrCreatePanelToken } from '../../agent/panel/panel-token.js';
import { findRendererDir } from '../../agent/panel/static-files.js';
import { ConfigError } from '../../lib/errors.js';
import { PanelSectionSchema, type AgentConfig } from '../../protocol/config.js';
import { InternalErrorRecovery } from '../internal-errors.js';
import { PANEL_ADDRESS_FILE, startedBy, type AgentLock } from './agent-lock.js';

export interface HostAgentInput {
  config: AgentConfig;
  file: string | undefined;
  overrides: ConfigOverride[];
  dataDir: string;
  consoleFormat: ConsoleFormat;
  /** This process's claim on the data dir (AgentLock.claim), taken before anything was started. */
  lock: AgentLock;
  runsIn: 'headless' | 'desktop';
  /** The headless panel server (panel.enabled); the desktop app shows the panel in its own window. */
  servePanel: boolean;
  /** The log tail the panel shows; the desktop app shares one with its other loggers. */
  logs?: LogBuffer;
  /** Set when a local hub runs in this process. */
  localHub?: (LocalHub & { stop: () => Promise<void> }) | undefined;
  /** Where `sendEvents` hands events (AgentHostOptions.events). */
  events?: EventSender;
}

export interface HostedAgent {
  readonly host: AgentHost;
  readonly logger: Logger;
  /** The panel's address with its key, when this process serves one. */
  readonly panelUrl: string | undefined;
  /** The graceful path: panel, agent (disconnecting from the hub), local hub, logs, then the lock. */
  stop(): Promise<void>;
}

/**
 * Runs the agent in this process — what `farmlink agent`, `farmlink start` and the desktop app
 * (when no agent runs on the PC) all do: the data dir made private, the loggers, the AgentHost,
 * the recovery from internal errors, and the headless panel. The caller decides when to stop.
 */
export async function hostAgent(input: HostAgentInput): Promise<HostedAgent> {
  const { config, dataDir, lock } = input;
  const panelConfig = config.panel;
  const servePanel = input.servePanel && panelConfig.enabled;
  if (servePanel && !isLoopbackHost(panelConfig.host) && !panelConfig.allow_remote) {
    throw new ConfigError([
      `panel.host: ${panelConfig.host} is not a loopback address, so anyone on that network could open the ` +
        `panel; use 127.0.0.1, or set panel.allow_remote: true (--panel-allow-remote) if you mean it`,
    ]);
  }
  // What older versions left looser is tightened once everything is open (tightenDataDir below).
  privateDataDir(dataDir);
  processSecrets.add(config.agent.token);
  const logs = input.logs ?? new LogBuffer();
  const settings = resolveAgentSettings(config, { file: input.file, dataDir });
  const { log } = settings;
  const { logger, close: closeLog } = await createLogger({
    level: log.level,
    console: input.consoleFormat,
    component: 'agent',
    memory: logs,
    file: log.file ? { path: log.file, maxSizeMb: log.maxSizeMb, maxFiles: log.maxFiles } : null,
  });
  if (log.file) logger.debug({ file: log.file }, `Logging to ${log.file}`);
  const stale = lock.replacedStale;
  if (stale) {
    // An agent that was killed or lost power: its lock is replaced, and saying so explains the gap.
    logger.warn(
      { stale_lock: stale },
      `The agent before this one (pid ${stale.pid}, started by ${startedBy(stale)} at ` +
        `${new Date(stale.started_at).toISOString()}) ended without stopping cleanly; its lock on ${dataDir} ` +
        `was taken over`,
    );
  }
  // The outbox is the host's, not an agent's: it outlives agents replaced by new settings. If it
  // cannot be opened the agent still connects (and says why it accepts no events).
  let outbox: OutboxStore | undefined;
  let outboxProblem: string | undefined;
  try {
    outbox = await LmdbOutbox.open({
      dir: path.join(dataDir, 'outbox'),
      maxMessages: settings.outbox.maxMessages,
      maxBytes: settings.outbox.maxBytes,
      sync: settings.outbox.sync,
      ...(settings.outbox.defaultTtlMs !== undefined ? { defaultTtlMs: settings.outbox.defaultTtlMs } : {}),
      clock: systemClock,
      logger,
    });
  } catch (error) {
    outboxProblem = errorInfo(error).message;
  }
  const host = new AgentHost({
    outbox,
    outboxProblem,
    config,
    configFile: input.file,
    defaultConfigFile: defaultConfigPath(),
    overrides: input.overrides,
    dataDir,
    logger,
    logs,
    localHub: input.localHub,
    runsIn: input.runsIn,
    ...(input.events ? { events: input.events } : {}),
  });
  const recovery = new InternalErrorRecovery({ logger, reset: (reason) => host.reconnectNow(reason) });
  const uninstallRecovery = recovery.install();
  host.start();

  let panel: PanelServer | undefined;
  let panelUrl: string | undefined;
  if (servePanel) {
    const panelToken = loadOrCreatePanelToken(dataDir);
    processSecrets.add(panelToken);
    panel = new PanelServer({
      host: panelConfig.host,
      port: panelConfig.port,
      allowRemote: panelConfig.allow_remote,
      fallbackToFreePort: panelConfig.port === DEFAULT_PANEL_PORT,
      token: panelToken,
      rendererDir: findRendererDir(),
      agentHost: host,
      logger,
    });
    panelUrl = await panel.listen();
    const address = panelUrl.replace(/#.*$/, '');
    const tokenFile = path.join(dataDir, 'panel-token');
    // The token is a key to this PC's settings: it never goes to a log (files, the panel's tail,
    // a pipe). Scripts read the `event: panel` line for the address and the token file for the
    // key; a person at a terminal gets the whole URL once, outside the logs.
    logger.info(
      { event: 'panel', url: address, token_file: tokenFile },
      `Panel: ${address} (its key is in ${tokenFile}; \`farmlink panel-url\` prints the full address)`,
    );
    fs.writeFileSync(path.join(dataDir, PANEL_ADDRESS_FILE), `${address}\n`, { mode: 0o600 });
    lock.setPanel(address);
  }
  tightenDataDir(dataDir);

  return {
    host,
    logger,
    panelUrl,
    stop: async () => {
      recovery.stop();
      await panel?.close();
      if (panel) fs.rmSync(path.join(dataDir, PANEL_ADDRESS_FILE), { force: true });
      await host.stop();
      await input.localHub?.stop();
      lock.release();
      logger.info('Agent stopped');
      await closeLog();
      uninstallRecovery();
    },
  };
}

const DEFAULT_PANEL_PORT = PanelSectionSchema.parse({}).port;
