"""WCAG contrast of text in a page, from its computed styles: every visible element that holds
text is measured against the background it is painted on (semi-transparent colours and
backgrounds composited, as the browser shows them)."""

from __future__ import annotations

from playwright.sync_api import Page

AA = 4.5  # WCAG 2 AA for normal text

# Runs in the page: [{text, color, background, ratio}] for each text below the selectors.
# Disabled controls are left out: WCAG exempts text of inactive components.
MEASURE = """
(selectors) => {
  const parse = (value) => {
    const m = value.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, below) => {
    const a = top[3] + below[3] * (1 - top[3]);
    if (a === 0) return [0, 0, 0, 0];
    const mix = (i) => (top[i] * top[3] + below[i] * below[3] * (1 - top[3])) / a;
    return [mix(0), mix(1), mix(2), a];
  };
  const background = (node) => {
    const layers = [];
    for (let n = node; n; n = n.parentElement) {
      const color = parse(getComputedStyle(n).backgroundColor);
      if (color[3] > 0) layers.push(color);
      if (color[3] >= 1) break;
    }
    let result = [255, 255, 255, 1];
    for (const layer of layers.reverse()) result = over(layer, result);
    return result;
  };
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const found = [];
  for (const root of document.querySelectorAll(selectors)) {
    for (const node of [root, ...root.querySelectorAll('*')]) {
      const own = [...node.childNodes]
        .filter((c) => c.nodeType === Node.TEXT_NODE)
        .map((c) => c.textContent.trim())
        .join(' ')
        .trim();
      const box = node.getBoundingClientRect();
      if (!own || box.width === 0 || box.height === 0 || node.closest('[disabled]')) continue;
      const style = getComputedStyle(node);
      if (style.visibility === 'hidden') continue;
      const back = background(node);
      const text = over(parse(style.color), back);
      const [l1, l2] = [luminance(text), luminance(back)].sort((a, b) => b - a);
      found.push({text: own.slice(0, 60), color: style.color,
                  background: `rgb(${back.slice(0, 3).map(Math.round).join(',')})`,
                  ratio: (l1 + 0.05) / (l2 + 0.05)});
    }
  }
  return found;
}
"""


def text_contrast(page: Page, selectors: str) -> list[dict]:
    """Every visible text below selectors with its colour, background and contrast ratio."""
    return page.evaluate(MEASURE, selectors)


def below_aa(page: Page, selectors: str) -> tuple[int, list[dict]]:
    """(how many texts were measured, those under WCAG AA's 4.5:1)."""
    measured = text_contrast(page, selectors)
    return len(measured), [m for m in measured if m["ratio"] < AA]
