// A virtual list: only the rows inside the scroller's viewport (plus a
// margin) exist in the DOM, so a column of 5,000 cards costs as much to
// draw as a column of 20. Rows have known heights (cards are fixed-size,
// lane headers are shorter); elements are keyed and reused while their
// data version is unchanged, so a live update redraws only what changed.

const OVERSCAN_PX = 400;
/** Viewport assumed until the scroller's first measure (and for a hidden one). */
const UNMEASURED_VIEW_PX = 800;

export class VirtualList {
  /**
   * @param {HTMLElement} scroller element with overflow-y: auto
   * @param {(item) => HTMLElement} renderItem builds the element of a row
   */
  constructor(scroller, renderItem) {
    this.scroller = scroller;
    this.renderItem = renderItem;
    this.inner = document.createElement('div');
    this.inner.className = 'vlist-inner';
    this.inner.setAttribute('role', 'list');
    scroller.append(this.inner);
    this.items = [];
    this.offsets = [0];
    this.els = new Map();
    this.frame = 0;
    // The viewport is read when it changes, never while rendering: a read
    // after another column's render would force a layout of the whole page.
    this.viewTop = 0;
    this.viewHeight = 0;
    scroller.addEventListener('scroll', () => {
      this.viewTop = scroller.scrollTop;
      this.schedule();
    }, { passive: true });
    // Delivered after layout, so reading clientHeight here costs nothing.
    new ResizeObserver(() => {
      const h = scroller.clientHeight;
      if (h !== this.viewHeight) {
        this.viewHeight = h;
        this.schedule();
      }
    }).observe(scroller);
  }

  /** items: [{key, v, height, ...}] in display order. */
  setItems(items) {
    this.items = items;
    const offsets = new Array(items.length + 1);
    offsets[0] = 0;
    for (let i = 0; i < items.length; i++) offsets[i + 1] = offsets[i] + items[i].height;
    this.offsets = offsets;
    this.inner.style.height = `${offsets[items.length]}px`;
    this.render();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /** First index whose row ends below `y`. */
  indexAt(y) {
    let lo = 0, hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.offsets[mid + 1] <= y) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  render() {
    const top = this.viewTop - OVERSCAN_PX;
    // A hidden column (phone layout, off screen) still renders a first screenful.
    const height = this.viewHeight || UNMEASURED_VIEW_PX;
    const bottom = this.viewTop + height + OVERSCAN_PX;
    const first = this.indexAt(Math.max(0, top));
    const keep = new Set();
    for (let i = first; i < this.items.length && this.offsets[i] < bottom; i++) {
      const item = this.items[i];
      keep.add(item.key);
      let el = this.els.get(item.key);
      if (!el || el._v !== item.v) {
        const fresh = this.renderItem(item);
        fresh._v = item.v;
        if (el) {
          // Keep keyboard focus on a card that is redrawn under the user.
          const focused = el.contains(document.activeElement);
          el.replaceWith(fresh);
          if (focused) fresh.focus({ preventScroll: true });
        } else {
          this.inner.append(fresh);
        }
        el = fresh;
        this.els.set(item.key, el);
      }
      el.style.transform = `translateY(${this.offsets[i]}px)`;
      el.dataset.index = String(i);
    }
    for (const [key, el] of this.els) {
      if (!keep.has(key)) {
        el.remove();
        this.els.delete(key);
      }
    }
  }

  /** Scroll so row i is visible, render, and return its element. */
  reveal(i) {
    if (i < 0 || i >= this.items.length) return null;
    const top = this.offsets[i], bottom = this.offsets[i + 1];
    const st = this.scroller.scrollTop, h = this.scroller.clientHeight;
    if (top < st) this.scroller.scrollTop = top;
    else if (bottom > st + h) this.scroller.scrollTop = bottom - h;
    this.viewTop = this.scroller.scrollTop;
    this.render();
    return this.els.get(this.items[i].key) || null;
  }

  indexOfKey(key) {
    return this.items.findIndex((it) => it.key === key);
  }
}
