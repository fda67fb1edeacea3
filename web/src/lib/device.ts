// What kind of device the page runs on, for things that only make sense with a keyboard.

/** A touch screen without a hovering pointer (a phone or tablet): no keyboard shortcuts to show. */
export function isTouch(): boolean {
  return typeof matchMedia === 'function' && matchMedia('(hover: none) and (pointer: coarse)').matches;
}

/** The changes panel sits beside the timeline from this width, and over it below. */
export const SIDE_PANEL_MIN_WIDTH_PX = 1100;

export function isWide(): boolean {
  return typeof matchMedia === 'function' && matchMedia(`(min-width: ${SIDE_PANEL_MIN_WIDTH_PX}px)`).matches;
}
