import type { LinkStatus } from '../bridge/link-status.js';
import { formatClock } from '../model/format.js';

/**
 * The panel's own link to the agent is broken (not the agent's link to the hub). Said plainly,
 * with what the person can do, and how old the figures on screen are.
 */
export function PanelLinkNotice({
  link,
  lastSeenAt,
}: {
  link: Exclude<LinkStatus, 'open'>;
  lastSeenAt: number | null;
}) {
  const unauthorized = link === 'unauthorized';
  return (
    <div
      className={`notice ${unauthorized ? 'notice-error' : 'notice-warn'}`}
      data-testid="panel-link"
      data-link={link}
      role={unauthorized ? 'alert' : 'status'}
    >
      <div className="notice-body">
        <p className="notice-title">
          {unauthorized
            ? 'This page has no valid panel token — open the panel’s full address.'
            : 'Lost contact with the agent — retrying…'}
        </p>
        <div className="notice-detail">
          {unauthorized ? (
            <>
              On this PC, <code>farmlink panel-url</code> prints it (<code>npx farmlink panel-url</code> in the FarmLink
              folder); an agent started in a terminal also shows it once at start-up. It looks like{' '}
              <code>http://127.0.0.1:PORT/#token=…</code>; the token is kept in the agent&apos;s data folder, in the
              file <code>panel-token</code>, and is never written to a log.
            </>
          ) : (
            'The panel reconnects by itself. If this lasts, check that the FarmLink agent is still running on this PC.'
          )}
          {lastSeenAt !== null ? ` The figures below are from ${formatClock(lastSeenAt)}.` : ''}
        </div>
      </div>
    </div>
  );
}
