import { useStore } from 'zustand';
import type { PanelServer } from '../../protocol/agent-host.js';
import { breakerView } from '../model/breaker-labels.js';
import { formatAgo, formatClock } from '../model/format.js';
import { SERVER_STATUS, serverName } from '../model/labels.js';
import type { PanelStore } from '../store/panel-store.js';
import { useNow } from './useNow.js';

// A constant: a selector that returned a fresh [] each time would re-render forever.
const NONE: PanelServer[] = [];

/** The primary and every fallback in the order the agent tries them, with how each has fared. */
export function ServerList({ store }: { store: PanelStore }) {
  const servers = useStore(store, (s) => s.snapshot?.servers ?? NONE);
  const now = useNow(store);

  return (
    <section className="card card-servers" aria-labelledby="servers-title">
      <div className="card-head">
        <h2 id="servers-title" className="card-title">
          Servers
        </h2>
        <p className="card-hint">
          Tried in this order; after the last fallback the agent goes back to the primary, waiting longer each round. A
          server that keeps refusing this PC is skipped until its breaker lets a probe through.
        </p>
      </div>
      <table className="servers">
        <thead>
          <tr>
            <th scope="col" className="col-server">
              Server
            </th>
            <th scope="col" className="col-state">
              State
            </th>
            <th scope="col" className="col-breaker">
              Breaker
            </th>
            <th scope="col" className="col-attempts">
              Attempts
            </th>
            <th scope="col" className="col-error">
              Last error
            </th>
            <th scope="col" className="col-success">
              Last success
            </th>
          </tr>
        </thead>
        <tbody>
          {servers.map((server) => {
            const status = SERVER_STATUS[server.status];
            const error = server.last_error;
            const breaker = breakerView(server.breaker, now);
            return (
              <tr
                key={server.index}
                data-testid="server-row"
                data-index={server.index}
                data-status={server.status}
                className={server.status === 'active' ? 'is-active' : undefined}
              >
                <td className="col-server">
                  <div className="server-name">{serverName(server.index)}</div>
                  <div className="server-url" title={`${server.configured_url}\nendpoint: ${server.url}`}>
                    {server.configured_url}
                  </div>
                </td>
                <td className="col-state">
                  <span className={`badge tone-${status.tone}`} title={status.hint}>
                    <span className="status-dot" aria-hidden="true" />
                    {status.label}
                  </span>
                </td>
                <td className="col-breaker" data-testid="server-breaker" data-state={breaker.state}>
                  <span className={`badge tone-${breaker.tone}`} title={breaker.hint}>
                    <span className="status-dot" aria-hidden="true" />
                    {breaker.label}
                  </span>
                  {breaker.detail !== null ? (
                    <div className="sub breaker-detail" title={breaker.detail}>
                      {breaker.detail}
                    </div>
                  ) : null}
                </td>
                <td className="col-attempts num">
                  <div>{server.attempts}</div>
                  {server.attempts > 0 ? (
                    <div className="sub">
                      {server.failures} failed · {server.registrations} registered
                    </div>
                  ) : null}
                </td>
                <td className="col-error">
                  {error ? (
                    <>
                      <div className="error-message" title={error.message}>
                        {error.message}
                      </div>
                      <div className="sub" title={formatClock(error.at)}>
                        <code>{error.code}</code>
                        {error.close_code !== undefined ? <> · close {error.close_code}</> : null} ·{' '}
                        {formatAgo(error.at, now)}
                      </div>
                    </>
                  ) : (
                    <span className="muted">none</span>
                  )}
                </td>
                <td
                  className="col-success num"
                  title={server.last_success_at ? formatClock(server.last_success_at) : undefined}
                >
                  {server.last_success_at ? (
                    formatAgo(server.last_success_at, now)
                  ) : (
                    <span className="muted">never</span>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
