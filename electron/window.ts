import { BrowserWindow, session, shell } from 'electron';
import { pathToFileURL } from 'node:url';

export interface PanelWindowOptions {
  rendererIndex: string;
  preload: string;
  icon?: string | undefined;
  show: boolean;
}

/**
 * The panel window, locked down as Electron's security checklist asks: isolated and sandboxed
 * renderer without Node, our preload only, no navigation away, no new windows, no permissions.
 * (The Content-Security-Policy is in the page itself: file:// pages have no response headers.)
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
    },
  });
  const rendererUrl = pathToFileURL(options.rendererIndex).toString();
  win.webContents.on('will-navigate', (event, url) => {
    if (url.split(/[?#]/)[0] !== rendererUrl) event.preventDefault();
  });
  win.webContents.on('will-attach-webview', (event) => event.preventDefault());
  win.webContents.setWindowOpenHandler(({ url }) => {
    // Links to documentation open in the person's browser, never in an app window.
    if (url.startsWith('https://')) void shell.openExternal(url);
    return { action: 'deny' };
  });
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  win.once('ready-to-show', () => {
    if (options.show) win.show();
  });
  void win.loadFile(options.rendererIndex);
  return win;
}
