import { LRUCache } from 'lru-cache';
import type { Invalidation, SessionChanges } from './changes.js';

/** How long a cached status may be served. It bounds what a change the feed lost (Redis down while publishing) can cost: this long of an old status. */
const STATUS_CACHE_TTL_MS = 5000;
/** Sessions kept (least recently read go first): ~0.5 KB each. */
const STATUS_CACHE_MAX = 10_000;

/**
 * The status reads' cache: a caller's session by (userRef, merchantBizId), the key of the status
 * query, so a cached row is found only by its owner, exactly as the query finds it. It is kept
 * current by the change feed, not by time: every change a SessionRepository method makes, on any
 * instance, evicts its session at once. So it is used only while the feed is live (this instance
 * hears its own heartbeat), emptied whenever the feed comes back after a gap, and a read's row is
 * kept only when no change of its session was learnt of while it was read.
 * Not found is never cached (a new session would need another key to evict it).
 */
export class StatusCache<Row extends { id: string }> {
  private readonly rows: LRUCache<string, Row>;
  /** session id → its key in `rows`, to evict by the id a change names. */
  private readonly keyOf = new Map<string, string>();
  /** Reads under way, by key: a burst of reads of one session (an expired entry) makes one query. */
  private readonly loading = new Map<string, Promise<Row | null>>();

  constructor(
    private readonly changes: Pick<SessionChanges, 'changedSince' | 'live' | 'onInvalidate'>,
    options: { ttlMs?: number; max?: number } = {},
  ) {
    this.rows = new LRUCache<string, Row>({
      max: options.max ?? STATUS_CACHE_MAX,
      ttl: options.ttlMs ?? STATUS_CACHE_TTL_MS,
      dispose: (row, key) => {
        if (this.keyOf.get(row.id) === key) this.keyOf.delete(row.id);
      },
    });
    changes.onInvalidate((invalidation) => this.invalidate(invalidation));
  }

  static key(userRef: string, merchantBizId: string): string {
    return `${userRef}:${merchantBizId}`;
  }

  get(key: string): Row | undefined {
    return this.changes.live() ? this.rows.get(key) : undefined;
  }

  /**
   * The row a read of `key` under way will give (a plain read may share it: it started moments
   * ago), or a new read by `load`, whose row is kept unless a change of it was learnt of while it
   * was read (`version`: SessionChanges.version before `load` began).
   */
  load(key: string, version: number, load: () => Promise<Row | null>): { row: Promise<Row | null>; shared: boolean } {
    const underWay = this.loading.get(key);
    if (underWay) return { row: underWay, shared: true };
    const row = load().then(
      (row) => {
        this.loading.delete(key);
        if (row && !this.changes.changedSince(row.id, version) && this.changes.live()) {
          this.rows.set(key, row);
          this.keyOf.set(row.id, key);
        }
        return row;
      },
      (err: unknown) => {
        this.loading.delete(key);
        throw err;
      },
    );
    this.loading.set(key, row);
    return { row, shared: false };
  }

  private invalidate(invalidation: Invalidation): void {
    if (invalidation === 'all') {
      this.rows.clear();
      return;
    }
    for (const id of invalidation) {
      const key = this.keyOf.get(id);
      if (key !== undefined) this.rows.delete(key);
    }
  }
}
