import { app, ipcMain, powerMonitor, type BrowserWindow } from 'electron';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { trayModel, type TrayAction } from '../agent/desktop/tray-model.js';
import { LogBuffer } from '../agent/host/log-buffer.js';
import { subscribeFeed } from '../agent/host/snapshot-feed.js';
import { createLogger } from '../agent/log/logger.js';
import { DesktopAgent } from '../cli/startup/desktop-agent.js';
import { START_FLAG_OPTIONS } from '../cli/startup/flags.js';
import type { StartFlagValues } from '../cli/startup/start-agent.js';
import { setStartAtLogin, startAtLoginEnabled } from './autostart.js';
import { forwardFeed, registerAgentHostIpc } from './ipc.js';
import { hardenApp } from './app-guards.js';
import { PANEL_URL } from './panel-protocol.js';
import { TrayController } from './tray.js';
import { isTrustedSender } from './trusted-sender.js';
import { createPanelWindow } from './window.js';

/**
 * The desktop app's main process: shows the PC's one agent in a tray icon and a panel window, and
 * wires the OS in — single instance, start at login, wake from sleep, graceful quit. Which agent
 * that is (one already running, attached to; or one this process runs, through the CLI's own
 * start-up path) is DesktopAgent's decision in cli/startup/. Wiring only: everything it calls is
 * tested outside Electron.
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
  const flags = values as StartFlagValues & { hidden?: boolean };
  await app.whenReady();

  const logs = new LogBuffer();
  const { logger, close: closeLog } = await createLogger({
    level: 'info',
    console: 'pretty',
    component: 'desktop',
    memory: logs,
  });
  const { logger: hubLogger, close: closeHubLog } = await createLogger({
    level: 'info',
    console: 'pretty',
    component: 'hub',
    memory: logs,
  });
  const host = await DesktopAgent.open({ values: flags, logger, hubLogger, logs });

  shellGuards.useLogger(logger);
  let win: BrowserWindow | undefined;
  let quitting = false;
  const showWindow = () => {
    if (!win || win.isDestroyed()) {
      const created = createPanelWindow({
        url: rendererUrl,
        preload,
        icon: path.join(app.getAppPath(), 'assets', 'icon.png'),
        show: true,
      });
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
        void host
          .reconnectNow('Reconnect requested from the tray')
          .catch((error: unknown) => logger.warn({ err: error }, 'Reconnect failed'));
        break;
      case 'mode-legacy':
      case 'mode-enhanced':
        host.setMode(action === 'mode-legacy' ? 'legacy' : 'enhanced').then(refreshTray, (error: unknown) => {
          logger.warn({ err: error }, 'Mode change refused');
        });
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
  const refreshTray = () =>
    tray.render(trayModel(host.snapshot(), { startAtLogin: startAtLoginEnabled(), now: Date.now() }));
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
      logger.info(
        host.mode === 'hosted'
          ? 'Quitting: disconnecting gracefully'
          : 'Quitting: the agent this app was attached to keeps running',
      );
      await host.stop();
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
