// A small modal dialog: focus moves in (the first field, or `[autofocus]`), Tab stays inside,
// Esc or a click on the backdrop closes it, and focus returns where it was.
import type { ComponentChildren } from 'preact';
import { useEffect, useId, useRef } from 'preact/hooks';
import { paletteOpen$ } from '../state';

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

export function Dialog(props: {
  title: string;
  onClose(): void;
  testId?: string;
  children: ComponentChildren;
  /** Esc / backdrop do nothing while true (e.g. a request is in flight). */
  busy?: boolean;
}) {
  const box = useRef<HTMLDivElement>(null);
  const titleId = useId();
  const closeRef = useRef(props.onClose);
  closeRef.current = props.onClose;
  const busyRef = useRef(props.busy);
  busyRef.current = props.busy;

  useEffect(() => {
    const returnTo = document.activeElement as HTMLElement | null;
    const el = box.current;
    const first = el?.querySelector<HTMLElement>('[autofocus]') ?? el?.querySelector<HTMLElement>(FOCUSABLE);
    (first ?? el)?.focus();
    // On the document: focus can fall out of the dialog (a button that got disabled), and Esc
    // and Tab must still work then.
    const onKeyDown = (e: KeyboardEvent) => {
      const root = box.current;
      if (!root || paletteOpen$.get()) return; // the palette, opened over it, has the keys
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        if (!busyRef.current) closeRef.current();
        return;
      }
      if (e.key !== 'Tab') return;
      const items = Array.from(root.querySelectorAll<HTMLElement>(FOCUSABLE)).filter((x) => x.offsetParent !== null);
      if (items.length === 0) {
        e.preventDefault();
        root.focus();
        return;
      }
      const first = items[0]!;
      const last = items[items.length - 1]!;
      const active = document.activeElement;
      if (!root.contains(active)) {
        e.preventDefault();
        (e.shiftKey ? last : first).focus();
      } else if (e.shiftKey && (active === first || active === root)) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && active === last) {
        e.preventDefault();
        first.focus();
      }
    };
    document.addEventListener('keydown', onKeyDown, true);
    return () => {
      document.removeEventListener('keydown', onKeyDown, true);
      returnTo?.focus?.();
    };
  }, []);

  return (
    <div
      class="dialog-backdrop"
      onMouseDown={(e) => {
        if (e.target === e.currentTarget && !busyRef.current) closeRef.current();
      }}
    >
      <div
        ref={box}
        class="dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        data-testid={props.testId}
        tabIndex={-1}
      >
        <header class="dialog-head">
          <h2 id={titleId}>{props.title}</h2>
          <button type="button" class="icon-button" aria-label="Close" onClick={() => !busyRef.current && closeRef.current()}>
            ×
          </button>
        </header>
        {props.children}
      </div>
    </div>
  );
}
