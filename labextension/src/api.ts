/**
 * The kz REST API, through JupyterLab's ServerConnection (token, XSRF and base URL included).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** One deployment as `GET /kz/api/deployments` lists it. */
export interface IDeployment {
  name: string;
  model: string;
  status: string;
  engine: string | null;
  created_at: number;
  replicas: { id: string; status: string }[];
  error: { code: string; message: string; remediation: string } | null;
  plan: { task?: string; memory?: { total: number } } | null;
  history: { status: string; at: number; detail?: string }[];
  progress: { done: number; total: number } | null;
}

/** A deployment's figures of the last minute, as `GET /kz/api/stats` answers them. */
export interface IDeploymentStats {
  name: string;
  in_flight: number;
  engine_gauges: { queue?: number; running?: number; kv_cache?: number };
  now: {
    requests: number;
    requests_per_s: number;
    tokens_per_s: number;
    ttft_p50: number | null;
    ttft_p95: number | null;
    decode_tokens_per_s: number | null;
  };
  series: { t: number[]; tokens_per_s: number[]; ttft_p95: (number | null)[] };
}

/** `GET /kz/api/stats`: the figures of the deployments the user sees. */
export interface IStats {
  deployments: IDeploymentStats[];
}

/** The server machine as `GET /kz/api/hardware` describes it. */
export interface IHardware {
  cpu_model: string;
  cpu_cores_physical: number;
  ram_total: number;
  ram_available: number;
  gpus: { index: number; name: string; memory_total: number; memory_free: number }[];
  gpu_note: string;
}

/** One engine as `GET /kz/api/engines` lists it. */
export interface IEngine {
  name: string;
  available: boolean;
  reason: string;
}

/** A log tail: per replica, its lines and the detected issue lines [index, code, line]. */
export interface ILogs {
  name: string;
  replicas: Record<string, { lines: string[]; issues: [number, string, string][] }>;
  remedies?: Record<string, string>; // what to do about each issue code found
}

/** An error the server answered, with its message. */
export class KzApiError extends Error {}

/** Send a request to `/kz/api/...`; the server's message becomes the error. */
export async function requestAPI<T>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'kz/api', path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new KzApiError(`Cannot reach the kz server: ${error}`);
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : {};
  if (!response.ok) {
    throw new KzApiError(data.message || data.reason || `${response.status} ${response.statusText}`);
  }
  return data as T;
}

/** Bytes as GiB or MiB. */
export function formatBytes(size: number): string {
  const gib = size / 1024 ** 3;
  return gib >= 1 ? `${gib.toFixed(1)} GiB` : `${(size / 1024 ** 2).toFixed(0)} MiB`;
}

/** A deployment's figures in one line: rates, time to first token, generation speed, queue. */
export function formatFigures(stats: IDeploymentStats): string {
  const now = stats.now;
  const rate = (value: number) => (value < 10 ? value.toFixed(2) : value.toFixed(0));
  const parts = [
    `${rate(now.requests_per_s)} req/s`,
    `${rate(now.tokens_per_s)} tok/s`,
    `TTFT p50 ${now.ttft_p50 === null ? '-' : `${(now.ttft_p50 * 1000).toFixed(0)} ms`}`,
    `p95 ${now.ttft_p95 === null ? '-' : `${(now.ttft_p95 * 1000).toFixed(0)} ms`}`,
    `in flight ${stats.in_flight}`
  ];
  if (now.decode_tokens_per_s !== null) {
    parts.splice(4, 0, `generation ${rate(now.decode_tokens_per_s)} tok/s`);
  }
  if (stats.engine_gauges.queue !== undefined) {
    parts.push(`queue ${stats.engine_gauges.queue}`);
  }
  return parts.join(' · ');
}
