/**
 * Downloads to the home directory as the panel shows them: the server's
 * records in, a label, a progress fraction and the buttons each row offers
 * out. Pure, unit tested.
 */
import { formatBytes } from './model';

/** A download as `GET dandi/api/downloads` lists it. */
export interface IDownload {
  id: string;
  dandiset: string;
  version: string;
  asset_id: string;
  path: string;
  dest: string;
  size: number | null;
  received: number;
  resumed_from: number;
  state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  error: string | null;
  started: number;
  finished: number | null;
}

/** One row of the downloads list. */
export interface IDownloadView {
  id: string;
  name: string;
  /** 0..1, or null when the size is unknown. */
  fraction: number | null;
  /** "12.3 MB of 45.6 MB · 3.2 MB/s", "Done: 45.6 MB in dandi/...", the error... */
  detail: string;
  active: boolean;
  canCancel: boolean;
  canRetry: boolean;
  canShow: boolean;
  failed: boolean;
}

/** The last two observations of a download, for its rate. */
export interface IProgressSample {
  received: number;
  at: number;
}

export function isActive(download: IDownload): boolean {
  return download.state === 'queued' || download.state === 'running';
}

/** Bytes per second between two samples, or null. */
export function rate(previous: IProgressSample | undefined, now: IProgressSample): number | null {
  if (!previous || now.at <= previous.at || now.received < previous.received) {
    return null;
  }
  return ((now.received - previous.received) * 1000) / (now.at - previous.at);
}

export function describeDownload(download: IDownload, bytesPerSecond: number | null = null): IDownloadView {
  const name = download.path.slice(download.path.lastIndexOf('/') + 1) || download.dest;
  const size = download.size;
  const fraction =
    size && size > 0 ? Math.min(1, download.received / size) : size === 0 ? 1 : null;
  const got = formatBytes(download.received);
  const of = size !== null ? ` of ${formatBytes(size)}` : '';
  const resumed =
    download.resumed_from > 0 ? ` (resumed at ${formatBytes(download.resumed_from)})` : '';
  let detail: string;
  switch (download.state) {
    case 'queued':
      detail = 'Waiting for another download to finish…';
      break;
    case 'running':
      detail =
        `${got}${of}` +
        (bytesPerSecond !== null ? ` · ${formatBytes(bytesPerSecond)}/s` : '') +
        resumed;
      break;
    case 'done':
      detail = `Done: ${formatBytes(size ?? download.received)} in ~/${download.dest}`;
      break;
    case 'cancelled':
      detail = `Cancelled at ${got}${of}; Retry resumes from there.`;
      break;
    default:
      detail = download.error ?? 'Failed.';
  }
  return {
    id: download.id,
    name,
    fraction,
    detail,
    active: isActive(download),
    canCancel: isActive(download),
    canRetry: download.state === 'failed' || download.state === 'cancelled',
    canShow: download.state === 'done',
    failed: download.state === 'failed'
  };
}

/** How often the panel polls while downloads run, in ms. */
export const POLL_MS = 700;
