/**
 * The asset tree and the actions on an asset: folder pages in, rows out;
 * notebook cells, URLs and what each action may do. Pure, unit tested.
 */
import { UnexpectedResponseError } from './model';

/** What kind of content an asset holds, as far as the actions care. */
export type AssetKind = 'nwb' | 'zarr' | 'other';

/** One row of a folder: a sub-folder or a file (an asset). */
export interface ITreeEntry {
  /** Full path in the Dandiset ("sub-X/sub-X_ses-Y.nwb"; folders without a trailing "/"). */
  path: string;
  /** The last part of the path. */
  name: string;
  folder: boolean;
  /** Bytes (a folder: everything under it). */
  size: number | null;
  /** Files under a folder (1 for a file). */
  files: number | null;
  assetId: string | null;
  /** The content's S3 URL, when the archive gave one. */
  s3Url: string | null;
  kind: AssetKind;
  /** A short type label: "NWB", "Zarr", "JSON", ... ("" when unknown). */
  type: string;
}

/** A page of a folder. */
export interface IFolderPage {
  prefix: string;
  entries: ITreeEntry[];
  count: number | null;
  page: number;
  hasNext: boolean;
}

/** An asset as the actions need it: which Dandiset and version it was seen in. */
export interface IAssetContext {
  dandiset: string;
  version: string;
  path: string;
  assetId: string;
  s3Url: string | null;
  kind: AssetKind;
  size: number | null;
  /** The archive API the panel browses, e.g. "https://api.dandiarchive.org/api". */
  archiveUrl: string;
  /** The archive URL setting when it overrides the server's ("" otherwise). */
  archiveOverride: string;
}

const TYPES: Array<[RegExp, string, AssetKind]> = [
  [/\.nwb$/i, 'NWB', 'nwb'],
  [/\.ome\.zarr$/i, 'OME-Zarr', 'zarr'],
  [/\.(zarr|ngff)$/i, 'Zarr', 'zarr'],
  [/\.nii(\.gz)?$/i, 'NIfTI', 'other'],
  [/\.(h5|hdf5)$/i, 'HDF5', 'other'],
  [/\.(tif|tiff)$/i, 'TIFF', 'other'],
  [/\.(mkv|mp4|avi|mov|webm)$/i, 'Video', 'other'],
  [/\.(png|jpe?g|gif|svg)$/i, 'Image', 'other'],
  [/\.json$/i, 'JSON', 'other'],
  [/\.tsv$/i, 'TSV', 'other'],
  [/\.csv$/i, 'CSV', 'other'],
  [/\.(ya?ml)$/i, 'YAML', 'other'],
  [/\.(md|txt|rst)$|(^|\/)(README|CHANGES|LICENSE)[^/]*$/i, 'Text', 'other'],
  [/\.(gz|zip|tar)$/i, 'Archive', 'other'],
  [/\.(py|m|ipynb)$/i, 'Code', 'other']
];

/** The type label and kind of a file, from its name. */
export function typeOf(path: string): { type: string; kind: AssetKind } {
  for (const [pattern, type, kind] of TYPES) {
    if (pattern.test(path)) {
      return { type, kind };
    }
  }
  return { type: '', kind: 'other' };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A folder's prefix as the panel keeps it: "" for the top, else "a/b/". */
export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, '');
  return trimmed ? `${trimmed}/` : '';
}

/** The folder above ("a/b/" -> "a/", "a/" -> ""). */
export function parentPrefix(prefix: string): string {
  const parts = normalizePrefix(prefix).split('/').filter(Boolean);
  parts.pop();
  return parts.length ? `${parts.join('/')}/` : '';
}

/** The breadcrumb of a folder: the Dandiset's top, then each folder. */
export function breadcrumbs(
  prefix: string,
  top: string
): Array<{ label: string; prefix: string }> {
  const crumbs = [{ label: top, prefix: '' }];
  let path = '';
  for (const part of normalizePrefix(prefix).split('/').filter(Boolean)) {
    path += `${part}/`;
    crumbs.push({ label: part, prefix: path });
  }
  return crumbs;
}

/** Check and convert one page of `GET .../paths?path_prefix=`. */
export function toFolderPage(raw: unknown, prefix: string, page: number): IFolderPage {
  if (!isObject(raw) || !Array.isArray(raw.results)) {
    throw new UnexpectedResponseError('no "results" list in the folder listing');
  }
  const entries = raw.results.map((r, index): ITreeEntry => {
    if (!isObject(r) || typeof r.path !== 'string') {
      throw new UnexpectedResponseError(`folder entry ${index} has no path`);
    }
    const path = r.path.replace(/\/+$/, '');
    const asset = isObject(r.asset) ? r.asset : null;
    const folder = asset === null;
    const { type, kind } = folder ? { type: '', kind: 'other' as AssetKind } : typeOf(path);
    return {
      path,
      name: path.slice(path.lastIndexOf('/') + 1),
      folder,
      size: typeof r.aggregate_size === 'number' ? r.aggregate_size : null,
      files: typeof r.aggregate_files === 'number' ? r.aggregate_files : null,
      assetId: asset && typeof asset.asset_id === 'string' ? asset.asset_id : null,
      s3Url: asset && typeof asset.url === 'string' ? asset.url : null,
      kind,
      type
    };
  });
  // Folders first, then files, each by name (the archive sorts by path only).
  entries.sort((a, b) =>
    a.folder === b.folder ? a.name.localeCompare(b.name, 'en', { numeric: true }) : a.folder ? -1 : 1
  );
  return {
    prefix: normalizePrefix(prefix),
    entries,
    count: typeof raw.count === 'number' ? raw.count : null,
    page,
    hasNext: typeof raw.next === 'string' && raw.next.length > 0
  };
}

/** Append a further page of the same folder. */
export function appendFolderPage(shown: IFolderPage, next: IFolderPage): IFolderPage {
  return {
    ...next,
    entries: [...shown.entries, ...next.entries],
    count: shown.count ?? next.count
  };
}

/** The asset context of a file row. */
export function assetContext(
  entry: ITreeEntry,
  dandiset: string,
  version: string,
  archiveUrl: string,
  archiveOverride = ''
): IAssetContext | null {
  if (entry.folder || !entry.assetId) {
    return null;
  }
  return {
    dandiset,
    version,
    path: entry.path,
    assetId: entry.assetId,
    s3Url: entry.s3Url,
    kind: entry.kind,
    size: entry.size,
    archiveUrl: archiveUrl.replace(/\/+$/, ''),
    archiveOverride: archiveOverride.replace(/\/+$/, '')
  };
}

/** What can be done with an asset. */
export interface ICapabilities {
  open: boolean;
  explore: boolean;
  copyS3: boolean;
  copyDandi: boolean;
  neurosift: boolean;
  download: boolean;
}

export function capabilities(asset: IAssetContext | null): ICapabilities {
  return {
    open: !!asset && (asset.kind === 'nwb' || asset.kind === 'zarr'),
    explore: !!asset && asset.kind === 'nwb',
    copyS3: !!asset?.s3Url,
    copyDandi: !!asset,
    neurosift: !!asset && asset.kind === 'nwb',
    download: !!asset && asset.kind !== 'zarr'
  };
}

/** A Python string literal for any text (JSON's escapes are all valid Python). */
export function pyString(value: string): string {
  return JSON.stringify(value);
}

/** The reference dandilab.open_nwb/open_zarr accept, pinned to the version. */
export function assetRef(asset: Pick<IAssetContext, 'dandiset' | 'version' | 'path'>): string {
  return `DANDI:${asset.dandiset}/${asset.version}/${asset.path}`;
}

function archiveLines(asset: IAssetContext): { setup: string[]; argument: string } {
  if (!asset.archiveOverride) {
    return { setup: [], argument: '' };
  }
  return {
    setup: [`archive = dandilab.Archive(${pyString(asset.archiveOverride)})`],
    argument: ', archive=archive'
  };
}

/** The cell "Open in notebook" inserts: open the asset lazily, show it. */
export function openCell(asset: IAssetContext): string {
  const { setup, argument } = archiveLines(asset);
  const ref = pyString(assetRef(asset));
  const open =
    asset.kind === 'zarr'
      ? [`z = dandilab.open_zarr(${ref}${argument})`, 'z']
      : [`nwb = dandilab.open_nwb(${ref}${argument})`, 'nwb'];
  return [
    `# Dandiset ${asset.dandiset}, version ${asset.version}: streamed lazily, read on demand`,
    'import dandilab',
    '',
    ...setup,
    ...open
  ].join('\n');
}

/** The cell "Explore" inserts: the NWB explorer widget over the asset. */
export function exploreCell(asset: IAssetContext): string {
  const { setup, argument } = archiveLines(asset);
  return [
    `# Dandiset ${asset.dandiset}, version ${asset.version}: explore the file's contents`,
    'import dandilab',
    'import dandilab.widgets',
    '',
    ...setup,
    `nwb = dandilab.open_nwb(${pyString(assetRef(asset))}${argument})`,
    'dandilab.widgets.NWBExplorer(nwb)'
  ].join('\n');
}

/** The archive URL of the asset's content, pinned to the version (works with `dandi download`). */
export function dandiUrl(asset: IAssetContext): string {
  return (
    `${asset.archiveUrl}/dandisets/${asset.dandiset}/versions/${asset.version}` +
    `/assets/${asset.assetId}/download/`
  );
}

/** Neurosift's view of an NWB asset (an external web app). */
export function neurosiftUrl(asset: IAssetContext): string {
  const content = `${asset.archiveUrl}/assets/${asset.assetId}/download/`;
  return (
    `https://neurosift.app/nwb?url=${encodeURIComponent(content)}` +
    `&dandisetId=${asset.dandiset}&dandisetVersion=${asset.version}`
  );
}
