import {
  appendFolderPage,
  assetContext,
  assetRef,
  breadcrumbs,
  capabilities,
  dandiUrl,
  exploreCell,
  IAssetContext,
  neurosiftUrl,
  normalizePrefix,
  openCell,
  parentPrefix,
  pyString,
  toFolderPage,
  typeOf
} from '../assets';
import { UnexpectedResponseError } from '../model';

const API = 'https://api.dandiarchive.org/api';
const S3 = 'https://dandiarchive.s3.amazonaws.com/blobs/063/b97/063b9771-b0c0-4b84-8b7d-fb52929b3087';
const ASSET = '32cb0ae9-49fd-4bf9-b939-3960df7aeca2';

// Shaped like GET .../versions/draft/assets/paths/?path_prefix=sub-anm369963 on 000006.
const folder = {
  count: 3,
  next: null,
  previous: null,
  results: [
    {
      path: 'sub-anm369963/sub-anm369963_ses-20170228.nwb',
      version: 1,
      aggregate_files: 1,
      aggregate_size: 276632,
      asset: { asset_id: ASSET, url: S3 }
    },
    { path: 'sub-anm369963/histology', version: 1, aggregate_files: 12, aggregate_size: 9000, asset: null },
    {
      path: 'sub-anm369963/image.ome.zarr',
      version: 1,
      aggregate_files: 1,
      aggregate_size: 5,
      asset: { asset_id: '00000000-0000-4000-8000-000000000001', url: 'https://s3/zarr/z/' }
    }
  ]
};

function nwbAsset(overrides: Partial<IAssetContext> = {}): IAssetContext {
  return {
    dandiset: '000006',
    version: '0.220126.1855',
    path: 'sub-anm369963/sub-anm369963_ses-20170228.nwb',
    assetId: ASSET,
    s3Url: S3,
    kind: 'nwb',
    size: 276632,
    archiveUrl: API,
    archiveOverride: '',
    ...overrides
  };
}

describe('folders', () => {
  it('lists folders first, files with a type', () => {
    const page = toFolderPage(folder, 'sub-anm369963', 1);
    expect(page.prefix).toBe('sub-anm369963/');
    expect(page.entries.map(e => [e.name, e.folder, e.type, e.kind])).toEqual([
      ['histology', true, '', 'other'],
      ['image.ome.zarr', false, 'OME-Zarr', 'zarr'],
      ['sub-anm369963_ses-20170228.nwb', false, 'NWB', 'nwb']
    ]);
    const nwb = page.entries[2];
    expect(nwb).toMatchObject({ size: 276632, files: 1, assetId: ASSET, s3Url: S3 });
    expect(page.entries[0]).toMatchObject({ files: 12, assetId: null });
    expect(page.hasNext).toBe(false);
  });

  it('appends pages and keeps the first count', () => {
    const first = toFolderPage({ ...folder, next: 'x?page=2' }, '', 1);
    const second = toFolderPage({ ...folder, count: null }, '', 2);
    const both = appendFolderPage(first, second);
    expect(both.entries).toHaveLength(6);
    expect(both.count).toBe(3);
    expect(both.page).toBe(2);
  });

  it('rejects what is not a folder listing', () => {
    expect(() => toFolderPage({ detail: 'x' }, '', 1)).toThrow(UnexpectedResponseError);
    expect(() => toFolderPage({ results: [{}] }, '', 1)).toThrow(/entry 0 has no path/);
  });

  it('walks up and shows the way', () => {
    expect(normalizePrefix('/a/b')).toBe('a/b/');
    expect(normalizePrefix('')).toBe('');
    expect(parentPrefix('a/b/')).toBe('a/');
    expect(parentPrefix('a/')).toBe('');
    expect(parentPrefix('')).toBe('');
    expect(breadcrumbs('sub-CS-fly#-1/ses 1/', '000250')).toEqual([
      { label: '000250', prefix: '' },
      { label: 'sub-CS-fly#-1', prefix: 'sub-CS-fly#-1/' },
      { label: 'ses 1', prefix: 'sub-CS-fly#-1/ses 1/' }
    ]);
  });

  it('types files by name', () => {
    expect(typeOf('a/b.NWB')).toEqual({ type: 'NWB', kind: 'nwb' });
    expect(typeOf('x.zarr')).toEqual({ type: 'Zarr', kind: 'zarr' });
    expect(typeOf('sub-1/anat.nii.gz').type).toBe('NIfTI');
    expect(typeOf('behavior.mkv').type).toBe('Video');
    expect(typeOf('README').type).toBe('Text');
    expect(typeOf('data.bin')).toEqual({ type: '', kind: 'other' });
  });
});

describe('actions', () => {
  it('knows a file from a folder', () => {
    const page = toFolderPage(folder, 'sub-anm369963/', 1);
    expect(assetContext(page.entries[0], '000006', 'draft', API)).toBeNull();
    expect(assetContext(page.entries[2], '000006', 'draft', `${API}/`)).toMatchObject({
      dandiset: '000006',
      version: 'draft',
      assetId: ASSET,
      archiveUrl: API
    });
  });

  it('offers what fits the kind of asset', () => {
    expect(capabilities(nwbAsset())).toEqual({
      open: true,
      explore: true,
      copyS3: true,
      copyDandi: true,
      neurosift: true,
      download: true
    });
    expect(capabilities(nwbAsset({ kind: 'zarr' }))).toMatchObject({
      open: true,
      explore: false,
      neurosift: false,
      download: false
    });
    expect(capabilities(nwbAsset({ kind: 'other', s3Url: null }))).toMatchObject({
      open: false,
      copyS3: false,
      copyDandi: true,
      download: true
    });
    expect(Object.values(capabilities(null)).some(Boolean)).toBe(false);
  });

  it('opens an NWB file pinned to the version shown', () => {
    expect(openCell(nwbAsset())).toBe(
      [
        '# Dandiset 000006, version 0.220126.1855: streamed lazily, read on demand',
        'import dandilab',
        '',
        'nwb = dandilab.open_nwb("DANDI:000006/0.220126.1855/sub-anm369963/sub-anm369963_ses-20170228.nwb")',
        'nwb'
      ].join('\n')
    );
  });

  it('opens a zarr with open_zarr, and names another archive', () => {
    const cell = openCell(
      nwbAsset({ kind: 'zarr', path: 'x.ome.zarr', version: 'draft', archiveOverride: 'https://other/api' })
    );
    expect(cell).toContain('archive = dandilab.Archive("https://other/api")');
    expect(cell).toContain('z = dandilab.open_zarr("DANDI:000006/draft/x.ome.zarr", archive=archive)');
  });

  it('explores with the NWB explorer widget', () => {
    const cell = exploreCell(nwbAsset());
    expect(cell).toContain('import dandilab.widgets');
    expect(cell).toMatch(/nwb = dandilab\.open_nwb\(.*\)\ndandilab\.widgets\.NWBExplorer\(nwb\)$/);
  });

  it('quotes any path as a Python string', () => {
    expect(pyString('sub-CS-fly#-1/a "b"\\c\n.nwb')).toBe('"sub-CS-fly#-1/a \\"b\\"\\\\c\\n.nwb"');
    expect(assetRef({ dandiset: '000250', version: 'draft', path: 'säule #1.nwb' })).toBe(
      'DANDI:000250/draft/säule #1.nwb'
    );
  });

  it('builds the DANDI and Neurosift URLs', () => {
    expect(dandiUrl(nwbAsset())).toBe(
      `${API}/dandisets/000006/versions/0.220126.1855/assets/${ASSET}/download/`
    );
    expect(neurosiftUrl(nwbAsset())).toBe(
      'https://neurosift.app/nwb?url=' +
        encodeURIComponent(`${API}/assets/${ASSET}/download/`) +
        '&dandisetId=000006&dandisetVersion=0.220126.1855'
    );
  });
});
