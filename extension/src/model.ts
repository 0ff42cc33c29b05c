/**
 * The panel's view model: archive JSON in, what the panel shows out.
 *
 * Pure functions plus two small timing helpers (debounce, latest-only), so
 * everything here is unit tested without a DOM or a server.
 */

/** Which version of a Dandiset the panel shows (the `defaultVersion` setting). */
export type PreferredVersion = 'draft' | 'latest-published';

/** A version as the archive lists it inside a Dandiset record. */
export interface IRawVersion {
  version: string;
  name?: string | null;
  asset_count?: number | null;
  size?: number | null;
  status?: string | null;
}

/** A Dandiset as `GET /dandisets/` lists it. */
export interface IRawDandiset {
  identifier: string;
  embargo_status?: string | null;
  draft_version?: IRawVersion | null;
  most_recent_published_version?: IRawVersion | null;
}

/** One page of `GET /dandisets/` (`count` is only given on page 1). */
export interface IRawPage {
  count?: number | null;
  next?: string | null;
  previous?: string | null;
  results: IRawDandiset[];
}

/** What `GET dandi/api/info` returns. */
export interface IServerInfo {
  archive_url: string;
  username: string | null;
  authenticated: boolean;
  error?: string | null;
}

/** One row of the results list. */
export interface IDandisetItem {
  identifier: string;
  name: string;
  version: string;
  assetCount: number | null;
  size: number | null;
  embargoed: boolean;
}

/** The results shown after one or more pages of a search. */
export interface ISearchPage {
  items: IDandisetItem[];
  /** Total matches when the archive reported it. */
  count: number | null;
  /** The last page loaded. */
  page: number;
  hasNext: boolean;
}

/** The account line of the panel. */
export interface IAccountView {
  archive: string;
  account: string;
  error: string | null;
}

/** Raised when the archive's JSON is not the shape the panel expects. */
export class UnexpectedResponseError extends Error {
  constructor(detail: string) {
    super(`Unexpected response from the archive: ${detail}`);
    this.name = 'UnexpectedResponseError';
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The row for one Dandiset, showing the preferred version when it has one. */
export function toDandisetItem(
  raw: IRawDandiset,
  preferred: PreferredVersion = 'draft'
): IDandisetItem {
  const published = raw.most_recent_published_version ?? null;
  const draft = raw.draft_version ?? null;
  const chosen =
    preferred === 'latest-published' ? (published ?? draft) : (draft ?? published);
  return {
    identifier: raw.identifier,
    name: chosen?.name?.trim() || '(untitled)',
    version: chosen?.version ?? 'draft',
    assetCount: chosen?.asset_count ?? null,
    size: chosen?.size ?? null,
    embargoed: (raw.embargo_status ?? 'OPEN') !== 'OPEN'
  };
}

/** Check and convert one page of `GET /dandisets/`. */
export function toSearchPage(
  raw: unknown,
  page: number,
  preferred: PreferredVersion = 'draft'
): ISearchPage {
  if (!isObject(raw) || !Array.isArray(raw.results)) {
    throw new UnexpectedResponseError('no "results" list');
  }
  const items = raw.results.map((entry, index) => {
    if (!isObject(entry) || typeof entry.identifier !== 'string') {
      throw new UnexpectedResponseError(`result ${index} has no identifier`);
    }
    return toDandisetItem(entry as unknown as IRawDandiset, preferred);
  });
  return {
    items,
    count: typeof raw.count === 'number' ? raw.count : null,
    page,
    hasNext: typeof raw.next === 'string' && raw.next.length > 0
  };
}

/** Append a further page to the results shown so far. */
export function appendPage(shown: ISearchPage, next: ISearchPage): ISearchPage {
  return {
    items: [...shown.items, ...next.items],
    count: shown.count ?? next.count,
    page: next.page,
    hasNext: next.hasNext
  };
}

/** The status line under the search box. */
export function describeResults(results: ISearchPage, search: string): string {
  if (results.items.length === 0) {
    return search.trim()
      ? `No Dandisets match "${search.trim()}".`
      : 'No Dandisets found.';
  }
  const total = results.count ?? results.items.length;
  const noun = total === 1 ? 'Dandiset' : 'Dandisets';
  return results.items.length < total
    ? `Showing ${results.items.length} of ${total} ${noun}`
    : `${total} ${noun}`;
}

/** The archive URL and account line from `GET dandi/api/info`. */
export function describeAccount(info: IServerInfo): IAccountView {
  let account: string;
  if (info.authenticated && info.username) {
    account = `Signed in as ${info.username}`;
  } else if (info.error) {
    account = 'Not signed in';
  } else {
    account = 'Anonymous (no DANDI API key on the server)';
  }
  return { archive: info.archive_url, account, error: info.error || null };
}

/** Human-readable size in bytes (powers of 1000, as the archive shows them). */
export function formatBytes(bytes: number | null): string {
  if (bytes === null || !Number.isFinite(bytes) || bytes < 0) {
    return '';
  }
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** A debounced function: calls `fn` once calls stop for `waitMs`. */
export interface IDebounced<A extends unknown[]> {
  (...args: A): void;
  /** Drop a pending call. */
  cancel(): void;
}

export function debounce<A extends unknown[]>(
  fn: (...args: A) => void,
  waitMs: number
): IDebounced<A> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const debounced = ((...args: A) => {
    if (timer !== null) {
      clearTimeout(timer);
    }
    timer = setTimeout(() => {
      timer = null;
      fn(...args);
    }, waitMs);
  }) as IDebounced<A>;
  debounced.cancel = () => {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
  };
  return debounced;
}

/**
 * Hands out tickets so that only the newest request's answer is shown:
 * a slow answer to an old search must not replace a newer one.
 */
export class LatestOnly {
  private _latest = 0;

  /** A ticket for a new request; makes every earlier ticket stale. */
  next(): number {
    this._latest += 1;
    return this._latest;
  }

  isCurrent(ticket: number): boolean {
    return ticket === this._latest;
  }
}

/** The plugin's settings (schema/plugin.json), as the panel uses them. */
export interface IPanelSettings {
  /** Archive API URL to use instead of the server's; "" for the server's. */
  archiveUrl: string;
  defaultVersion: PreferredVersion;
}

export const DEFAULT_SETTINGS: IPanelSettings = {
  archiveUrl: '',
  defaultVersion: 'draft'
};

/** Read the settings registry's composite value, falling back per field. */
export function toPanelSettings(composite: unknown): IPanelSettings {
  const raw = isObject(composite) ? composite : {};
  const archiveUrl =
    typeof raw.archiveUrl === 'string' ? raw.archiveUrl.trim() : '';
  const defaultVersion =
    raw.defaultVersion === 'latest-published' ? 'latest-published' : 'draft';
  return { archiveUrl, defaultVersion };
}
