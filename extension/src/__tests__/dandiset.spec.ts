import {
  describeContributor,
  initialVersion,
  roleName,
  toContributors,
  toDandisetView,
  toVersionOptions
} from '../dandiset';
import { UnexpectedResponseError } from '../model';

// Shaped like the archive's answers for 000006 (the fixtures' records).
const dandiset = {
  identifier: '000006',
  embargo_status: 'OPEN',
  draft_version: { version: 'draft', name: 'Mouse ALM', asset_count: 53, size: 139600500 },
  most_recent_published_version: {
    version: '0.220126.1855',
    name: 'Mouse ALM',
    asset_count: 53,
    size: 139600500,
    created: '2022-01-26T18:55:59.616000Z'
  }
};

const metadata = {
  name: 'Mouse anterior lateral motor cortex (ALM) in delay response task',
  description: 'Extracellular electrophysiology recordings performed on mouse ALM.',
  license: ['spdx:CC-BY-4.0'],
  doi: '10.48324/dandi.000006/0.220126.1855',
  url: 'https://dandiarchive.org/dandiset/000006/0.220126.1855',
  citation:
    'Economo, Michael N.; Svoboda, Karel (2022) Mouse anterior lateral motor cortex (ALM) in ' +
    'delay response task (Version 0.220126.1855) [Data set]. DANDI archive. ' +
    'https://doi.org/10.48324/dandi.000006/0.220126.1855',
  keywords: ['ecephys'],
  contributor: [
    { schemaKey: 'Person', name: 'Economo, Michael N.', roleName: ['dcite:Author'] },
    {
      schemaKey: 'Person',
      name: 'Svoboda, Karel',
      roleName: ['dcite:Author', 'dcite:ContactPerson']
    },
    { schemaKey: 'Organization', name: 'HHMI', roleName: ['dcite:Funder'] },
    { schemaKey: 'Person', name: '' },
    'not a contributor'
  ]
};

const published = {
  version: '0.220126.1855',
  name: 'Mouse ALM',
  asset_count: 53,
  size: 139600500,
  metadata
};

describe('toDandisetView', () => {
  it('shows what a published version says about itself', () => {
    const view = toDandisetView(dandiset, published);
    expect(view).toMatchObject({
      identifier: '000006',
      version: '0.220126.1855',
      title: 'Mouse anterior lateral motor cortex (ALM) in delay response task',
      licenses: ['CC-BY-4.0'],
      doi: '10.48324/dandi.000006/0.220126.1855',
      doiUrl: 'https://doi.org/10.48324/dandi.000006/0.220126.1855',
      webUrl: 'https://dandiarchive.org/dandiset/000006/0.220126.1855',
      assetCount: 53,
      size: 139600500,
      published: true,
      embargoStatus: 'OPEN',
      keywords: ['ecephys']
    });
    expect(view.citation).toContain('(Version 0.220126.1855)');
    expect(view.contributors.map(c => c.name)).toEqual([
      'Economo, Michael N.',
      'Svoboda, Karel',
      'HHMI'
    ]);
  });

  it("gives a draft no DOI, even the placeholder drafts carry", () => {
    const draft = {
      version: 'draft',
      metadata: { ...metadata, doi: '10.80507/dandi.123456/0.123456.1234' }
    };
    const view = toDandisetView(dandiset, draft);
    expect(view.doi).toBeNull();
    expect(view.published).toBe(false);
  });

  it('copes with sparse metadata', () => {
    const view = toDandisetView({ identifier: '000999' }, { version: 'draft', name: 'Named' });
    expect(view).toMatchObject({
      title: 'Named',
      description: '',
      contributors: [],
      licenses: [],
      citation: '',
      webUrl: null,
      assetCount: null
    });
  });

  it('rejects what is not a Dandiset or a version', () => {
    expect(() => toDandisetView({} as never, published)).toThrow(UnexpectedResponseError);
    expect(() => toDandisetView(dandiset, {} as never)).toThrow(UnexpectedResponseError);
  });
});

describe('contributors', () => {
  it('reads roles', () => {
    expect(roleName('dcite:ContactPerson')).toBe('Contact person');
    expect(roleName('dcite:Author')).toBe('Author');
    const [economo, svoboda, hhmi] = toContributors(metadata);
    expect(describeContributor(svoboda)).toBe('Svoboda, Karel (Author, Contact person)');
    expect(describeContributor(economo)).toBe('Economo, Michael N. (Author)');
    expect(hhmi.organization).toBe(true);
  });
});

describe('versions', () => {
  it('opens at the version the setting prefers', () => {
    expect(initialVersion(dandiset, 'draft')).toBe('draft');
    expect(initialVersion(dandiset, 'latest-published')).toBe('0.220126.1855');
    expect(initialVersion({ identifier: '1', most_recent_published_version: null }, 'latest-published')).toBe(
      'draft'
    );
  });

  it('lists the draft, then published versions newest first', () => {
    const listed = {
      results: [
        { version: '0.210101.0000', created: '2021-01-01T00:00:00Z' },
        { version: '0.220126.1855', created: '2022-01-26T18:55:59Z' },
        { version: 'draft', created: '2020-03-15T22:56:55Z' }
      ]
    };
    expect(toVersionOptions(listed, dandiset, 'draft')).toEqual([
      { version: 'draft', label: 'draft (latest changes)', published: false },
      { version: '0.220126.1855', label: '0.220126.1855 (latest, 2022-01-26)', published: true },
      { version: '0.210101.0000', label: '0.210101.0000 (2021-01-01)', published: true }
    ]);
  });

  it("falls back on the Dandiset's own versions, and always lists the current one", () => {
    const options = toVersionOptions(null, dandiset, '0.200101.0000');
    expect(options.map(o => o.version)).toEqual(['draft', '0.220126.1855', '0.200101.0000']);
  });
});
