// The live event feed: a WebSocket on /api/v1/events that resumes from the
// last event id it saw, reconnecting with backoff when the gateway goes away
// (restart, network) so no event is missed.
import { eventsUrl } from './api.js';

const BACKOFF_MS = [250, 500, 1000, 2000, 4000];

export class LiveFeed {
  /** onBatch({events, cursor}); onState('live'|'connecting'|'offline') */
  constructor({ cursor, onBatch, onState }) {
    this.cursor = cursor;
    this.onBatch = onBatch;
    this.onState = onState;
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.timer = null;
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    this.onState(this.attempt ? 'offline' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(eventsUrl(this.cursor));
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.onState('live');
    };
    ws.onmessage = (msg) => {
      let batch;
      try { batch = JSON.parse(msg.data); } catch { return; }
      if (!batch || !Array.isArray(batch.events)) return;
      const fresh = batch.events.filter((e) => e.id > this.cursor);
      if (typeof batch.cursor === 'number' && batch.cursor > this.cursor) this.cursor = batch.cursor;
      if (fresh.length) this.onBatch(fresh, this.cursor);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.retry();
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  retry() {
    if (this.stopped) return;
    this.onState('offline');
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt++;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Reconnect now from `cursor` (e.g. after a full reload of the board). */
  restart(cursor) {
    if (typeof cursor === 'number') this.cursor = cursor;
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
    this.attempt = 0;
    clearTimeout(this.timer);
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close(); }
  }
}
