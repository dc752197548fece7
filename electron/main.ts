import { app, ipcMain, powerMonitor, type BrowserWindow } from 'electron';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { resolveAgentSettings } from '../agent/config/agent-settings.js';
import { defaultConfigPath } from '../agent/config/paths.js';
import { trayModel, type TrayAction } from '../agent/desktop/tray-model.js';
import { AgentHost } from '../agent/host/agent-host.js';
import { LogBuffer } from '../agent/host/log-buffer.js';
import { subscribeFeed } from '../agent/host/snapshot-feed.js';
import { privateDataDir, tightenDataDir } from '../agent/config/private-files.js';
import { createLogger } from '../agent/log/logger.js';
/* eslint-disable no-restricted-imports -- the shells share their start-up wiring (flags, config and data-dir
   resolution, local-hub planning) and it still lives in cli/; it needs both agent/ and server/, so it cannot go
   to lib/. Follow-up: move it into a start-up module below cli/ and electron/ that both import. */
import { configFileFrom, dataDirFrom, overridesFrom } from '../cli/agent-command.js';
import { planAgentRun } from '../cli/local-mode.js';
import { START_FLAG_OPTIONS } from '../cli/start-command.js';
/* eslint-enable no-restricted-imports */
import { setStartAtLogin, startAtLoginEnabled } from './autostart.js';
import { forwardFeed, registerAgentHostIpc } from './ipc.js';
import { hardenApp } from './app-guards.js';
import { PANEL_URL } from './panel-protocol.js';
import { TrayController } from './tray.js';
import { isTrustedSender } from './trusted-sender.js';
import { createPanelWindow } from './window.js';

/**
 * The desktop app's main process: hosts the agent (through AgentHost, exactly as the headless
 * mode does), shows it in a tray icon and a panel window, and wires the OS in — single instance,
 * start at login, wake from sleep, graceful quit. Wiring only: everything it calls is tested
 * outside Electron.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const rendererUrl = PANEL_URL;
const preload = path.join(here, 'preload.cjs');
const iconDir = path.join(app.getAppPath(), 'assets', 'tray');
// Before ready: the panel's app:// scheme can only be registered as privileged then.
const shellGuards = hardenApp({ rendererDir: path.join(here, '../renderer') });

if (!app.requestSingleInstanceLock()) {
  // Another FarmLink runs: it shows its window (second-instance below) and this one leaves.
  app.quit();
} else {
  void main().catch((error: unknown) => {
    console.error('FarmLink could not start:', error);
    app.exit(1);
  });
}

async function main(): Promise<void> {
  // Lenient: Chromium and Electron switches may be on the command line too.
  const { values } = parseArgs({
    args: process.argv.slice(app.isPackaged ? 1 : 2),
    options: { ...START_FLAG_OPTIONS, hidden: { type: 'boolean' } },
    strict: false,
    allowPositionals: true,
  });
  const flags = values as Parameters<typeof overridesFrom>[0] & { hidden?: boolean; 'hub-port'?: string };
  await app.whenReady();

  const dataDir = dataDirFrom(flags);
  privateDataDir(dataDir);
  const logs = new LogBuffer();
  const { logger: hubLogger, close: closeHubLog } = await createLogger({ level: 'info', console: 'pretty', component: 'hub', memory: logs });
  const configFile = configFileFrom(flags);
  const plan = await planAgentRun({
    file: configFile.file,
    fileSource: configFile.source ?? configFile.defaultSource,
    overrides: overridesFrom(flags),
    dataDir,
    hubPort: flags['hub-port'] ? Number(flags['hub-port']) : undefined,
    hubLogger,
    defaultConfigFile: defaultConfigPath(),
  });
  const { log } = resolveAgentSettings(plan.config, { file: plan.file, dataDir });
  const { logger, close: closeLog } = await createLogger({
    level: log.level,
    console: 'pretty',
    component: 'agent',
    memory: logs,
    file: log.file ? { path: log.file, maxSizeMb: log.maxSizeMb, maxFiles: log.maxFiles } : null,
  });
  const host = new AgentHost({
    config: plan.config,
    configFile: plan.file,
    defaultConfigFile: defaultConfigPath(),
    overrides: plan.overrides,
    dataDir,
    logger,
    logs,
    localHub: plan.localHub,
  });
  host.start();
  tightenDataDir(dataDir);

  shellGuards.useLogger(logger);
  let win: BrowserWindow | undefined;
  let quitting = false;
  const showWindow = () => {
    if (!win || win.isDestroyed()) {
      const created = createPanelWindow({ url: rendererUrl, preload, icon: path.join(app.getAppPath(), 'assets', 'icon.png'), show: true });
      forwardFeed(host, created.webContents);
      // Closing the window keeps FarmLink running in the tray; Quit is in the tray menu.
      created.on('close', (event) => {
        if (!quitting) {
          event.preventDefault();
          created.hide();
        }
      });
      win = created;
      return;
    }
    win.show();
    win.focus();
  };
  registerAgentHostIpc(ipcMain, host.handlers(), (event) => isTrustedSender(event.senderFrame, rendererUrl));

  const onTrayAction = (action: TrayAction) => {
    switch (action) {
      case 'open-panel':
        showWindow();
        break;
      case 'reconnect-now':
        host.reconnectNow('Reconnect requested from the tray');
        break;
      case 'mode-legacy':
      case 'mode-enhanced':
        try {
          host.setMode(action === 'mode-legacy' ? 'legacy' : 'enhanced');
        } catch (error) {
          logger.warn({ err: error }, 'Mode change refused');
        }
        break;
      case 'toggle-start-at-login':
        setStartAtLogin(!startAtLoginEnabled());
        break;
      case 'quit':
        app.quit();
        return;
    }
    refreshTray();
  };
  const tray = new TrayController(iconDir, onTrayAction, showWindow);
  const refreshTray = () => tray.render(trayModel(host.snapshot(), { startAtLogin: startAtLoginEnabled(), now: Date.now() }));
  subscribeFeed(host, (event) => {
    if (event === 'snapshot') refreshTray();
  });
  refreshTray();

  powerMonitor.on('resume', () => host.systemEvent('resume', 'the OS reported a resume'));
  powerMonitor.on('suspend', () => logger.info('The system is going to sleep; the agent reconnects when it wakes'));
  app.on('second-instance', showWindow);
  // The tray keeps the app alive with no window open.
  app.on('window-all-closed', () => undefined);

  let stopped = false;
  app.on('before-quit', (event) => {
    quitting = true;
    if (stopped) return;
    event.preventDefault();
    void (async () => {
      logger.info('Quitting: disconnecting gracefully');
      await host.stop();
      await plan.localHub?.stop();
      tray.destroy();
      await closeLog();
      await closeHubLog();
      stopped = true;
      app.quit();
    })();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => app.quit());

  if (!flags.hidden) showWindow();
}
