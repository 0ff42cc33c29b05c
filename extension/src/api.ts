/**
 * Requests to the dandilab server extension: URLs, JSON and errors.
 *
 * Pure apart from the injected `Fetch`, so it runs under jest without
 * JupyterLab; the plugin passes a fetch built on ServerConnection.
 */

/** Where the server extension's handlers live, under the server's base URL. */
export const API_PATH = 'dandi/api';

/** Results per page the panel asks for. */
export const PAGE_SIZE = 20;

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

export type Fetch = (url: string) => Promise<IResponseLike>;

/** A failed request, with a message meant for the user. */
export class DandiApiError extends Error {
  constructor(
    message: string,
    readonly status: number
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

/** URL of a server extension endpoint. */
export function apiUrl(
  baseUrl: string,
  endpoint: string,
  params: Record<string, QueryValue> = {}
): string {
  const url = joinUrl(baseUrl, API_PATH, endpoint);
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

/** GET a URL and parse JSON; any failure becomes a DandiApiError. */
export async function getJSON<T>(fetch: Fetch, url: string): Promise<T> {
  let response: IResponseLike;
  try {
    response = await fetch(url);
  } catch (reason) {
    throw new DandiApiError(
      `Could not reach the Jupyter server: ${String(reason)}`,
      0
    );
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
      response.status
    );
  }
  if (body === undefined) {
    throw new DandiApiError(
      `The Jupyter server sent a response that is not JSON (HTTP ${response.status}).`,
      response.status
    );
  }
  return body as T;
}
