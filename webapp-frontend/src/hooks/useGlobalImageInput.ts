import { useEffect, useRef } from 'react';

/** The first file of a paste or drop, preferring images. */
export function firstFile(list: DataTransfer | null): File | null {
  if (!list) return null;
  const files = Array.from(list.files ?? []);
  const fromItems = Array.from(list.items ?? [])
    .filter((item) => item.kind === 'file')
    .map((item) => item.getAsFile())
    .filter((file): file is File => file !== null);
  const all = files.length > 0 ? files : fromItems;
  return all.find((file) => file.type.startsWith('image/')) ?? all[0] ?? null;
}

/**
 * Photos pasted anywhere on the page (Ctrl/Cmd+V), and files dropped anywhere outside the drop
 * zone (the browser would otherwise navigate away to show them).
 */
export function useGlobalImageInput(enabled: boolean, onFile: (file: File) => void): void {
  const callback = useRef(onFile);
  useEffect(() => {
    callback.current = onFile;
  }, [onFile]);

  useEffect(() => {
    const onPaste = (event: ClipboardEvent) => {
      if (!enabled) return;
      const target = event.target as HTMLElement | null;
      if (target?.closest('input, textarea, [contenteditable="true"]')) return;
      const file = firstFile(event.clipboardData);
      if (!file) return;
      event.preventDefault();
      callback.current(file);
    };
    const onDragOver = (event: DragEvent) => event.preventDefault();
    const onDrop = (event: DragEvent) => {
      if (event.defaultPrevented) return; // the drop zone took it
      event.preventDefault();
      const file = firstFile(event.dataTransfer);
      if (enabled && file) callback.current(file);
    };
    document.addEventListener('paste', onPaste);
    window.addEventListener('dragover', onDragOver);
    window.addEventListener('drop', onDrop);
    return () => {
      document.removeEventListener('paste', onPaste);
      window.removeEventListener('dragover', onDragOver);
      window.removeEventListener('drop', onDrop);
    };
  }, [enabled]);
}
