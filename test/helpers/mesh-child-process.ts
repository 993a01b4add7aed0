/**
 * Parent side of test/helpers/mesh-node-child.ts: spawn a MeshNode child (optionally inside a
 * network namespace), follow its JSON lines, wait for views, stop it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ClusterView } from '../../src/node/mesh/index.js';
import type { ChildConfig } from './mesh-node-child.js';

const REPO = join(import.meta.dirname, '..', '..');

export class MeshChild {
  readonly proc: ChildProcess;
  id = '';
  view: ClusterView | undefined;
  readonly views: ClusterView[] = [];
  readonly stderr: string[] = [];
  #waiters: (() => void)[] = [];
  exited: Promise<number | null>;

  constructor(cfg: ChildConfig, netns?: string) {
    const node = process.execPath;
    const args = ['--import', 'tsx', join(REPO, 'test/helpers/mesh-node-child.ts')];
    const env = { ...process.env, MESH_CHILD_CONFIG: JSON.stringify(cfg) };
    this.proc = netns === undefined
      ? spawn(node, args, { cwd: REPO, env, stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn('ip', ['netns', 'exec', netns, node, ...args], { cwd: REPO, env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((r) => this.proc.once('exit', (code) => { r(code); }));
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      let m: { event: string; id?: string; view?: ClusterView };
      try {
        m = JSON.parse(l);
      } catch {
        this.stderr.push(`stdout: ${l}`);
        return;
      }
      if (m.event === 'listening') this.id = m.id!;
      if (m.event === 'view') {
        this.view = m.view!;
        this.views.push(m.view!);
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    createInterface({ input: this.proc.stderr! }).on('line', (l) => {
      if (this.stderr.length < 200) this.stderr.push(l);
    });
  }

  stateOf(peerId: string): string | undefined {
    return this.view?.peers.find((p) => p.id === peerId)?.state;
  }

  /** Wait until `check` holds (re-checked on every line from the child). */
  async until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; child stderr:\n${this.stderr.slice(-20).join('\n')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 500));
        this.#waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  /** Ask the child to send leave and exit. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    this.proc.stdin!.write('stop\n');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}
