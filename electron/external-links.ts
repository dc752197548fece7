/**
 * The links the desktop app hands to the person's browser. The panel has none today: it shows the
 * agent and its hub, and every address in it is text to read or type, never a link to follow. So
 * nothing is opened; a link added to the panel one day is added here too, as an exact URL, and
 * everything else stays refused (and logged) — a page that could open any https:// URL could send
 * the person anywhere with the app's name on it.
 */
export const EXTERNAL_LINKS: readonly string[] = Object.freeze([]);

/**
 * Whether `url` may be opened in the browser: an https:// URL, with no user name or password, equal
 * (after URL normalisation, so `HTTPS://Host/a` matches `https://host/a`) to one entry of the
 * allowlist. Exact, not a prefix: `https://host/a` does not allow `https://host/a/../../elsewhere`.
 */
export function isAllowedExternalLink(url: string, allowlist: readonly string[] = EXTERNAL_LINKS): boolean {
  const parsed = URL.parse(url);
  if (!parsed || parsed.protocol !== 'https:' || parsed.username !== '' || parsed.password !== '') return false;
  return allowlist.some((entry) => URL.parse(entry)?.href === parsed.href);
}
