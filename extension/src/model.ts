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
  /** The server has a DANDI API key (for the archive it is configured with). */
  has_api_key?: boolean;
  /** Why `error` (the server's error reasons, e.g. "unreachable", "key-refused"). */
  error_reason?: string | null;
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
  /** The archive's embargo status: OPEN, EMBARGOED or UNEMBARGOING. */
  embargoStatus: string;
  /** It has a published version. */
  published: boolean;
  /** The latest published version, if any. */
  publishedVersion: string | null;
}

/** A small label shown beside a Dandiset: published, draft, embargoed. */
export interface IBadge {
  text: string;
  kind: 'published' | 'draft' | 'embargoed';
  title: string;
}

/** The badges of a result: whether it is published and whether it is embargoed. */
export function badgesOf(item: IDandisetItem): IBadge[] {
  const badges: IBadge[] = [];
  if (item.published) {
    badges.push({
      text: 'published',
      kind: 'published',
      title: `Published; latest version ${item.publishedVersion}`
    });
  } else {
    badges.push({ text: 'draft', kind: 'draft', title: 'Not published yet: draft only' });
  }
  if (item.embargoStatus === 'EMBARGOED') {
    badges.push({
      text: 'embargoed',
      kind: 'embargoed',
      title: 'Embargoed: only its owners can see its data'
    });
  } else if (item.embargoStatus === 'UNEMBARGOING') {
    badges.push({
      text: 'unembargoing',
      kind: 'embargoed',
      title: 'Its embargo is being lifted'
    });
  }
  return badges;
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
  const embargoStatus = raw.embargo_status ?? 'OPEN';
  return {
    identifier: raw.identifier,
    name: chosen?.name?.trim() || '(untitled)',
    version: chosen?.version ?? 'draft',
    assetCount: chosen?.asset_count ?? null,
    size: chosen?.size ?? null,
    embargoed: embargoStatus !== 'OPEN',
    embargoStatus,
    published: published !== null,
    publishedVersion: published?.version ?? null
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

/** What the status bar shows: the DANDI account the server uses, or how to set one. */
export interface IStatusView {
  text: string;
  title: string;
  signedIn: boolean;
}

export function describeStatus(info: IServerInfo | null, failure: string | null): IStatusView {
  if (!info) {
    return {
      text: 'DANDI: ?',
      title: failure ? `DANDI account unknown: ${failure}` : 'DANDI account: checking…',
      signedIn: false
    };
  }
  if (info.authenticated && info.username) {
    return {
      text: `DANDI: ${info.username}`,
      title: `The server uses the DANDI account ${info.username} on ${info.archive_url}.`,
      signedIn: true
    };
  }
  const problem = info.error ? `${info.error}\n\n` : '';
  if (info.has_api_key) {
    return {
      text: 'DANDI: account unknown',
      title: `${problem}Sign in to the hub again with your DANDI account, or check DANDI_API_KEY.`,
      signedIn: false
    };
  }
  return {
    text: 'DANDI: no account',
    title:
      `${problem}The server has no DANDI API key, so embargoed Dandisets stay hidden. ` +
      'Sign in to the hub with your DANDI account, or set DANDI_API_KEY in the ' +
      "server's environment (the key is on your account page of the DANDI archive).",
    signedIn: false
  };
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

/** A failure as the panel shows it: a short title, then the server's message. */
export interface IErrorView {
  title: string;
  message: string;
  /** Trying again may help (the archive or the network may come back). */
  retry: boolean;
}

const ERROR_TITLES: Record<string, [string, boolean]> = {
  unreachable: ['The DANDI archive cannot be reached', true],
  timeout: ['The DANDI archive did not answer in time', true],
  'rate-limited': ['The DANDI archive is busy', true],
  'archive-error': ['The DANDI archive failed', true],
  'not-found': ['Not found', false],
  unauthorized: ['Embargoed: not allowed', false],
  'key-refused': ["The archive refused the server's DANDI key", false],
  invalid: ['Invalid request', false],
  unsupported: ['Not supported', false],
  conflict: ['Conflict', false],
  'no-space': ['Not enough space', false],
  'no-extension': ['The DANDI server extension is not running', true],
  'server-unreachable': ['The Jupyter server cannot be reached', true],
  'bad-response': ['Unexpected answer', true]
};

export function describeError(error: unknown): IErrorView {
  const message = error instanceof Error ? error.message : String(error);
  const reason = (error as { reason?: unknown } | null)?.reason;
  const [title, retry] =
    (typeof reason === 'string' && ERROR_TITLES[reason]) ||
    (error instanceof UnexpectedResponseError
      ? ['Unexpected answer', true]
      : ['Something went wrong', true]);
  return { title, message, retry };
}

/** A Dandiset someone typed: "000006", "DANDI:000006/0.220126.1855", "000006@draft" or a web/API URL. */
export function parseDandisetRef(
  text: string
): { identifier: string; version: string | null } | null {
  const version = '(draft|\\d+\\.\\d{6}\\.\\d{4})';
  const plain = new RegExp(`^(?:DANDI:)?(\\d{6})(?:[/@]${version})?/?$`, 'i').exec(text.trim());
  const url = new RegExp(`/dandisets?/(\\d{6})(?:/(?:versions/)?${version})?(?:[/?#]|$)`).exec(
    text.trim()
  );
  const match = plain ?? url;
  return match ? { identifier: match[1], version: match[2]?.toLowerCase() ?? null } : null;
}
