/**
 * Requests to the dandilab server extension: URLs, JSON and errors.
 *
 * Pure apart from the injected `Fetch`, so it runs under jest without
 * JupyterLab; the plugin passes a fetch built on ServerConnection (which adds
 * the server's credentials and XSRF token).
 */

/** Where the server extension's handlers live, under the server's base URL. */
export const API_PATH = 'dandi/api';

/** Results per page the panel asks for. */
export const PAGE_SIZE = 20;

/** Folder entries per page of the asset tree. */
export const PATHS_PAGE_SIZE = 200;

/** The longest search the server accepts. */
export const MAX_SEARCH_LENGTH = 200;

export type QueryValue = string | number | null | undefined;

/** What the panel sends to `GET dandi/api/dandisets`. */
export interface ISearchQuery {
  search: string;
  page: number;
  pageSize?: number;
  ordering?: string;
  /** An archive other than the server's; the server then calls it without its API key. */
  archiveUrl?: string;
}

/** The part of a fetch Response this module reads. */
export interface IResponseLike {
  ok: boolean;
  status: number;
  statusText?: string;
  text(): Promise<string>;
}

/** The part of a fetch RequestInit this module sets. */
export interface IRequestInit {
  method?: 'GET' | 'POST' | 'DELETE';
  body?: string;
}

export type Fetch = (url: string, init?: IRequestInit) => Promise<IResponseLike>;

/**
 * Why a request failed, as the server extension says it (its `reason`), plus
 * `server-unreachable` (no answer from the Jupyter server) and `bad-response`.
 */
export type ErrorReason =
  | 'invalid'
  | 'unsupported'
  | 'not-found'
  | 'unauthorized'
  | 'key-refused'
  | 'unreachable'
  | 'timeout'
  | 'rate-limited'
  | 'archive-error'
  | 'conflict'
  | 'no-space'
  | 'no-extension'
  | 'server-unreachable'
  | 'bad-response'
  | 'unknown';

const REASONS: ReadonlySet<string> = new Set([
  'invalid',
  'unsupported',
  'not-found',
  'unauthorized',
  'key-refused',
  'unreachable',
  'timeout',
  'rate-limited',
  'archive-error',
  'conflict',
  'no-space'
]);

/** A failed request, with a message meant for the user. */
export class DandiApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly reason: ErrorReason = 'unknown'
  ) {
    super(message);
    this.name = 'DandiApiError';
  }
}

/** Join URL parts with exactly one slash between them. */
export function joinUrl(base: string, ...parts: string[]): string {
  return [base.replace(/\/+$/, ''), ...parts.map(p => p.replace(/^\/+|\/+$/g, ''))]
    .filter((p, i) => i === 0 || p.length > 0)
    .join('/');
}

/** Encode a query string, leaving out empty values. */
export function queryString(params: Record<string, QueryValue>): string {
  return Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(
      ([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`
    )
    .join('&');
}

/** URL of a server extension endpoint; path parts are URL-encoded. */
export function apiUrl(
  baseUrl: string,
  endpoint: string | string[],
  params: Record<string, QueryValue> = {}
): string {
  const parts = Array.isArray(endpoint)
    ? endpoint.map(p => encodeURIComponent(p))
    : [endpoint];
  const url = joinUrl(baseUrl, API_PATH, ...parts);
  const query = queryString(params);
  return query ? `${url}?${query}` : url;
}

/** URL of `GET dandi/api/info`. */
export function infoUrl(baseUrl: string, archiveUrl = ''): string {
  return apiUrl(baseUrl, 'info', { archive: archiveUrl.trim() });
}

/** URL of `GET dandi/api/dandisets` for one page of a search. */
export function dandisetsUrl(baseUrl: string, query: ISearchQuery): string {
  return apiUrl(baseUrl, 'dandisets', {
    search: query.search.trim().slice(0, MAX_SEARCH_LENGTH),
    page: Math.max(1, Math.floor(query.page)),
    page_size: query.pageSize ?? PAGE_SIZE,
    ordering: query.ordering,
    archive: query.archiveUrl?.trim()
  });
}

/** URL of `GET dandi/api/dandisets/ID`. */
export function dandisetUrl(baseUrl: string, id: string, archiveUrl = ''): string {
  return apiUrl(baseUrl, ['dandisets', id], { archive: archiveUrl.trim() });
}

/** URL of `GET dandi/api/dandisets/ID/versions` (first page: up to 100 versions). */
export function versionsUrl(baseUrl: string, id: string, archiveUrl = ''): string {
  return apiUrl(baseUrl, ['dandisets', id, 'versions'], {
    page_size: 100,
    archive: archiveUrl.trim()
  });
}

/** URL of `GET dandi/api/dandisets/ID/versions/V` (summary and metadata). */
export function versionUrl(
  baseUrl: string,
  id: string,
  version: string,
  archiveUrl = ''
): string {
  return apiUrl(baseUrl, ['dandisets', id, 'versions', version], {
    archive: archiveUrl.trim()
  });
}

/** URL of `GET dandi/api/dandisets/ID/versions/V/paths` for one folder's page. */
export function pathsUrl(
  baseUrl: string,
  id: string,
  version: string,
  pathPrefix: string,
  page = 1,
  archiveUrl = ''
): string {
  return apiUrl(baseUrl, ['dandisets', id, 'versions', version, 'paths'], {
    path_prefix: pathPrefix,
    page,
    page_size: PATHS_PAGE_SIZE,
    archive: archiveUrl.trim()
  });
}

/** URL of `GET dandi/api/dandisets/ID/versions/V/assets/ASSET`. */
export function assetUrl(
  baseUrl: string,
  id: string,
  version: string,
  assetId: string,
  archiveUrl = ''
): string {
  return apiUrl(baseUrl, ['dandisets', id, 'versions', version, 'assets', assetId], {
    archive: archiveUrl.trim()
  });
}

/** URL of `dandi/api/downloads` (GET lists, POST starts one). */
export function downloadsUrl(baseUrl: string): string {
  return apiUrl(baseUrl, 'downloads');
}

/** URL of `dandi/api/downloads/ID` (GET progress, DELETE cancels or forgets). */
export function downloadUrl(baseUrl: string, id: string, discard = false): string {
  return apiUrl(baseUrl, ['downloads', id], { discard: discard ? 1 : undefined });
}

/** Said when the browser got no answer at all from the Jupyter server. */
export const SERVER_UNREACHABLE =
  'Your Jupyter server did not answer: it may have stopped, or the network to it dropped. ' +
  'Check that it is running (File > Hub Control Panel; start it again if it is stopped), then press Retry.';

/** The user-facing message for a failed response. */
export function errorMessage(
  status: number,
  body: unknown,
  statusText = ''
): string {
  // jupyter_server's APIHandler and our handlers put it in `message`.
  if (body && typeof body === 'object') {
    const message = (body as { message?: unknown }).message;
    if (typeof message === 'string' && message.length > 0) {
      return message;
    }
  }
  if (status === 404) {
    return (
      'The DANDI server extension did not answer (HTTP 404). ' +
      'Is the dandilab server extension installed and enabled?'
    );
  }
  return `The Jupyter server answered HTTP ${status}${statusText ? ` ${statusText}` : ''}.`;
}

/** The reason of a failed response: the server's, else guessed from the status. */
export function errorReason(status: number, body: unknown): ErrorReason {
  if (body && typeof body === 'object') {
    const reason = (body as { reason?: unknown }).reason;
    if (typeof reason === 'string' && REASONS.has(reason)) {
      return reason as ErrorReason;
    }
    if (typeof (body as { message?: unknown }).message === 'string') {
      return status === 403 ? 'unauthorized' : 'unknown';
    }
  }
  return status === 404 ? 'no-extension' : 'unknown';
}

/** Send a request and parse its JSON answer; any failure becomes a DandiApiError. */
export async function requestJSON<T>(
  fetch: Fetch,
  url: string,
  init?: IRequestInit
): Promise<T> {
  let response: IResponseLike;
  try {
    response = await fetch(url, init);
  } catch (reason) {
    // The browser's own words ("TypeError: Failed to fetch") tell a user nothing: say what.
    console.warn('dandilab: request failed', url, reason);
    throw new DandiApiError(SERVER_UNREACHABLE, 0, 'server-unreachable');
  }
  const text = await response.text();
  let body: unknown = undefined;
  if (text.length > 0) {
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
  }
  if (!response.ok) {
    throw new DandiApiError(
      errorMessage(response.status, body, response.statusText),
      response.status,
      errorReason(response.status, body)
    );
  }
  if (body === undefined) {
    throw new DandiApiError(
      `The Jupyter server sent a response that is not JSON (HTTP ${response.status}).`,
      response.status,
      'bad-response'
    );
  }
  return body as T;
}

/** GET a URL and parse JSON; any failure becomes a DandiApiError. */
export function getJSON<T>(fetch: Fetch, url: string): Promise<T> {
  return requestJSON<T>(fetch, url);
}
