/**
 * The node's admin service (docs/admin-api.md): the
 * {@link AdminServer} with the node's routes —
 * - `GET /healthz`: 200 `ok` while the node runs and is healthy, else 503 with the reasons;
 * - `GET /status`: the versioned status document (src/node/admin/status.ts, docs/admin-api.md);
 * - `GET /metrics`: Prometheus text from the node's own registry (src/node/admin/metrics.ts);
 * - `GET /history[?since=<ms>]`: the dashboard's ring buffer (src/node/admin/history.ts);
 * - `GET /`, `/dashboard.js`, `/dashboard.css`: the dashboard (src/node/admin/dashboard.ts)
 * — and a sampler that records one history sample every `historyIntervalMs` (default 5 s).
 * Other services add routes with {@link AdminService.addRoute}.
 */
import { AdminServer, type AdminLimits, type AdminRoute, type AdminTcpAccess } from '../../adapters/admin/server.js';
import type { ListenAddress } from '../../adapters/config/schema.js';
import type { Logger } from '../../adapters/log/logger.js';
import { TorbalanceError } from '../../core/errors.js';
import type { NodeStatus } from '../node-status.js';
import { PublishView } from '../publisher/view.js';
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from './dashboard.js';
import { DEFAULT_HISTORY_SAMPLES, History } from './history.js';
import { NodeMetrics } from './metrics.js';
import { observePublish, type AdminSnapshot, type PeriodInfo } from './snapshot.js';
import { buildStatus, healthzReasons } from './status.js';

export { DASHBOARD_COLORS, DASHBOARD_SERIES_COLORS } from './dashboard.js';
export { History, MAX_TRAFFIC_NODES, type HistoryDocument, type HistorySample, type HistoryTraffic } from './history.js';
export { MAX_NODE_SERIES, NodeMetrics, statusClass } from './metrics.js';
export { PeriodClock, parseControlIsoTime, periodInfoAt, periodParamsFor } from './period.js';
export { observePublish, type AdminSnapshot, type PeriodInfo } from './snapshot.js';
export { buildStatus, healthzReasons, publisherReportJson, STATUS_VERSION, type NodeTraffic, type PublisherReport, type StatusDocument, type StatusNode } from './status.js';

/** Where the admin service reads the node. */
export interface AdminSources {
  /** A cheap snapshot (no tor round trip): history samples and metrics scrapes. */
  readonly snapshot: () => NodeStatus;
  /** A fresh status for `/status` (may ask tor). Default: {@link snapshot}. */
  readonly status?: () => Promise<NodeStatus>;
  /** Time-period facts (cached reading; may ask tor now and then). */
  readonly period?: () => Promise<PeriodInfo | undefined>;
  /** Wall clock ms. Default Date.now. */
  readonly now?: () => number;
}

/** The node's admin routes and their state (usable without a server, for tests). */
export class AdminRoutes {
  readonly metrics = new NodeMetrics();
  readonly view = new PublishView();
  readonly history: History;
  readonly #src: AdminSources;
  #lastPeriod: PeriodInfo | undefined;

  constructor(src: AdminSources, historySamples = DEFAULT_HISTORY_SAMPLES, historyIntervalMs = 5000) {
    this.#src = src;
    this.history = new History(historySamples, historyIntervalMs);
  }

  #now(): number {
    return (this.#src.now ?? Date.now)();
  }

  async #period(): Promise<PeriodInfo | undefined> {
    if (this.#src.period === undefined) return undefined;
    try {
      this.#lastPeriod = (await this.#src.period()) ?? this.#lastPeriod;
    } catch (e) {
      if (!(e instanceof TorbalanceError)) throw e;
      // tor could not be asked: keep the last reading
    }
    return this.#lastPeriod;
  }

  /** A snapshot observed by the publish view and the metrics. */
  async snapshot(fresh: boolean): Promise<AdminSnapshot> {
    const node = fresh && this.#src.status !== undefined ? await this.#src.status() : this.#src.snapshot();
    const snap: AdminSnapshot = { atMs: this.#now(), node, period: await this.#period() };
    observePublish(this.view, node);
    this.metrics.update(snap, this.view);
    return snap;
  }

  /** Take one history sample. */
  async sample(): Promise<void> {
    const snap = await this.snapshot(false);
    this.history.record(snap, this.view);
  }

  /** The routes. */
  routes(): AdminRoute[] {
    return [
      {
        method: 'GET',
        path: '/healthz',
        handler: async () => {
          const reasons = healthzReasons(await this.snapshot(false));
          return reasons.length === 0 ? { status: 200, body: 'ok\n', contentType: 'text/plain; charset=utf-8' } : { status: 503, json: { status: 'unhealthy', reasons } };
        },
      },
      { method: 'GET', path: '/status', handler: async () => ({ status: 200, json: buildStatus(await this.snapshot(true), this.view) }) },
      {
        method: 'GET',
        path: '/metrics',
        handler: async () => {
          await this.snapshot(false);
          return { status: 200, body: await this.metrics.text(), contentType: this.metrics.contentType };
        },
      },
      {
        method: 'GET',
        path: '/history',
        handler: (req) => {
          const since = req.query.get('since');
          const n = since === null ? undefined : Number(since);
          return { status: 200, json: this.history.document(this.view, n !== undefined && Number.isFinite(n) ? n : undefined) };
        },
      },
      { method: 'GET', path: '/', handler: () => ({ status: 200, body: DASHBOARD_HTML, contentType: 'text/html; charset=utf-8' }) },
      { method: 'GET', path: '/dashboard.js', handler: () => ({ status: 200, body: DASHBOARD_JS, contentType: 'text/javascript; charset=utf-8' }) },
      { method: 'GET', path: '/dashboard.css', handler: () => ({ status: 200, body: DASHBOARD_CSS, contentType: 'text/css; charset=utf-8' }) },
    ];
  }
}

/** Options of {@link AdminService}. */
export interface AdminServiceOptions extends AdminSources {
  readonly listen: ListenAddress;
  readonly logger?: Logger;
  readonly limits?: AdminLimits;
  /** Who may use the routes over a TCP listen address (docs/SECURITY.md, "Admin API"). */
  readonly tcpAccess?: AdminTcpAccess;
  /** Default 5000. */
  readonly historyIntervalMs?: number;
  /** Default 720. */
  readonly historySamples?: number;
}

/** The admin server with the node's routes and the history sampler. */
export class AdminService {
  readonly server: AdminServer;
  readonly routes: AdminRoutes;
  readonly #o: AdminServiceOptions;
  #timer: NodeJS.Timeout | undefined;

  constructor(o: AdminServiceOptions) {
    this.#o = o;
    const intervalMs = o.historyIntervalMs ?? 5000;
    this.routes = new AdminRoutes(o, o.historySamples, intervalMs);
    this.server = new AdminServer({
      listen: o.listen,
      routes: this.routes.routes(),
      ...(o.logger === undefined ? {} : { logger: o.logger }),
      ...(o.limits === undefined ? {} : { limits: o.limits }),
      ...(o.tcpAccess === undefined ? {} : { tcpAccess: o.tcpAccess }),
    });
  }

  /** Add a route (e.g. a service's own admin routes). */
  addRoute(route: AdminRoute): void {
    this.server.addRoute(route);
  }

  /** Listen and start sampling. */
  async start(): Promise<void> {
    await this.server.start();
    const sample = (): void => {
      this.routes.sample().catch((e: unknown) => {
        this.#o.logger?.debug({ err: e instanceof Error ? e.message : String(e) }, 'history sample failed');
      });
    };
    sample();
    this.#timer = setInterval(sample, this.#o.historyIntervalMs ?? 5000);
    this.#timer.unref();
  }

  /** Stop sampling and the server. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.server.stop();
  }
}
