import { createStore } from 'zustand/vanilla';
import type {
  AgentHostClient,
  FieldProblem,
  HostError,
  LogEntry,
  SettingsInput,
  Snapshot,
} from '../../protocol/agent-host.js';
import type { LogLevel, ProtocolModeSetting } from '../../protocol/config.js';
import type { LinkStatus } from '../bridge/link-status.js';
import { modeSwitchSettled, startModeSwitch, type ModeSwitch } from '../model/mode.js';

const MAX_LOGS = 1000;

export interface PanelState {
  /** The panel's own link to the agent (not the agent's link to the hub). */
  link: LinkStatus;
  snapshot: Snapshot | null;
  /** host clock − local clock, so countdowns use the agent's time. */
  clockOffsetMs: number;
  logs: LogEntry[];
  logLevel: LogLevel;
  /** The last action that failed, for a notice. */
  error: HostError | null;
  /** A protocol mode switch asked for from the panel and not yet over (see modeSwitchSettled). */
  modeSwitch: ModeSwitch | null;
  /** Why the last mode switch was refused, shown in the mode card until the next one. */
  modeError: HostError | null;
  settingsProblems: FieldProblem[];
  saving: boolean;
  /** Set after a successful save: where it went. */
  savedTo: string | null;
}

export interface PanelActions {
  setLink(link: LinkStatus): void;
  start(): Promise<void>;
  reconnectNow(): Promise<void>;
  setMode(mode: ProtocolModeSetting): Promise<void>;
  /** Saves and applies; false with `settingsProblems` filled when anything was refused. */
  saveSettings(settings: SettingsInput): Promise<boolean>;
  setLogLevel(level: LogLevel): Promise<void>;
  dismissError(): void;
}

export type PanelStore = ReturnType<typeof createPanelStore>;

/**
 * The panel's state: the latest snapshot from the agent (pushed, coalesced), the log tail, and
 * the outcome of the person's actions. Built over the typed client so it can be tested without a
 * browser or an agent.
 */
export function createPanelStore(client: AgentHostClient, now: () => number = () => Date.now()) {
  let subscribed = false;
  let started = false;
  let openedBefore = false;
  return createStore<PanelState & PanelActions>()((set, get) => {
    const applySnapshot = (snapshot: Snapshot) => {
      const sw = get().modeSwitch;
      set({
        snapshot,
        clockOffsetMs: snapshot.now - now(),
        ...(sw && modeSwitchSettled(sw, snapshot) ? { modeSwitch: null } : {}),
      });
    };
    const appendLogs = (entries: readonly LogEntry[]) => {
      const min = LEVEL_RANK[get().logLevel];
      const lastSeq = get().logs.at(-1)?.seq ?? 0;
      const fresh = entries.filter((e) => e.seq > lastSeq && LEVEL_RANK[e.level] >= min);
      if (fresh.length === 0) return;
      set({ logs: [...get().logs, ...fresh].slice(-MAX_LOGS) });
    };
    return {
      link: 'connecting',
      snapshot: null,
      clockOffsetMs: 0,
      logs: [],
      logLevel: 'info',
      error: null,
      modeSwitch: null,
      modeError: null,
      settingsProblems: [],
      saving: false,
      savedTo: null,

      setLink(link) {
        const was = get().link;
        const error = get().error;
        // A transport error is about the link that just came back: it no longer applies.
        set({ link, ...(link === 'open' && error?.code === 'TRANSPORT' ? { error: null } : {}) });
        if (link !== 'open' || was === 'open') return;
        // The first open delivers the calls start() queued; any later one is the panel's socket
        // coming back, after which everything is fetched again rather than trusting a gap.
        if (openedBefore && started) void get().start();
        openedBefore = true;
      },

      async start() {
        started = true;
        if (!subscribed) {
          subscribed = true;
          client.on('snapshot', applySnapshot);
          client.on('logs', appendLogs);
        }
        const [snapshot, logs] = await Promise.all([
          client.call('getSnapshot', {}),
          client.call('tailLogs', { limit: 500, min_level: get().logLevel }),
        ]);
        if (snapshot.ok) applySnapshot(snapshot.value);
        else set({ error: snapshot.error });
        if (logs.ok) set({ logs: logs.value });
      },

      async reconnectNow() {
        const result = await client.call('reconnectNow', {});
        if (!result.ok) set({ error: result.error });
      },

      async setMode(mode) {
        const sw = startModeSwitch(mode, get().snapshot);
        set({ modeSwitch: sw, modeError: null });
        const result = await client.call('setMode', { mode });
        if (!result.ok) {
          // Shown in the mode card, beside the choice that was refused, rather than a second time on top.
          set({ modeError: result.error, modeSwitch: null });
          return;
        }
        // The snapshot that shows the switch over may have come before the answer.
        const snapshot = get().snapshot;
        if (get().modeSwitch === sw && snapshot && modeSwitchSettled(sw, snapshot)) set({ modeSwitch: null });
      },

      async saveSettings(settings) {
        set({ saving: true, settingsProblems: [], savedTo: null });
        const result = await client.call('saveSettings', { settings });
        if (result.ok) {
          set({ saving: false, savedTo: result.value.file });
          return true;
        }
        set({
          saving: false,
          settingsProblems: result.error.problems ?? [],
          error: result.error.problems ? null : result.error,
        });
        return false;
      },

      async setLogLevel(level) {
        set({ logLevel: level });
        const logs = await client.call('tailLogs', { limit: 500, min_level: level });
        if (logs.ok) set({ logs: logs.value });
      },

      dismissError() {
        set({ error: null });
      },
    };
  });
}

const LEVEL_RANK: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4, fatal: 5, silent: 6 };
