import type { PanelStore } from '../store/panel-store.js';
import { CacheCard } from './CacheCard.js';
import { LatencyChart } from './LatencyChart.js';
import { ModeFiguresCard } from './ModeFiguresCard.js';
import { ModeToggle } from './ModeToggle.js';
import { OutboxCard } from './OutboxCard.js';
import { QualityBadge } from './QualityBadge.js';
import { ServerList } from './ServerList.js';
import { StatsCard } from './StatsCard.js';
import { ThroughputChart } from './ThroughputChart.js';
import { Timeline } from './Timeline.js';
import { TunnelsCard } from './TunnelsCard.js';

/** Everything about the link on one page, most urgent first: how good it is, where it goes, what happened. */
export function Overview({ store }: { store: PanelStore }) {
  return (
    <div className="overview">
      <div className="overview-cards">
        <QualityBadge store={store} />
        <StatsCard store={store} />
        <ModeToggle store={store} />
      </div>
      <ServerList store={store} />
      <TunnelsCard store={store} />
      <div className="overview-delivery">
        <OutboxCard store={store} />
        <ModeFiguresCard store={store} />
      </div>
      <div className="overview-charts">
        <LatencyChart store={store} />
        <ThroughputChart store={store} />
      </div>
      <Timeline store={store} />
      <CacheCard store={store} />
    </div>
  );
}
