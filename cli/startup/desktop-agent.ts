import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { HostEvents } from '../../agent/host/agent-host.js';
import type { AgentHostHandlers } from '../../agent/host/call-router.js';
import type { LogBuffer } from '../../agent/host/log-buffer.js';
import { systemClock, type Clock, type TimerHandle } from '../../lib/clock.js';
import { FarmlinkError, errorInfo } from '../../lib/errors.js';
import { TypedEmitter } from '../../lib/events.js';
import type { Snapshot } from '../../protocol/agent-host.js';
import type { ProtocolModeSetting } from '../../protocol/config.js';
import { AgentRunningError, runningAgent, type AgentLockInfo } from './agent-lock.js';
import { dataDirFrom } from './flags.js';
import type { HostedAgent } from './host-agent.js';
import { PanelAttachment } from './panel-attachment.js';
import { startAgent, type StartFlagValues } from './start-agent.js';

export interface DesktopAgentOptions {
  values: StartFlagValues;
  /** The desktop app's own lines: what it decided and why. */
  logger: Logger;
  /** For a local hub, when this app runs the agent with nothing configured. */
  hubLogger: Logger;
  /** The log tail the panel shows when this app runs the agent. */
  logs: LogBuffer;
  /** Where FARMLINK_* settings and the default config path come from [process.env]. */
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  /** Between tries to attach to an agent that runs but does not answer yet [1 s]. */
  retryMs?: number;
  /** How long an agent that runs may take to answer before start-up gives up [15 s]. */
  patienceMs?: number;
}

type Current = { kind: 'hosted'; hosted: HostedAgent } | { kind: 'attached'; attachment: PanelAttachment };

/**
 * The agent as the desktop app shows it. One agent runs per PC: if one runs for this data dir (a
 * service, `farmlink agent`), the app attaches to it through its panel API; otherwise the app runs
 * it in this process, through the same start-up path as the CLI. Either way the IPC, the tray and
 * the panel see one object. If the agent it attached to goes away, the decision is made again: it
 * attaches to the one that comes back, or runs the agent itself.
 */
export class DesktopAgent {
  readonly events = new TypedEmitter<HostEvents>();
  private current!: Current;
  private offCurrent: () => void = () => undefined;
  private stopping = false;
  private retryTimer: TimerHandle | undefined;
  private readonly clock: Clock;
  private readonly dataDir: string;
  private readonly decidedListeners = new Set<() => void>();

  private constructor(private readonly options: DesktopAgentOptions) {
    this.clock = options.clock ?? systemClock;
    this.dataDir = dataDirFrom(options.values);
  }

  static async open(options: DesktopAgentOptions): Promise<DesktopAgent> {
    const agent = new DesktopAgent(options);
    const deadline = agent.clock.monotonic() + (options.patienceMs ?? 15_000);
    for (;;) {
      try {
        agent.use(await agent.decide());
        return agent;
      } catch (error) {
        if (!(error instanceof AttachPending) || agent.clock.monotonic() >= deadline) throw unwrap(error);
        await agent.sleep();
      }
    }
  }

  get mode(): Current['kind'] {
    return this.current.kind;
  }

  /** The pid of the process that runs the agent (this one when hosted). */
  get agentPid(): number {
    return this.snapshot().agent_process.pid;
  }

  snapshot(): Snapshot {
    return this.current.kind === 'hosted' ? this.current.hosted.host.snapshot() : this.current.attachment.snapshot();
  }

  /** Calls go to whichever agent is current when they are made. */
  handlers(): AgentHostHandlers {
    const pick = (): AgentHostHandlers =>
      this.current.kind === 'hosted' ? this.current.hosted.host.handlers() : this.current.attachment.handlers();
    return {
      getSnapshot: (input) => pick().getSnapshot(input),
      reconnectNow: (input) => pick().reconnectNow(input),
      setMode: (input) => pick().setMode(input),
      sendEvents: (input) => pick().sendEvents(input),
      saveSettings: (input) => pick().saveSettings(input),
      tailLogs: (input) => pick().tailLogs(input),
    };
  }

  reconnectNow(message: string): Promise<void> {
    if (this.current.kind === 'hosted') {
      this.current.hosted.host.reconnectNow(message);
      return Promise.resolve();
    }
    return Promise.resolve(this.current.attachment.handlers().reconnectNow({})).then(() => undefined);
  }

  async setMode(mode: ProtocolModeSetting): Promise<ProtocolModeSetting> {
    return (await this.handlers().setMode({ mode })).mode;
  }

  /** The OS woke or the network changed. An agent of another process watches for that itself. */
  systemEvent(kind: 'resume' | 'network', detail?: string): void {
    if (this.current.kind === 'hosted') this.current.hosted.host.systemEvent(kind, detail);
  }

  /** Called each time the agent shown changes (attached again, or now run here). */
  onDecided(listener: () => void): () => void {
    this.decidedListeners.add(listener);
    return () => this.decidedListeners.delete(listener);
  }

  /** Quitting the app: stops the agent it runs (gracefully), or only lets go of the one it attached to. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.clock.clearTimeout(this.retryTimer);
    this.offCurrent();
    if (this.current.kind === 'hosted') await this.current.hosted.stop();
    else this.current.attachment.close();
  }

  // ---- internals ----------------------------------------------------------------------------

  /** Attach to the agent that runs for this data dir, or run one here if none does. */
  private async decide(): Promise<Current> {
    const running = runningAgent(this.dataDir);
    if (running) return { kind: 'attached', attachment: await this.attach(running) };
    try {
      const hosted = await startAgent(this.options.values, {
        runner: 'desktop',
        runsIn: 'desktop',
        servePanel: false,
        consoleFormat: 'pretty',
        localHubWhenUnconfigured: true,
        hubLogger: this.options.hubLogger,
        logs: this.options.logs,
        ...(this.options.env ? { env: this.options.env } : {}),
      });
      this.options.logger.info(
        { data_dir: this.dataDir },
        `No agent runs for ${this.dataDir}: this app runs the agent (pid ${process.pid})`,
      );
      return { kind: 'hosted', hosted };
    } catch (error) {
      // Another process claimed the data dir between the look and the claim: attach to it instead.
      if (error instanceof AgentRunningError) return { kind: 'attached', attachment: await this.attach(error.running) };
      throw error;
    }
  }

  private async attach(running: AgentLockInfo): Promise<PanelAttachment> {
    const who = `the agent running on this PC (pid ${running.pid})`;
    if (!running.panel)
      throw new AttachPending(
        running,
        `${who} has no panel address yet, or runs without its panel (panel.enabled: false)`,
      );
    let token: string;
    try {
      token = fs.readFileSync(path.join(this.dataDir, 'panel-token'), 'utf8').trim();
    } catch (error) {
      throw new AttachPending(running, `cannot read the panel's key in ${this.dataDir}: ${errorInfo(error).message}`);
    }
    try {
      const attachment = await PanelAttachment.open({ address: running.panel, token });
      this.options.logger.info(
        { pid: running.pid, panel: running.panel },
        `Attached to ${who} through its panel at ${running.panel}: this app shows it and starts no agent of its own`,
      );
      return attachment;
    } catch (error) {
      throw new AttachPending(running, errorInfo(error).message);
    }
  }

  private use(next: Current): void {
    this.offCurrent();
    this.current = next;
    if (next.kind === 'hosted') {
      const offs = [
        next.hosted.host.events.on('changed', () => this.events.emit('changed', undefined)),
        next.hosted.host.events.on('log', (entry) => this.events.emit('log', entry)),
      ];
      this.offCurrent = () => offs.forEach((off) => off());
    } else {
      const { attachment } = next;
      const offs = [
        attachment.events.on('changed', () => this.events.emit('changed', undefined)),
        attachment.events.on('log', (entry) => this.events.emit('log', entry)),
        attachment.onLost((reason) => this.onLost(attachment, reason)),
      ];
      this.offCurrent = () => offs.forEach((off) => off());
    }
    this.events.emit('changed', undefined);
    for (const listener of this.decidedListeners) listener();
  }

  private onLost(attachment: PanelAttachment, reason: string): void {
    if (this.stopping) return;
    this.offCurrent();
    this.offCurrent = () => undefined;
    this.options.logger.warn(
      { pid: attachment.pid, reason },
      `The agent this app was attached to (pid ${attachment.pid}) went away (${reason}): deciding again whether to attach to a running agent or run one here`,
    );
    void this.redecide();
  }

  private async redecide(): Promise<void> {
    let reported = '';
    while (!this.stopped()) {
      try {
        const next = await this.decide();
        // The app may have quit while this was deciding.
        if (this.stopped()) {
          if (next.kind === 'hosted') await next.hosted.stop();
          else next.attachment.close();
          return;
        }
        this.use(next);
        return;
      } catch (error) {
        const message = errorInfo(error).message;
        // Said once per distinct reason: an agent that restarts slowly is not news every second.
        if (message !== reported)
          this.options.logger.warn(
            { err: error },
            `Could not attach or start the agent yet (${message}); trying again`,
          );
        reported = message;
        await this.sleep();
      }
    }
  }

  private stopped(): boolean {
    return this.stopping;
  }

  private sleep(): Promise<void> {
    return new Promise((resolve) => {
      this.retryTimer = this.clock.setTimeout(resolve, this.options.retryMs ?? 1000);
    });
  }
}

/** An agent runs for the data dir but cannot be attached to (yet): start-up waits a little, then gives up. */
class AttachPending extends FarmlinkError {
  constructor(
    readonly running: AgentLockInfo,
    reason: string,
  ) {
    super('AGENT_NOT_ATTACHABLE', reason);
  }
}

function unwrap(error: unknown): unknown {
  if (!(error instanceof AttachPending)) return error;
  const { running } = error;
  return new FarmlinkError(
    'AGENT_NOT_ATTACHABLE',
    `An agent already runs on this PC (pid ${running.pid}, started by ${running.runner === 'desktop' ? 'the desktop app' : `farmlink ${running.runner}`}), ` +
      `and this app cannot show it: ${error.message}. One agent runs per PC, so this app does not start a second one; ` +
      "turn that agent's panel on (panel.enabled: true), or stop it and open the app again",
  );
}
