import { useStore } from 'zustand';
import { noSessionsText, sessionRow, tunnelLinkView } from '../model/tunnel-labels.js';
import type { PanelStore } from '../store/panel-store.js';
import { useNow } from './useNow.js';

/**
 * The tunnel: which services of this PC remote clients may reach, whether the PC is reachable,
 * and who is connected to what, by which path. Absent for an agent too old to report it.
 */
export function TunnelsCard({ store }: { store: PanelStore }) {
  const tunnel = useStore(store, (s) => s.snapshot?.tunnel);
  const now = useNow(store);
  if (tunnel === undefined) return null;
  const link = tunnelLinkView(tunnel, now);
  const rows = tunnel.sessions.map((session) => sessionRow(session, now));
  return (
    <section className="card card-tunnels" aria-labelledby="tunnels-title" data-testid="tunnels-card">
      <div className="card-head">
        <h2 id="tunnels-title" className="card-title">
          Tunnels
        </h2>
        <span className={`badge tone-${link.tone}`} data-testid="tunnel-link" data-state={tunnel.link.state}>
          <span className="status-dot" aria-hidden="true" />
          {link.label}
        </span>
      </div>
      <p className="card-hint" data-testid="tunnel-link-detail">
        {link.detail}
      </p>
      {tunnel.services.length > 0 ? (
        <div className="tunnel-services" data-testid="tunnel-services">
          <span className="tunnel-services-label">Exposed services</span>
          <ul>
            {tunnel.services.map((service) => (
              <li key={service.name} data-testid="tunnel-service">
                <strong>{service.name}</strong> → <code>{service.target}</code>
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      {rows.length === 0 ? (
        <p className="card-hint tunnel-empty" data-testid="tunnel-no-sessions">
          {noSessionsText(tunnel)}
        </p>
      ) : (
        <div className="tunnel-sessions-scroll">
          <table className="servers tunnel-sessions">
            <thead>
              <tr>
                <th scope="col">Who → service</th>
                <th scope="col">Path</th>
                <th scope="col" title="Round trip of the session's health pings on its path">
                  RTT
                </th>
                <th scope="col" title="Bytes from the client to the service, and back">
                  In / out
                </th>
                <th scope="col" title="Connections open now, and in all">
                  Streams
                </th>
                <th scope="col">State</th>
                <th scope="col">Since</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.id} data-testid="tunnel-session" data-state={row.state.label.toLowerCase()}>
                  <td title={`session ${row.id}`}>
                    <strong>{row.who}</strong> → {row.service}
                  </td>
                  <td title={row.pathHint} data-testid="tunnel-session-path">
                    {row.path}
                  </td>
                  <td className="num">{row.rtt}</td>
                  <td className="num">
                    {row.bytesIn} / {row.bytesOut}
                  </td>
                  <td className="num">{row.streams}</td>
                  <td
                    title={row.lastRecovery ? `${row.state.hint}. Last recovery: ${row.lastRecovery}` : row.state.hint}
                  >
                    <span className={`badge tone-${row.state.tone}`}>
                      <span className="status-dot" aria-hidden="true" />
                      {row.state.label}
                    </span>
                  </td>
                  <td className="num" title={`Opened at ${row.openedAt}`}>
                    {row.since}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
