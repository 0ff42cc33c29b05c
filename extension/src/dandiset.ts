/**
 * The Dandiset view's model: a Dandiset record, its versions and a version's
 * metadata in; title, description, contributors, license, citation, DOI and
 * the version picker's options out. Pure, unit tested.
 */
import { IRawDandiset, IRawVersion, PreferredVersion, UnexpectedResponseError } from './model';

/** `GET dandi/api/dandisets/ID/versions/V`: a version's summary and its metadata. */
export interface IRawVersionInfo extends IRawVersion {
  created?: string | null;
  metadata?: Record<string, unknown> | null;
}

/** A contributor as the panel lists them. */
export interface IContributor {
  name: string;
  /** Readable roles, e.g. ["Author", "Contact person"]. */
  roles: string[];
  organization: boolean;
}

/** One option of the version picker. */
export interface IVersionOption {
  version: string;
  label: string;
  published: boolean;
}

/** Everything the Dandiset view shows about one version. */
export interface IDandisetView {
  identifier: string;
  version: string;
  title: string;
  description: string;
  contributors: IContributor[];
  /** SPDX identifiers without the "spdx:" prefix, e.g. "CC-BY-4.0". */
  licenses: string[];
  citation: string;
  /** The version's DOI (published versions only; drafts have none). */
  doi: string | null;
  doiUrl: string | null;
  /** The Dandiset's page in the DANDI web app. */
  webUrl: string | null;
  keywords: string[];
  assetCount: number | null;
  size: number | null;
  embargoStatus: string;
  published: boolean;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown): string {
  return typeof value === 'string' ? value.trim() : '';
}

const ROLE_NAMES: Record<string, string> = {
  ContactPerson: 'Contact person',
  DataCollector: 'Data collector',
  DataCurator: 'Data curator',
  DataManager: 'Data manager',
  FormalAnalysis: 'Formal analysis',
  FundingAcquisition: 'Funding acquisition',
  ProjectLeader: 'Project leader',
  ProjectManager: 'Project manager',
  ProjectMember: 'Project member',
  RegistrationAuthority: 'Registration authority',
  RelatedPerson: 'Related person',
  ResearchGroup: 'Research group',
  RightsHolder: 'Rights holder',
  WorkPackageLeader: 'Work package leader'
};

/** "dcite:ContactPerson" -> "Contact person". */
export function roleName(role: string): string {
  const bare = role.replace(/^[a-z]+:/, '');
  return ROLE_NAMES[bare] ?? bare;
}

/** The contributors of a version's metadata, people and organisations, in order. */
export function toContributors(metadata: Record<string, unknown>): IContributor[] {
  const raw: unknown[] = Array.isArray(metadata.contributor) ? metadata.contributor : [];
  const contributors: IContributor[] = [];
  for (const c of raw) {
    const name = isObject(c) ? text(c.name) : '';
    if (isObject(c) && name) {
      const roles = Array.isArray(c.roleName)
        ? c.roleName.filter((r): r is string => typeof r === 'string').map(roleName)
        : [];
      contributors.push({ name, roles, organization: c.schemaKey === 'Organization' });
    }
  }
  return contributors;
}

/** "Economo, Michael N. (Author, Contact person)". */
export function describeContributor(contributor: IContributor): string {
  return contributor.roles.length
    ? `${contributor.name} (${contributor.roles.join(', ')})`
    : contributor.name;
}

/** Check and convert what the Dandiset view needs. */
export function toDandisetView(
  dandiset: IRawDandiset,
  info: IRawVersionInfo
): IDandisetView {
  if (!isObject(dandiset) || typeof dandiset.identifier !== 'string') {
    throw new UnexpectedResponseError('a Dandiset without an identifier');
  }
  if (!isObject(info) || typeof info.version !== 'string') {
    throw new UnexpectedResponseError('a version without a version number');
  }
  const metadata = isObject(info.metadata) ? info.metadata : {};
  const published = info.version !== 'draft';
  // Drafts carry a placeholder DOI (10.80507/...): only published versions have one.
  const doi = published && text(metadata.doi) ? text(metadata.doi) : null;
  const licenses = (Array.isArray(metadata.license) ? metadata.license : [])
    .filter((l): l is string => typeof l === 'string')
    .map(l => l.replace(/^spdx:/, ''));
  const keywords = (Array.isArray(metadata.keywords) ? metadata.keywords : []).filter(
    (k): k is string => typeof k === 'string'
  );
  const url = text(metadata.url);
  return {
    identifier: dandiset.identifier,
    version: info.version,
    title: text(metadata.name) || text(info.name) || '(untitled)',
    description: text(metadata.description),
    contributors: toContributors(metadata),
    licenses,
    citation: text(metadata.citation),
    doi,
    doiUrl: doi ? `https://doi.org/${doi}` : null,
    webUrl: /^https?:\/\//.test(url) ? url : null,
    keywords,
    assetCount: typeof info.asset_count === 'number' ? info.asset_count : null,
    size: typeof info.size === 'number' ? info.size : null,
    embargoStatus: dandiset.embargo_status ?? 'OPEN',
    published
  };
}

/** The version a Dandiset opens at, by the `defaultVersion` setting. */
export function initialVersion(
  dandiset: IRawDandiset,
  preferred: PreferredVersion
): string {
  const published = dandiset.most_recent_published_version?.version;
  return preferred === 'latest-published' && published ? published : 'draft';
}

function day(iso: unknown): string {
  return typeof iso === 'string' && /^\d{4}-\d{2}-\d{2}/.test(iso) ? iso.slice(0, 10) : '';
}

/**
 * The version picker's options: the draft first, then published versions,
 * newest first. `current` is always among them.
 */
export function toVersionOptions(
  raw: unknown,
  dandiset: IRawDandiset | null,
  current: string
): IVersionOption[] {
  const listed: Array<{ version: string; created?: unknown }> = [];
  if (isObject(raw) && Array.isArray(raw.results)) {
    for (const v of raw.results) {
      if (isObject(v) && typeof v.version === 'string') {
        listed.push({ version: v.version, created: v.created });
      }
    }
  }
  for (const v of [dandiset?.draft_version, dandiset?.most_recent_published_version]) {
    if (v?.version && !listed.some(l => l.version === v.version)) {
      listed.push({ version: v.version, created: (v as IRawVersionInfo).created });
    }
  }
  if (!listed.some(l => l.version === current)) {
    listed.push({ version: current });
  }
  const published = listed
    .filter(l => l.version !== 'draft')
    .sort((a, b) => b.version.localeCompare(a.version, 'en', { numeric: true }));
  const options: IVersionOption[] = [];
  if (listed.some(l => l.version === 'draft')) {
    options.push({ version: 'draft', label: 'draft (latest changes)', published: false });
  }
  published.forEach((l, index) => {
    const date = day(l.created);
    const notes = [index === 0 ? 'latest' : '', date].filter(Boolean).join(', ');
    options.push({
      version: l.version,
      label: notes ? `${l.version} (${notes})` : l.version,
      published: true
    });
  });
  return options;
}
