/** A free TCP port on 127.0.0.1, for listeners whose port is chosen once at start-up. */
import net from 'node:net';

/** A free TCP port on 127.0.0.1 (bound and released; used once at start-up). */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => {
        resolve(port);
      });
    });
  });
}
