import { isAllowedExternalLink } from './external-links.js';
import { PANEL_URL } from './panel-protocol.js';

/**
 * What the app's web contents may do beyond showing the panel: next to nothing. Decisions only, free
 * of Electron at run time so they are tested in plain Node; electron/app-guards.ts applies them.
 */

/** The panel's document, a query or fragment aside: the one place the window may be. */
export function isPanelDocument(url: string): boolean {
  return url.split(/[?#]/, 1)[0] === PANEL_URL;
}

/** will-navigate, will-frame-navigate and will-redirect: stay on the panel or do not go at all. */
export function mayNavigate(url: string): boolean {
  return isPanelDocument(url);
}

export type WindowOpenDecision = { openExternally: true } | { openExternally: false; reason: string };

/**
 * window.open and target=_blank links: never a new app window. An allowlisted link goes to the
 * person's browser instead; anything else is refused with the reason the shell logs.
 */
export function windowOpenDecision(url: string, allowlist?: readonly string[]): WindowOpenDecision {
  if (isAllowedExternalLink(url, allowlist)) return { openExternally: true };
  return { openExternally: false, reason: 'not a link the panel has (electron/external-links.ts)' };
}

/**
 * The permissions the panel uses (camera, microphone, notifications, geolocation, clipboard, MIDI,
 * HID, serial, fullscreen, …): none. Every request and every check is denied; a permission the
 * panel comes to need is named here.
 */
export const PANEL_PERMISSIONS: ReadonlySet<string> = new Set<string>();

export function mayUsePermission(permission: string): boolean {
  return PANEL_PERMISSIONS.has(permission);
}
