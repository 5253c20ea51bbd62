"""The conversation of `%kz chat`'s widget: the bubbles as HTML, and under each finished reply
"copy" and "insert into a new cell" (below the chat's cell, which kz-jupyter's JupyterLab
extension does on the widget's request; elsewhere the button says it cannot)."""

from __future__ import annotations

import anywidget
import traitlets

ESM = """
function render({ model, el }) {
  const show = () => {
    el.innerHTML = model.get('value');
    for (const bar of el.querySelectorAll('[data-kz-reply]')) {
      const text = () => model.get('replies')[bar.dataset.kzReply] ?? '';
      const said = bar.querySelector('[data-kz-said]');
      bar.querySelector('[data-kz-action=copy]').addEventListener('click', () => {
        navigator.clipboard.writeText(text()).then(
          () => (said.textContent = 'copied'),
          error => (said.textContent = `not copied: ${error}`)
        );
      });
      bar.querySelector('[data-kz-action=insert]').addEventListener('click', event => {
        const asked = new CustomEvent('kz-insert-cell', {
          bubbles: true,
          cancelable: true,
          detail: { text: text() }
        });
        const handled = !event.target.dispatchEvent(asked); // the extension cancels it
        said.textContent = handled ? '' : 'needs JupyterLab with kz-jupyter\\'s extension';
      });
    }
  };
  show();
  model.on('change:value', show);
}
export default { render };
"""


def reply_actions(number: int) -> str:
    """The buttons under the reply at number, as HTML (the widget gives them their actions)."""
    button = "jupyter-widgets jupyter-button widget-button"
    return (
        f"<div data-kz-reply='{number}' style='margin:0 20% 6px 8px;display:flex;"
        "flex-wrap:wrap;gap:4px;align-items:center'>"
        f"<button class='{button}' style='width:auto' data-kz-action='copy'>copy</button>"
        f"<button class='{button}' style='width:auto' data-kz-action='insert'>"
        "insert into a new cell</button>"
        "<span data-kz-said style='font-size:var(--jp-ui-font-size0)'></span></div>"
    )


class ChatLog(anywidget.AnyWidget):
    """The conversation as HTML (value), with each finished reply's text (replies, by the
    number of its message) for its copy and insert buttons."""

    _esm = ESM
    value = traitlets.Unicode("").tag(sync=True)
    replies = traitlets.Dict().tag(sync=True)
