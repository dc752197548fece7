import { Menu, app, protocol, session, shell, type Session, type WebContents } from 'electron';
import pino, { type Logger } from 'pino';
import { applicationMenuTemplate } from './app-menu.js';
import { mayNavigate, mayUsePermission, windowOpenDecision } from './navigation-policy.js';
import { PANEL_SCHEME, PANEL_SCHEME_PRIVILEGES, panelRequestHandler } from './panel-protocol.js';

/**
 * Electron's security checklist, applied to the whole app: the panel's own protocol, and for every
 * web contents (the panel window and any other that might ever appear) no navigation away from the
 * panel, no new windows, no <webview>, no permissions, and no DevTools in a packaged build. Wiring
 * only: each decision is made by a module tested in plain Node (panel-protocol, navigation-policy,
 * external-links, app-menu).
 */

export interface ShellGuardOptions {
  /** The built renderer (dist/renderer): the only directory app://panel/ serves. */
  rendererDir: string;
}

export interface ShellGuards {
  /** Refusals are logged here from now on (until then, to a pino logger of the shell's own). */
  useLogger(logger: Pick<Logger, 'warn'>): void;
}

/** Call before the app is ready: a privileged scheme can only be registered then. */
export function hardenApp(options: ShellGuardOptions): ShellGuards {
  let logger: Pick<Logger, 'warn'> = pino({ base: { component: 'desktop' } });
  const packaged = app.isPackaged;

  protocol.registerSchemesAsPrivileged([{ scheme: PANEL_SCHEME, privileges: PANEL_SCHEME_PRIVILEGES }]);

  const guarded = new WeakSet<Session>();
  const guardSession = (ses: Session) => {
    if (guarded.has(ses)) return;
    guarded.add(ses);
    ses.setPermissionRequestHandler((_contents, permission, callback) => {
      const granted = mayUsePermission(permission);
      if (!granted) logger.warn({ permission }, 'Refused a permission request from the panel: it uses none');
      callback(granted);
    });
    ses.setPermissionCheckHandler((_contents, permission) => mayUsePermission(permission));
    ses.setDevicePermissionHandler(() => false);
  };

  app.on('web-contents-created', (_event, contents: WebContents) => {
    guardSession(contents.session);
    contents.on('will-navigate', (event) => {
      if (mayNavigate(event.url)) return;
      event.preventDefault();
      logger.warn({ url: event.url }, 'Refused to navigate away from the panel; the window stays on it');
    });
    contents.on('will-frame-navigate', (event) => {
      // The main frame is will-navigate's (above); this catches frames inside the page.
      if (event.isMainFrame || mayNavigate(event.url)) return;
      event.preventDefault();
      logger.warn({ url: event.url }, 'Refused to navigate a frame away from the panel');
    });
    contents.on('will-redirect', (event) => {
      if (mayNavigate(event.url)) return;
      event.preventDefault();
      logger.warn({ url: event.url }, 'Refused a redirect away from the panel');
    });
    contents.on('will-attach-webview', (event) => {
      event.preventDefault();
      logger.warn('Refused to attach a <webview>: the panel has none');
    });
    contents.setWindowOpenHandler(({ url }) => {
      const decision = windowOpenDecision(url);
      if (decision.openExternally) {
        shell.openExternal(url).catch((error: unknown) => {
          logger.warn({ err: error, url }, 'Could not open the link in the browser');
        });
      } else {
        logger.warn({ url, reason: decision.reason }, 'Refused to open a link: the panel opens no other windows');
      }
      return { action: 'deny' };
    });
    if (packaged) {
      // devTools is off in the window's webPreferences; this covers any contents created without it.
      contents.on('devtools-opened', () => {
        contents.closeDevTools();
      });
    }
  });

  void app.whenReady().then(() => {
    protocol.handle(
      PANEL_SCHEME,
      panelRequestHandler(options.rendererDir, (refusal, request) => {
        logger.warn(
          { url: request.url, method: request.method, status: refusal.status },
          `Panel request refused: ${refusal.reason}`,
        );
      }),
    );
    guardSession(session.defaultSession);
    const template = applicationMenuTemplate(packaged, process.platform);
    if (template) Menu.setApplicationMenu(Menu.buildFromTemplate(template));
  });

  return {
    useLogger(next) {
      logger = next;
    },
  };
}
