// DOM helpers for the console: elements from text only (API data is never parsed as markup, so it cannot inject any), SVG, tables, badges.
export type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>;

/** `h('td', {class: 'x'}, 'text', node)`: attributes starting with `on` are listeners; children are text or nodes. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function s(tag: string, attrs: Attrs = {}, ...children: Child[]): SVGElement {
  const el = document.createElementNS(SVG_NS, tag) as SVGElement;
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el: Element, attrs: Attrs): void {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
}

function append(el: Element, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'number' ? String(child) : child);
  }
}

export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** A table whose cells carry their column name (data-label), so on a phone each row reads as a small card. */
export function table(caption: string, columns: readonly string[], rows: readonly (readonly Child[])[], rowAttrs?: (i: number) => Attrs): HTMLTableElement {
  return h(
    'table',
    { class: 'stack' },
    h('caption', { class: 'muted', style: null }, caption),
    h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...rows.map((cells, i) => h('tr', rowAttrs?.(i) ?? {}, ...cells.map((cell, j) => h('td', { 'data-label': columns[j] ?? '' }, cell))))),
  );
}

/** A status word with a symbol, coloured: colour is never the only signal. */
export function badge(kind: 'ok' | 'warn' | 'bad' | 'muted', text: string): HTMLElement {
  const symbol = kind === 'ok' ? '✓ ' : kind === 'bad' ? '✗ ' : kind === 'warn' ? '⚠ ' : '';
  return h('span', { class: `badge ${kind}` }, symbol + text);
}

export function time(iso: string | null): Child {
  if (iso === null) return '—';
  return h('time', { datetime: iso, title: iso }, new Date(iso).toLocaleString());
}

export function json(value: unknown): string {
  if (value === undefined) return '—';
  return typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value, null, 1) ?? String(value);
}
