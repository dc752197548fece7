import type { ReactNode } from 'react';
import { useStore } from 'zustand';
import { formatAgo, formatBytes, formatClock } from '../model/format.js';
import { SYNC_POLICY, fill, fillTone, givenUp } from '../model/outbox.js';
import type { PanelStore } from '../store/panel-store.js';
import { useNow } from './useNow.js';

const n = (value: number) => value.toLocaleString('en-US');

/**
 * The durable outbox: what waits, what the hub has not acknowledged, and what was given up.
 * Messages given up (dropped when full, expired) and a store that cannot write are never
 * hidden: they are the panel's news, said in words and not only in colour.
 */
export function OutboxCard({ store }: { store: PanelStore }) {
  const outbox = useStore(store, (s) => s.snapshot?.outbox);
  const now = useNow(store);
  if (outbox === undefined) return null;
  if (outbox === null) {
    return (
      <OutboxFrame>
        <p className="card-hint" data-testid="outbox-off">
          This agent runs without an outbox (it could not be opened: the log says why). Command results and device
          events go out only while a hub is connected: anything emitted while the link is down, or not yet sent when the
          agent stops, is lost, and <code>farmlink event</code> is refused.
        </p>
      </OutboxFrame>
    );
  }

  const messages = fill(outbox.depth, outbox.max_messages);
  const bytes = fill(outbox.bytes, outbox.max_bytes);
  const lost = givenUp(outbox);

  return (
    <OutboxFrame hint="Every event and command result waits here, on disk, until a hub acknowledges it">
      {outbox.state === 'error' ? (
        <div className="outbox-error" role="alert" data-testid="outbox-error">
          <p className="outbox-error-title">The outbox cannot store messages: new ones are refused.</p>
          <p>{outbox.error ?? 'The store could not be written.'}</p>
          <p>
            The connection to the hub stays up and what is already stored is still delivered. Free disk space or make
            the data directory writable; the outbox takes messages again after its next successful write.
          </p>
        </div>
      ) : null}

      <div className="outbox-bars">
        <Bar
          testId="outbox-depth"
          label="Waiting"
          used={`${n(outbox.depth)} of ${n(outbox.max_messages)} messages`}
          {...messages}
        />
        <Bar
          testId="outbox-bytes"
          label="Size"
          used={`${formatBytes(outbox.bytes)} of ${formatBytes(outbox.max_bytes)}`}
          {...bytes}
        />
      </div>

      <dl className="facts">
        <Fact testId="outbox-by-priority" term="Waiting by priority" title="High is sent at once, the rest in batches">
          {`high ${n(outbox.by_priority.high)} · normal ${n(outbox.by_priority.normal)} · low ${n(outbox.by_priority.low)}`}
        </Fact>
        <Fact
          testId="outbox-unacked"
          term="Not yet acknowledged"
          title="Sent on this connection; the hub has not confirmed it has them stored"
        >
          {n(outbox.unacked)}
        </Fact>
        <Fact testId="outbox-delivered" term="Delivered" title="Since the agent started, of the messages it accepted">
          {`${n(outbox.delivered)} of ${n(outbox.accepted)}`}
        </Fact>
        <Fact
          testId="outbox-acked-seq"
          term="Last acknowledged"
          title={`Sequence number the hub confirmed last; the next message gets #${n(outbox.next_seq)}`}
        >
          {outbox.acked_seq === 0 ? 'none yet' : `#${n(outbox.acked_seq)}`}
        </Fact>
        <Fact
          testId="outbox-oldest"
          term="Oldest waiting"
          title={outbox.oldest_accepted_at === null ? undefined : formatClock(outbox.oldest_accepted_at)}
        >
          {outbox.oldest_accepted_at === null ? 'nothing waits' : formatAgo(outbox.oldest_accepted_at, now)}
        </Fact>
      </dl>

      <div
        className={`outbox-lost ${lost.total > 0 ? 'outbox-lost-some' : ''}`}
        data-testid="outbox-given-up"
        data-count={lost.total}
        role={lost.total > 0 ? 'status' : undefined}
      >
        <p className="outbox-lost-title">
          {lost.total > 0 ? `${n(lost.total)} messages given up` : 'Messages given up'}
        </p>
        <p>{lost.text}</p>
        <table className="stats outbox-lost-table">
          <thead>
            <tr>
              <td />
              <th scope="col">High</th>
              <th scope="col">Normal</th>
              <th scope="col">Low</th>
              <th scope="col" title="Past their lifetime (ttl) before delivery">
                Expired
              </th>
            </tr>
          </thead>
          <tbody>
            <tr>
              <th scope="row" title="Dropped to make room when the outbox was full: lowest priority, oldest first">
                Dropped
              </th>
              <td className="num" data-testid="outbox-dropped-high">
                {n(outbox.dropped.high)}
              </td>
              <td className="num" data-testid="outbox-dropped-normal">
                {n(outbox.dropped.normal)}
              </td>
              <td className="num" data-testid="outbox-dropped-low">
                {n(outbox.dropped.low)}
              </td>
              <td className="num" data-testid="outbox-expired">
                {n(outbox.expired)}
              </td>
            </tr>
          </tbody>
        </table>
      </div>

      <p className="fine-print" data-testid="outbox-sync">
        {SYNC_POLICY[outbox.sync]} When full, the oldest low-priority messages are dropped first, then normal, then
        high.
      </p>
    </OutboxFrame>
  );
}

function Bar({
  testId,
  label,
  used,
  fraction,
  percent,
}: {
  testId: string;
  label: string;
  used: string;
  fraction: number;
  percent: string;
}) {
  const tone = fillTone(fraction);
  return (
    <div className="bar-row" data-testid={testId} data-tone={tone}>
      <div className="bar-label">
        <span>{label}</span>
        <span className="num">
          {used} ({percent} full)
        </span>
      </div>
      <div
        className={`bar tone-${tone}`}
        role="meter"
        aria-label={`Outbox ${label.toLowerCase()}`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(fraction * 100)}
        aria-valuetext={`${used}, ${percent} full`}
      >
        <div className="bar-fill" style={{ width: `${(fraction * 100).toFixed(1)}%` }} />
      </div>
    </div>
  );
}

function Fact({
  testId,
  term,
  title,
  children,
}: {
  testId: string;
  term: string;
  title?: string | undefined;
  children: ReactNode;
}) {
  return (
    <div>
      <dt title={title}>{term}</dt>
      <dd className="num" data-testid={testId} title={title}>
        {children}
      </dd>
    </div>
  );
}

function OutboxFrame({ hint, children }: { hint?: string; children: ReactNode }) {
  return (
    <section className="card card-outbox" aria-labelledby="outbox-title" data-testid="outbox-card">
      <div className="card-head">
        <h2 id="outbox-title" className="card-title">
          Outbox
        </h2>
        {hint ? <span className="card-hint">{hint}</span> : null}
      </div>
      {children}
    </section>
  );
}
