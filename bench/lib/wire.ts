/**
 * The kernel's clock for a benchmark: tcpdump on the loopback interface stamps the first packet of
 * every HTTP request sent to a port, as it passes the interface (no process's event loop in the
 * way). Needs tcpdump (Debian: `apt-get install -y tcpdump`) and the right to capture (root).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

export interface WireRequest {
  /** Epoch ms (µs precision) of the request's first packet. */
  at: number;
  /** Its `x-acs-action` header (the cloudauth-intl API), if any. */
  action: string | undefined;
  /** The MerchantBizId parameter, if any. */
  merchantBizId: string | undefined;
}

export interface WireCapture {
  /** Stops capturing and returns the requests seen, with tcpdump's own count of dropped packets. */
  stop(): Promise<{ requests: WireRequest[]; dropped: number }>;
}

/** Starts tcpdump for data packets to `port` that begin with `POST ` (the first of each request). */
export async function captureRequests(port: number): Promise<WireCapture> {
  // The TCP payload starts after the header's length (data offset × 4): match "POST" there.
  const filter = `tcp dst port ${port} and tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x504f5354`;
  // --immediate-mode: each packet is read as it comes, so none is left in the capture buffer at the end.
  const child = spawn('tcpdump', ['-i', 'lo', '-n', '-tt', '--time-stamp-precision=micro', '--immediate-mode', '-l', '-A', '-B', '8192', filter], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const spawned = new Promise<never>((_, reject) => {
    child.once('error', (err) => reject(new Error(`tcpdump: ${err.message} (apt-get install -y tcpdump; capturing needs root)`)));
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('latin1').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  // Ready once it says it is listening.
  await Promise.race([
    spawned,
    new Promise<void>((resolve, reject) => {
      const check = setInterval(() => {
        if (err.includes('listening on')) {
          clearInterval(check);
          resolve();
        } else if (child.exitCode !== null) {
          clearInterval(check);
          reject(new Error(`tcpdump exited: ${err.trim()}`));
        }
      }, 20);
    }),
  ]);
  return {
    async stop() {
      await sleep(200); // the last packets' way from the kernel to tcpdump
      const exited = once(child, 'exit');
      child.kill('SIGINT');
      await exited;
      const dropped = Number(/(\d+) packets? dropped by kernel/.exec(err)?.[1] ?? 0);
      return { requests: parse(out), dropped };
    },
  };
}

/** tcpdump -tt -A output: a line `<epoch.micro> IP …` per packet, then its payload as text. */
function parse(text: string): WireRequest[] {
  const requests: WireRequest[] = [];
  const header = /^(\d+\.\d{6}) IP /gm;
  const starts = [...text.matchAll(header)];
  starts.forEach((m, i) => {
    const end = i + 1 < starts.length ? starts[i + 1]!.index : text.length;
    const payload = text.slice(m.index, end);
    requests.push({
      at: Number(m[1]) * 1000,
      action: /x-acs-action: ([A-Za-z]+)/i.exec(payload)?.[1],
      merchantBizId: /[?&]MerchantBizId=([A-Za-z0-9]+)/.exec(payload)?.[1],
    });
  });
  return requests;
}
