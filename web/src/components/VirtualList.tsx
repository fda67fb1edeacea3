// A vertical virtual list for the timeline: only rows near the viewport are in the DOM; row
// heights are measured (and re-measured on resize) and cached by key; offsets are prefix sums.
//
// Scrolling stays put when things change above the viewport (older history prepended, a row
// above re-measured): we remember the first visible row and its distance to the top, and after
// each render put it back there. When the user is at the bottom, we stay at the bottom as rows
// are added or grow (streaming text); once they scroll up, we leave them where they are.
import type { ComponentChildren, VNode } from 'preact';
import { useCallback, useLayoutEffect, useMemo, useReducer, useRef, useState } from 'preact/hooks';

export interface VirtualListProps<T> {
  items: readonly T[];
  getKey(item: T): string;
  /** Keys an item had before (its key changed when older rows arrived): keeps the scroll anchor. */
  getAliases?(item: T): readonly string[] | undefined;
  estimate(item: T): number;
  render(item: T): VNode;
  /** Rendered above the rows inside the scroller (e.g. "load older"). */
  header?: ComponentChildren;
  footer?: ComponentChildren;
  /** Pixels rendered beyond the viewport on each side. */
  overscan?: number;
  /** Called (repeatedly, debounce on your side) while the user is near the top. */
  onNearTop?(): void;
  onAtBottomChange?(atBottom: boolean): void;
  /** Incremented by the parent to force a jump to the bottom (e.g. after sending a prompt). */
  scrollToBottomSignal?: number;
  class?: string;
  testId?: string;
  ariaLabel?: string;
  rowProps?(item: T): Record<string, string>;
}

const BOTTOM_SLACK = 48;
const NEAR_TOP = 600;
/** Re-renders for re-measured rows allowed in one frame. Past it the next one waits a frame, so
 * rows whose heights never settle (two rows measured as one, a height that depends on its own
 * position) cost a render per frame instead of hanging the tab. */
const MAX_PASSES_PER_FRAME = 8;

export function VirtualList<T>(props: VirtualListProps<T>) {
  const { items, getKey, estimate, overscan = 800 } = props;
  const scrollRef = useRef<HTMLDivElement>(null);
  const headerRef = useRef<HTMLDivElement>(null);
  const rowsRef = useRef<HTMLDivElement>(null);
  const heights = useRef(new Map<string, number>());
  const [version, bump] = useReducer((x: number) => x + 1, 0);
  const [viewport, setViewport] = useState({ top: 0, height: 0 });
  const stick = useRef(true);
  const anchor = useRef<{ key: string; delta: number } | null>(null);
  const passes = useRef({ n: 0, frame: false, deferred: false });

  /** Re-render after a measurement, within this frame's budget or else on the next frame. */
  const remeasured = useCallback(() => {
    const p = passes.current;
    if (!p.frame) {
      p.frame = true;
      requestAnimationFrame(() => {
        p.n = 0;
        p.frame = false;
      });
    }
    if (++p.n <= MAX_PASSES_PER_FRAME) return bump(0);
    if (p.deferred) return;
    p.deferred = true;
    requestAnimationFrame(() => {
      p.deferred = false;
      bump(0);
    });
  }, []);

  const keys = useMemo(() => items.map(getKey), [items, getKey]);
  const { getAliases } = props;
  const indexOf = useMemo(() => {
    const m = new Map<string, number>();
    keys.forEach((k, i) => m.set(k, i));
    if (getAliases)
      items.forEach((item, i) => {
        for (const a of getAliases(item) ?? []) if (!m.has(a)) m.set(a, i);
      });
    return m;
  }, [keys, items, getAliases]);
  const offsets = useMemo(() => {
    const out = new Float64Array(items.length + 1);
    const cache = heights.current;
    for (let i = 0; i < items.length; i++) {
      out[i + 1] = out[i]! + (cache.get(keys[i]!) ?? estimate(items[i]!));
    }
    return out;
    // `version` changes when measured heights change.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [items, keys, estimate, version]);
  const total = offsets[items.length]!;

  // Latest values for event handlers.
  const live = useRef({ offsets, keys, props });
  live.current = { offsets, keys, props };

  const headerHeight = () => headerRef.current?.offsetHeight ?? 0;

  // The visible window.
  const top = viewport.top - headerHeight();
  const bottom = top + (viewport.height || 1200);
  const start = Math.max(0, lowerBound(offsets, top - overscan) - 1);
  let end = start;
  while (end < items.length && offsets[end]! < bottom + overscan) end++;
  const slice = items.slice(start, end);

  const measure = useCallback((): boolean => {
    const rows = rowsRef.current;
    if (!rows) return false;
    let changed = false;
    for (const child of Array.from(rows.children) as HTMLElement[]) {
      const key = child.dataset.vkey;
      if (!key) continue;
      const h = child.offsetHeight;
      if (h > 0 && heights.current.get(key) !== h) {
        heights.current.set(key, h);
        changed = true;
      }
    }
    return changed;
  }, []);

  const captureAnchor = useCallback(() => {
    const el = scrollRef.current;
    if (!el) return;
    const { offsets, keys } = live.current;
    const hh = headerHeight();
    const y = el.scrollTop - hh;
    const i = Math.min(keys.length - 1, Math.max(0, lowerBound(offsets, y + 1) - 1));
    anchor.current = keys.length ? { key: keys[i]!, delta: hh + offsets[i]! - el.scrollTop } : null;
  }, []);

  // Re-measure rows whose size changes later (expanded cards, streaming text, images).
  const observer = useMemo(
    () =>
      typeof ResizeObserver === 'undefined'
        ? null
        : new ResizeObserver(() => {
            if (measure()) remeasured();
          }),
    [measure, remeasured],
  );

  useLayoutEffect(() => {
    const el = scrollRef.current;
    const rows = rowsRef.current;
    if (!el || !rows) return;
    if (observer) {
      observer.disconnect();
      for (const child of Array.from(rows.children)) observer.observe(child);
    }
    if (measure()) {
      remeasured(); // offsets are stale: render again, then restore the scroll position
      return;
    }
    if (stick.current) {
      const want = el.scrollHeight - el.clientHeight;
      if (Math.abs(el.scrollTop - want) > 1) el.scrollTop = want;
    } else if (anchor.current) {
      const i = indexOf.get(anchor.current.key);
      if (i !== undefined) {
        const want = headerHeight() + offsets[i]! - anchor.current.delta;
        if (Math.abs(el.scrollTop - want) >= 1) el.scrollTop = want;
      }
    }
    if (Math.abs(el.scrollTop - viewport.top) > 1 || el.clientHeight !== viewport.height) {
      setViewport({ top: el.scrollTop, height: el.clientHeight });
    }
  });

  useLayoutEffect(() => () => observer?.disconnect(), [observer]);

  // A forced jump to the bottom.
  const signal = props.scrollToBottomSignal ?? 0;
  useLayoutEffect(() => {
    if (!signal) return;
    stick.current = true;
    props.onAtBottomChange?.(true);
    const el = scrollRef.current;
    if (el) el.scrollTop = el.scrollHeight;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [signal]);

  // Viewport height changes (window resize, panels) without a scroll event.
  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const ro = new ResizeObserver(() => {
      setViewport((v) => (v.height === el.clientHeight ? v : { top: el.scrollTop, height: el.clientHeight }));
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const onScroll = () => {
    const el = scrollRef.current;
    if (!el) return;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < BOTTOM_SLACK;
    if (atBottom !== stick.current) {
      stick.current = atBottom;
      live.current.props.onAtBottomChange?.(atBottom);
    }
    captureAnchor();
    setViewport({ top: el.scrollTop, height: el.clientHeight });
    if (el.scrollTop < NEAR_TOP) live.current.props.onNearTop?.();
  };

  return (
    <div
      ref={scrollRef}
      class={`vlist ${props.class ?? ''}`}
      data-testid={props.testId}
      onScroll={onScroll}
      tabIndex={0}
      role="log"
      aria-label={props.ariaLabel}
      aria-live="off"
    >
      <div ref={headerRef}>{props.header}</div>
      <div class="vlist-space" style={{ height: `${total}px` }}>
        <div ref={rowsRef} class="vlist-rows" style={{ transform: `translateY(${offsets[start]}px)` }}>
          {slice.map((item) => {
            const key = getKey(item);
            return (
              <div key={key} data-vkey={key} class="vrow" {...(props.rowProps?.(item) ?? {})}>
                {props.render(item)}
              </div>
            );
          })}
        </div>
      </div>
      {props.footer}
    </div>
  );
}

/** First index i with offsets[i] >= y. */
function lowerBound(offsets: Float64Array, y: number): number {
  let lo = 0;
  let hi = offsets.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (offsets[mid]! < y) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
