"""The message box of `%kz chat`'s widget: Enter sends and Shift+Enter adds a line, as in the
docked chat. ipywidgets' Textarea cannot tell the two keys apart, so this is an anywidget: a
textarea whose Enter sends a message to the kernel."""

from __future__ import annotations

from collections.abc import Callable

import anywidget
import traitlets

ESM = """
function render({ model, el }) {
  const box = document.createElement('textarea');
  box.className = 'widget-textarea jupyter-widgets';
  box.rows = 3;
  box.style.cssText = 'width:100%;box-sizing:border-box;resize:vertical;'
    + 'font-family:var(--jp-ui-font-family);color:var(--jp-ui-font-color1);'
    + 'background:var(--jp-input-background, var(--jp-layout-color1));'
    + 'border:1px solid var(--jp-border-color1)';
  box.setAttribute('aria-label', 'Message');
  const show = () => {
    box.placeholder = model.get('placeholder');
    if (box.value !== model.get('value')) box.value = model.get('value');
  };
  show();
  model.on('change:placeholder', show);
  model.on('change:value', show);
  box.addEventListener('input', () => {
    model.set('value', box.value);
    model.save_changes();
  });
  box.addEventListener('keydown', event => {
    event.stopPropagation(); // the notebook's own keys (Shift+Enter runs the cell) stay out
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      model.send({ send: box.value }); // its value is synced already, at each input
    }
  });
  el.append(box);
}
export default { render };
"""


class ChatInput(anywidget.AnyWidget):
    """A message box: Enter sends (to the handler given to on_send), Shift+Enter adds a line."""

    _esm = ESM
    value = traitlets.Unicode("").tag(sync=True)
    placeholder = traitlets.Unicode("").tag(sync=True)

    def on_send(self, handler: Callable[[str], None]) -> None:
        """Call handler with the text when the user presses Enter."""
        self.on_msg(lambda _widget, content, _buffers: handler(str(content.get("send", ""))))
