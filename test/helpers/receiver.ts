import type { IncomingHttpHeaders } from 'node:http';
import type { SessionEvent } from '../../src/events/envelope.js';
import { startServer } from './sim-client.js';

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  event: SessionEvent;
  /** What the receiver answered. */
  status: number;
  at: number;
}

/**
 * A merchant's webhook endpoint: records every delivery and answers `answer` (200 unless a test
 * changes it: a 500 makes the service retry, then give up).
 */
export async function startReceiver() {
  const received: Received[] = [];
  const state = { answer: 200 };
  const server = await startServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ headers: req.headers, body, event: JSON.parse(body) as SessionEvent, status: state.answer, at: Date.now() });
      res.statusCode = state.answer;
      res.end();
    });
  });
  return {
    url: `${server.url}/kyc-events`,
    received,
    state,
    /** The events received for a session, in arrival order. */
    of: (sessionId: string) => received.filter((r) => r.event.sessionId === sessionId),
    close: server.close,
  };
}
