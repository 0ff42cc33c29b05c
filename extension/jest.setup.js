// jsdom has no DragEvent; @lumino/dragdrop subclasses it at import time.
if (typeof window !== 'undefined' && typeof window.DragEvent === 'undefined') {
  window.DragEvent = class DragEvent extends window.MouseEvent {};
  globalThis.DragEvent = window.DragEvent;
}
