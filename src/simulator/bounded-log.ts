/** What the simulator recorded, newest last, the oldest dropped past `max` (for tests: `/__sim/...`). */
export class BoundedLog<T> {
  private records: T[] = [];

  constructor(private readonly max: number) {}

  add(record: T): T {
    this.records.push(record);
    if (this.records.length > this.max) this.records.shift();
    return record;
  }

  list(): readonly T[] {
    return this.records;
  }

  clear(): void {
    this.records = [];
  }
}
