import { useStore } from 'zustand';
import { formatAgo, formatBytes, formatClock, formatRate } from '../model/format.js';
import { currentRates } from '../model/rates.js';
import type { PanelStore } from '../store/panel-store.js';
import { useNow } from './useNow.js';

/** The connection's statistics (ConnectionStats): counters since the agent started, with the current rates each way. */
export function StatsCard({ store }: { store: PanelStore }) {
  const stats = useStore(store, (s) => s.snapshot?.stats);
  const throughput = useStore(store, (s) => s.snapshot?.throughput);
  const now = useNow(store);
  if (!stats || !throughput) return null;
  const rates = currentRates(throughput);

  return (
    <section className="card card-stats" aria-labelledby="stats-title">
      <div className="card-head">
        <h2 id="stats-title" className="card-title">
          Traffic
        </h2>
      </div>
      <table className="stats">
        <thead>
          <tr>
            <td />
            <th scope="col">Sent</th>
            <th scope="col">Received</th>
          </tr>
        </thead>
        <tbody>
          <tr>
            <th scope="row">Messages</th>
            <td className="num" data-testid="stat-messages-sent">
              {stats.messages_sent.toLocaleString('en-US')}
            </td>
            <td className="num" data-testid="stat-messages-received">
              {stats.messages_received.toLocaleString('en-US')}
            </td>
          </tr>
          <tr className="rate-row">
            <th scope="row">now</th>
            <td className="num" data-testid="rate-messages-out">
              {formatRate(rates.messagesOutPerSec, 'msg')}
            </td>
            <td className="num" data-testid="rate-messages-in">
              {formatRate(rates.messagesInPerSec, 'msg')}
            </td>
          </tr>
          <tr>
            <th scope="row">Data</th>
            <td
              className="num"
              data-testid="stat-bytes-sent"
              title={`${stats.bytes_sent.toLocaleString('en-US')} bytes`}
            >
              {formatBytes(stats.bytes_sent)}
            </td>
            <td
              className="num"
              data-testid="stat-bytes-received"
              title={`${stats.bytes_received.toLocaleString('en-US')} bytes`}
            >
              {formatBytes(stats.bytes_received)}
            </td>
          </tr>
          <tr className="rate-row">
            <th scope="row">now</th>
            <td className="num" data-testid="rate-bytes-out">
              {formatRate(rates.bytesOutPerSec, 'bytes')}
            </td>
            <td className="num" data-testid="rate-bytes-in">
              {formatRate(rates.bytesInPerSec, 'bytes')}
            </td>
          </tr>
        </tbody>
      </table>
      <dl className="facts">
        <div>
          <dt>Reconnects</dt>
          <dd className="num" data-testid="stat-reconnects">
            {stats.reconnect_count}
          </dd>
        </div>
        <div>
          <dt>Last message</dt>
          <dd
            className="num"
            data-testid="stat-last-message"
            title={stats.last_message_at ? formatClock(stats.last_message_at) : undefined}
          >
            {formatAgo(stats.last_message_at, now)}
          </dd>
        </div>
      </dl>
    </section>
  );
}
