import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on loopback between the service and a dependency (PostgreSQL, Redis), that a test
 * can cut (connections reset, new ones refused), blackhole (connections accepted, nothing
 * answered) or delay, then restore. Faults for real, without mocking the dependency.
 */
export class TcpProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly clients = new Set<Socket>();
  private mode: 'pass' | 'refuse' | 'blackhole' = 'pass';
  private delayMs = 0;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((client) => this.accept(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  /** Client connections currently open through (or held by) the proxy. */
  get openConnections(): number {
    return this.clients.size;
  }

  /** Resets every open connection and refuses new ones. */
  cut(): void {
    this.mode = 'refuse';
    this.dropAll();
  }

  /** Resets every open connection; new ones are accepted and never answered. */
  blackhole(): void {
    this.mode = 'blackhole';
    this.dropAll();
  }

  /** Keeps every connection open but forwards nothing more, on old and new ones (a hung peer). */
  stall(): void {
    this.mode = 'blackhole';
  }

  /** Adds latency to every chunk in both directions. */
  delay(ms: number): void {
    this.delayMs = ms;
  }

  restore(): void {
    this.mode = 'pass';
    this.delayMs = 0;
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private dropAll(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  }

  private accept(client: Socket): void {
    this.track(client);
    this.clients.add(client);
    client.on('close', () => this.clients.delete(client));
    if (this.mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    if (this.mode === 'blackhole') {
      client.resume(); // read and drop what comes, so a close from the other side is seen
      return;
    }
    const upstream = connect(this.target.port, this.target.host);
    this.track(upstream);
    const pipe = (from: Socket, to: Socket) =>
      from.on('data', (chunk) => {
        if (this.mode !== 'pass') return;
        if (this.delayMs > 0) setTimeout(() => to.write(chunk), this.delayMs);
        else to.write(chunk);
      });
    pipe(client, upstream);
    pipe(upstream, client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }
}
