/** The DANDI icon for the sidebar tab and the command. */
import { LabIcon } from '@jupyterlab/ui-components';

// A stylised "D" over a wave; `jp-icon3` lets JupyterLab themes recolour it.
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M4 3h7.5a9 9 0 0 1 0 18H4V3zm3 3v12h4.5a6 6 0 0 0 0-12H7z"/>
    <path d="M8.2 12.9l1.3-2.6 1.5 3.6 1.3-2.2h2.2v1.4h-1.4l-2.2 3.6-1.5-3.5-.5 1H8.2z"/>
  </g>
</svg>`;

export const dandiIcon = new LabIcon({ name: 'dandilab:dandi', svgstr: svg });
