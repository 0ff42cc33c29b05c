/**
 * What the asset actions do inside JupyterLab: put a cell in a notebook, copy
 * to the clipboard, open a link, show a file. The cells and URLs themselves
 * come from assets.ts.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Clipboard, Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

/**
 * Insert `code` as a new cell below the active cell of the active notebook (or
 * into that cell if it is empty), or into a new notebook when none is open; the
 * cell is left selected, not run.
 */
export async function insertCell(
  app: JupyterFrontEnd,
  tracker: INotebookTracker | null,
  code: string
): Promise<NotebookPanel> {
  let panel = tracker?.currentWidget ?? null;
  if (!panel) {
    panel = (await app.commands.execute('notebook:create-new', {
      kernelName: 'python3'
    })) as NotebookPanel;
  }
  await panel.context.ready;
  const notebook = panel.content;
  // An empty code cell where the user is (a new notebook's, or the one Shift+Enter
  // leaves at the end) takes the code rather than staying above or below it.
  const active = notebook.activeCell;
  const reuse =
    active !== null &&
    active !== undefined &&
    active.model.type === 'code' &&
    active.model.sharedModel.getSource().trim() === '';
  if (!reuse) {
    NotebookActions.insertBelow(notebook);
  }
  notebook.activeCell?.model.sharedModel.setSource(code);
  app.shell.activateById(panel.id);
  notebook.mode = 'command';
  if (notebook.activeCell) {
    void notebook.scrollToItem(notebook.activeCellIndex);
  }
  return panel;
}

/** Copy text to the clipboard and say so. */
export function copyText(text: string, what: string): void {
  Clipboard.copyToSystem(text);
  Notification.success(`Copied the ${what}: ${text}`, { autoClose: 4000 });
}

/** Open an external web page in a new tab. */
export function openExternal(url: string): void {
  window.open(url, '_blank', 'noopener,noreferrer');
}

/** Reveal a file of the home directory in the file browser. */
export async function showInFileBrowser(app: JupyterFrontEnd, path: string): Promise<void> {
  await app.commands.execute('filebrowser:activate', { path });
  await app.commands.execute('filebrowser:go-to-path', { path });
}
