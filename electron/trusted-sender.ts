import type { WebFrameMain } from 'electron';

/**
 * Only our own page, in the window's top frame, may call the agent: the frame's URL must be the
 * panel's document on its own origin (PANEL_URL, app://panel/index.html) exactly, a fragment or
 * query aside — no file:// page, however it got into the window. Kept free of Electron at run time
 * so it is tested in plain Node.
 */
export function isTrustedSender(
  frame: Pick<WebFrameMain, 'url' | 'parent'> | null | undefined,
  rendererUrl: string,
): boolean {
  if (!frame || frame.parent !== null) return false;
  const url = frame.url.split(/[?#]/)[0];
  return url === rendererUrl;
}
