import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './components/App.js';
import { createBridge, type LinkStatus } from './bridge/create-bridge.js';
import { createPanelStore, type PanelStore } from './store/panel-store.js';
import './styles.css';

// The bridge reports its link before the store exists; the first report is replayed into it.
const holder: { store?: PanelStore } = {};
let earlyLink: LinkStatus = 'connecting';
const client = createBridge((link) => {
  if (holder.store) holder.store.getState().setLink(link);
  else earlyLink = link;
});
const store = createPanelStore(client);
holder.store = store;
store.getState().setLink(earlyLink);
void store.getState().start();

const root = document.getElementById('root');
if (!root) throw new Error('The panel page has no #root element to render into');
createRoot(root).render(
  <StrictMode>
    <App store={store} />
  </StrictMode>,
);
