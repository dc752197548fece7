import { BrowserWindow, app } from 'electron';

export interface PanelWindowOptions {
  /** The panel's document on its own origin (PANEL_URL): app://panel/index.html. */
  url: string;
  preload: string;
  icon?: string | undefined;
  show: boolean;
}

/**
 * The panel window, locked down as Electron's security checklist asks: isolated and sandboxed
 * renderer without Node, our preload only, no DevTools in a packaged build. Navigation, new windows,
 * <webview> and permissions are refused app-wide (electron/app-guards.ts), and the panel's protocol
 * sends the Content-Security-Policy (electron/panel-protocol.ts).
 */
export function createPanelWindow(options: PanelWindowOptions): BrowserWindow {
  const win = new BrowserWindow({
    width: 1180,
    height: 800,
    minWidth: 900,
    minHeight: 600,
    show: false,
    title: 'FarmLink',
    ...(options.icon ? { icon: options.icon } : {}),
    autoHideMenuBar: true,
    webPreferences: {
      preload: options.preload,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
      devTools: !app.isPackaged,
    },
  });
  win.once('ready-to-show', () => {
    if (options.show) win.show();
  });
  void win.loadURL(options.url);
  return win;
}
