/**
 * The asset tree's icons: JupyterLab's own (ui-components), as its file browser
 * shows them, so they draw with the theme and need no font. Kept out of
 * dandisetview.ts, which the unit tests load without JupyterLab's ES modules.
 */
import {
  fileIcon,
  folderIcon,
  imageIcon,
  jsonIcon,
  LabIcon,
  markdownIcon,
  pythonIcon,
  spreadsheetIcon,
  tableRowsIcon,
  videoIcon,
  yamlIcon
} from '@jupyterlab/ui-components';

import { ITreeEntry } from './assets';

const BY_TYPE: Record<string, LabIcon> = {
  Image: imageIcon,
  Video: videoIcon,
  JSON: jsonIcon,
  YAML: yamlIcon,
  TSV: spreadsheetIcon,
  CSV: spreadsheetIcon,
  Text: markdownIcon,
  Code: pythonIcon
};

/** The icon of a folder or file of the tree, as an element to put in its row. */
export function entryIcon(entry: ITreeEntry): HTMLElement {
  const icon = entry.folder
    ? folderIcon
    : entry.kind === 'zarr'
      ? tableRowsIcon // a zarr asset is an array store, not a folder to open
      : BY_TYPE[entry.type] ?? fileIcon;
  return icon.element({ tag: 'span', className: 'jp-DandiPanel-entryIcon', height: '16px', width: '16px' });
}
