/** Small DOM helpers shared by the panel's views. */
import { describeError } from './model';

export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text) {
    node.textContent = text;
  }
  return node;
}

export function button(
  className: string,
  label: string,
  onClick: () => void,
  title = ''
): HTMLButtonElement {
  const node = element('button', `jp-DandiPanel-button jp-mod-styled ${className}`, label);
  node.type = 'button';
  if (title) {
    node.title = title;
  }
  node.addEventListener('click', onClick);
  return node;
}

/** An external link, opened in a new tab. */
export function link(className: string, text: string, href: string): HTMLAnchorElement {
  const node = element('a', className, text);
  node.href = href;
  node.target = '_blank';
  node.rel = 'noopener noreferrer';
  return node;
}

/**
 * A box that shows a failure (title, message, Retry) or nothing; never a
 * silent empty list.
 */
export class ErrorBox {
  readonly node: HTMLDivElement;

  constructor(className: string) {
    this.node = element('div', `jp-DandiPanel-error ${className}`);
    this.node.setAttribute('role', 'alert');
    this.node.hidden = true;
  }

  show(error: unknown, retry?: () => void): void {
    const view = describeError(error);
    this.node.textContent = '';
    this.node.append(
      element('strong', 'jp-DandiPanel-errorTitle', view.title),
      element('div', 'jp-DandiPanel-errorMessage', view.message)
    );
    if (retry && view.retry) {
      this.node.append(button('jp-DandiPanel-retry', 'Retry', retry));
    }
    this.node.hidden = false;
  }

  clear(): void {
    this.node.textContent = '';
    this.node.hidden = true;
  }

  get shown(): boolean {
    return !this.node.hidden;
  }
}

/** Move focus among the focusable rows of a list with the arrow keys, Home and End. */
export function moveFocus(current: HTMLElement, key: string): boolean {
  const list = current.parentElement;
  if (!list) {
    return false;
  }
  const rows = Array.from(list.children) as HTMLElement[];
  const index = rows.indexOf(current);
  let target: HTMLElement | undefined;
  switch (key) {
    case 'ArrowDown':
      target = rows[index + 1];
      break;
    case 'ArrowUp':
      target = rows[index - 1];
      break;
    case 'Home':
      target = rows[0];
      break;
    case 'End':
      target = rows[rows.length - 1];
      break;
    default:
      return false;
  }
  target?.focus();
  return target !== undefined;
}
