"""The `%kz` line magic and `%%kz` cell magic: one entry point, subcommands."""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
from typing import TYPE_CHECKING

from IPython.core.magic import Magics, line_cell_magic, magics_class
from traitlets import Unicode

from kz_jupyter.errors import KzError
from kz_jupyter.magics.compare_text import format_comparison, format_figures, format_replies
from kz_jupyter.magics.panel import in_kernel, shown
from kz_jupyter.magics.progress import DownloadBar
from kz_jupyter.magics.rag_magics import add_rag_parser, run_rag
from kz_jupyter.magics.stats_text import format_stats, format_usage
from kz_jupyter.magics.text import (
    format_audit,
    format_deletion,
    format_engines,
    format_failure,
    format_log_event,
    format_logs,
    format_models,
    format_plan,
    format_search,
    format_transition,
)

if TYPE_CHECKING:
    from kz_jupyter.client import KzClient

COMMANDS = """\
%kz hw                          hardware of the server machine and usable engines
%kz engines                     each engine: usable or not (and why), version, environment
%kz engines install NAME        create the engine's own environment and install it there
%kz search TEXT                 Hub models (downloads, likes, formats), presets, models here
%kz plan MODEL [options]        engine, files, context and memory fit, without deploying
%kz pull MODEL [--revision R] [--redownload]   download the files for this machine
%kz deploy MODEL [options]      deploy it and wait until it serves (options below)
%kz chat NAME PROMPT... [--max-tokens N] [--temperature T] [--rag INDEX [-k K]]
                                stream a reply (%%kz chat NAME: the cell body is the prompt;
                                in a notebook, %kz chat NAME alone opens a chat widget);
                                --rag: grounded in INDEX, each turn retrieving with the
                                conversation so far, its sources shown
%kz ps                          deployments (in a notebook: a live table with stop, restart, logs)
%kz logs NAME [--lines N] [--follow]   the engine's log, issue lines marked with '!'
                                (in a notebook: a live tail)
%kz stop NAME [--forget]        stop a deployment and its engine processes; --forget also
                                removes its record from the list (its name is free again)
%kz top                         every deployment's requests/s, tokens/s, TTFT, queue, memory,
                                with plots of the last minutes and the machine's CPU, RAM, GPUs
                                (in a notebook: live until stopped)
%kz stats NAME                  the same for one deployment
%kz usage                       requests and tokens per user and deployment (admins: everyone)
%kz batch NAME DATA "PROMPT {text}" [--column C] [--into COL] [--schema MODEL]
                                [--max-tokens N] [--retry-errors]
                                the prompt over every row of DATA (a DataFrame, Series or list
                                in the notebook), as many at once as NAME's slots take, each
                                answer kept on disk (a re-run asks only what is missing);
                                --into adds the answers to the DataFrame as column COL
%kz compare A B [C...] "PROMPT" [--max-tokens N]   one prompt streamed from each, side by side,
                                with time to first token, tokens, tokens/s, length
                                (%%kz compare A B: the cell body is the prompt)
%kz compare A B "PROMPT {text}" --data DATA [--column C]   the prompt over every row on each
                                (a batch each): answers side by side, latency and tokens each
%kz ai                          each deployment as an alias of jupyter-ai's magics:
                                %%ai kz-NAME asks it (loads jupyter_ai_magic_commands)
%kz share NAME all|private|group:NAME   who else sees and uses it (owner or admin)
%kz audit [--user U] [--limit N]       who deployed, stopped, shared what (admins)
%kz models                      models here: size, format, quants, last use, deployments
%kz rm MODEL [--yes]            delete a cached model (shows what is freed first)
%kz rag ...                     retrieval over your documents (%kz rag: its commands)"""
MODEL_TEXT = (
    "MODEL: a preset, a pip-shipped model, a path, or a Hub repo[:QUANT] or repo/FILE\n"
    "options of plan and deploy:"
)


def usage() -> str:
    """What `%kz help` prints: the commands, then plan's and deploy's options."""
    from kz_jupyter.magics.deploy_flags import usage_lines  # pydantic: on first use

    return "\n".join([COMMANDS, MODEL_TEXT, *usage_lines("deploy")])


class UsageError(ValueError):
    """A magic line that does not parse; the message is the usage hint."""


class _Parser(argparse.ArgumentParser):
    """An argparse parser that raises instead of exiting the kernel."""

    def error(self, message: str) -> None:
        """Raise a UsageError with the parser's usage line."""
        raise UsageError(f"{message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> None:
        """Raise instead of exiting (argparse calls this for --help)."""
        raise UsageError(message or self.format_help())


def build_parser() -> argparse.ArgumentParser:
    """Build the parser for every %kz subcommand."""
    from kz_jupyter.magics.deploy_flags import add_deploy_arguments  # pydantic: on first use

    parser = _Parser(prog="%kz", add_help=False)
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    commands.add_parser("hw", add_help=False)
    commands.add_parser("ps", add_help=False)
    commands.add_parser("help", add_help=False)
    commands.add_parser("models", add_help=False)
    commands.add_parser("top", add_help=False)
    commands.add_parser("usage", add_help=False)
    commands.add_parser("ai", add_help=False)
    rows = commands.add_parser("batch", add_help=False)
    rows.add_argument("name")
    rows.add_argument("data")
    rows.add_argument("prompt")
    rows.add_argument("--column")
    rows.add_argument("--into")
    rows.add_argument("--schema")
    rows.add_argument("--max-tokens", type=int, default=256)
    rows.add_argument("--retry-errors", action="store_true")
    versus = commands.add_parser("compare", add_help=False)
    versus.add_argument("items", nargs="+", metavar="NAME... PROMPT")
    versus.add_argument("--data")
    versus.add_argument("--column")
    versus.add_argument("--max-tokens", type=int, default=256)
    stats = commands.add_parser("stats", add_help=False)
    stats.add_argument("name")
    add_rag_parser(commands)
    engines = commands.add_parser("engines", add_help=False)
    engines.add_argument("action", nargs="?", choices=("install",))
    engines.add_argument("engine", nargs="?")
    search = commands.add_parser("search", add_help=False)
    search.add_argument("text", nargs="+")
    pull = commands.add_parser("pull", add_help=False)
    pull.add_argument("model")
    pull.add_argument("--revision")
    pull.add_argument("--redownload", action="store_true")
    remove = commands.add_parser("rm", add_help=False)
    remove.add_argument("model")
    remove.add_argument("--yes", action="store_true")
    for command in ("plan", "deploy"):
        sub = commands.add_parser(command, add_help=False)
        sub.add_argument("model")
        add_deploy_arguments(sub, command)
    chat = commands.add_parser("chat", add_help=False)
    chat.add_argument("name", nargs="?")
    chat.add_argument("prompt", nargs="*")
    chat.add_argument("--max-tokens", type=int, default=256)
    chat.add_argument("--temperature", type=float)
    chat.add_argument("--rag", metavar="INDEX")
    chat.add_argument("-k", type=int, default=5)
    logs = commands.add_parser("logs", add_help=False)
    logs.add_argument("name")
    logs.add_argument("--lines", type=int, default=100)
    logs.add_argument("--follow", action="store_true")
    stop = commands.add_parser("stop", add_help=False)
    stop.add_argument("name")
    stop.add_argument("--forget", action="store_true")
    share = commands.add_parser("share", add_help=False)
    share.add_argument("name")
    share.add_argument("share", metavar="all|private|group:NAME")
    audit = commands.add_parser("audit", add_help=False)
    audit.add_argument("--limit", type=int, default=50)
    audit.add_argument("--user")
    return parser


@magics_class
class KzMagics(Magics):
    """`%kz` magics: deploy local LLMs, chat with them, watch them."""

    default_deployment = Unicode(
        "", config=True, help="Deployment `%kz chat` uses when no name is given."
    ).tag(config=True)

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        self._client: KzClient | None = None

    @functools.cached_property
    def parser(self) -> argparse.ArgumentParser:
        """The parser of every subcommand, built on first use (not at `%load_ext`)."""
        return build_parser()

    @property
    def client(self) -> KzClient:
        """The REST client, connected on first use."""
        if self._client is None:
            from kz_jupyter.client import KzClient  # httpx: imported on first use, not at load

            self._client = KzClient()
        return self._client

    @line_cell_magic
    def kz(self, line: str, cell: str | None = None) -> object:
        """Run a kz subcommand (panels are returned, to be displayed); errors are one clear
        line, never a traceback."""
        try:
            args = self.parser.parse_args(shlex.split(line))
            handler = getattr(self, f"_do_{args.command or 'help'}")
            return handler(args, cell)
        except (KzError, UsageError) as error:
            print(f"kz: {error}", file=sys.stderr)
        except ValueError as error:  # shlex: unbalanced quotes
            print(f"kz: cannot parse the line ({error})", file=sys.stderr)
        return None

    def _do_help(self, args, cell) -> None:
        print(usage())

    def _do_hw(self, args, cell) -> object:
        from kz_jupyter.magics.hardware_panel import HardwarePanel

        return shown(HardwarePanel(self.client, live=in_kernel()))

    def _do_ps(self, args, cell) -> object:
        from kz_jupyter.magics.deployments_panel import DeploymentsPanel

        return shown(DeploymentsPanel(self.client, live=in_kernel()))

    def _do_top(self, args, cell, name: str | None = None) -> object:
        if in_kernel():
            from kz_jupyter.magics.top_panel import TopPanel

            return TopPanel(self.client, name)
        print(format_stats(self.client.stats(name)))
        return None

    def _do_stats(self, args, cell) -> object:
        return self._do_top(args, cell, args.name)

    def _do_batch(self, args, cell) -> object:
        from kz_jupyter.batch import batch

        namespace = self.shell.user_ns if self.shell else {}
        data = self._named(namespace, args.data)
        rows = data[args.column] if args.column else data
        schema = self._named(namespace, args.schema) if args.schema else None
        result = batch(rows, args.prompt, args.name, schema=schema, max_tokens=args.max_tokens,
                       retry_errors=args.retry_errors, client=self.client)  # fmt: skip
        if not args.into:
            return result
        if hasattr(data, "columns"):  # a DataFrame: its new columns
            answers = result.rename(columns={"text": args.into, "error": f"{args.into}_error"})
            for column in answers.columns:
                data[column] = answers[column]
            return data
        namespace[args.into] = result
        return result

    def _do_compare(self, args, cell) -> object:
        names, prompt = (args.items, cell.strip()) if cell else (args.items[:-1], args.items[-1])
        if len(names) < 2 or not prompt:
            raise UsageError('name two deployments or more, then the prompt: %kz compare A B "..."')
        options = {"max_tokens": args.max_tokens}
        if args.data:
            from kz_jupyter.batch import compare_rows

            data = self._named(self.shell.user_ns if self.shell else {}, args.data)
            rows = data[args.column] if args.column else data
            comparison = compare_rows(names, rows, prompt, client=self.client, **options)
            if in_kernel():
                from kz_jupyter.magics.compare_panel import ComparisonPanel

                return ComparisonPanel(comparison)
            print(format_comparison(comparison))
            return None
        if in_kernel():
            return self._compare_panel(names, prompt, options)
        from kz_jupyter.batch import compare

        print(format_replies(compare(names, prompt, client=self.client, **options)))
        return None

    def _compare_panel(self, names: list[str], prompt: str, options: dict) -> None:
        """Stream into the panel's columns; then the figures also as text (what nbval keeps)."""
        from IPython.display import display

        from kz_jupyter.magics.compare_panel import ComparePanel

        panel = ComparePanel(self.client, names, prompt, **options)
        display(panel)
        panel.wait()
        print(format_figures(panel.replies))

    @staticmethod
    def _named(namespace: dict, name: str) -> object:
        """A variable of the notebook, or a UsageError naming it."""
        if name not in namespace:
            raise UsageError(f"no variable named {name!r} in this notebook")
        return namespace[name]

    def _do_ai(self, args, cell) -> None:
        from kz_jupyter.magics.jupyter_ai_aliases import (
            format_aliases,
            jupyter_ai_magics,
            register_aliases,
        )

        ai_magics = jupyter_ai_magics(self.shell)  # before connecting: is jupyter-ai here?
        print(format_aliases(register_aliases(ai_magics, self.client)))

    def _do_usage(self, args, cell) -> None:
        print(format_usage(self.client.usage()))

    def _do_search(self, args, cell) -> None:
        print(format_search(self.client.search(" ".join(args.text))))

    def _do_plan(self, args, cell) -> None:
        from kz_jupyter.magics.deploy_flags import flag_options

        print(format_plan(self.client.plan(args.model, **flag_options(args.model, args, "plan"))))

    def _do_pull(self, args, cell) -> None:
        job = self.client.pull(args.model, revision=args.revision, redownload=args.redownload)
        bar = DownloadBar(args.model)
        try:
            job = self.client.wait_pull(job["job_id"], on_progress=bar.update)
        finally:
            bar.close()
        if job["status"] != "done":
            code = job["error"]["code"]
            raise KzError((f"[{code}] " if code else "") + job["error"]["message"])
        plan = job["plan"]
        print(f"{args.model}: {plan['variant']} ready at {plan['model_path']}")

    def _do_engines(self, args, cell) -> None:
        if args.action is None:
            print(format_engines(self.client.engines()))
            return
        if not args.engine:
            raise UsageError("name the engine: %kz engines install vllm")
        bar = DownloadBar(f"{args.engine}: downloading")
        try:
            job = self.client.install_engine(
                args.engine, on_line=lambda line: print(line, flush=True), on_bytes=bar.update
            )
        finally:
            bar.close()
        if job["status"] != "done":
            raise KzError(f"installing {args.engine} failed: {job['error']}")

    def _do_rag(self, args, cell) -> object:
        return run_rag(args, lambda: self.client)

    def _do_models(self, args, cell) -> None:
        print(format_models(self.client.models()))

    def _do_rm(self, args, cell) -> None:
        print(format_deletion(self.client.delete_model(args.model, dry_run=not args.yes)))

    def _do_deploy(self, args, cell) -> object:
        from kz_jupyter.magics.deploy_flags import flag_options

        record = self.client.deploy(args.model, **flag_options(args.model, args, "deploy"))
        name, started = record["name"], record["created_at"]
        if in_kernel():
            return self._deploy_panel(args.model, name, started)
        print(f"Deploying {args.model} as '{name}'")
        bar = DownloadBar(args.model)
        try:
            final = self.client.wait(
                name,
                on_transition=lambda entry: print(format_transition(entry, started), flush=True),
                on_progress=bar.update,
            )
        finally:
            bar.close()
        if final["status"] != "DEPLOYED":
            raise KzError(format_failure(final))
        print(f"'{name}' is ready: OpenAI endpoint {self.client.openai_base_url} (model='{name}')")
        return None

    def _deploy_panel(self, model: str, name: str, started: float) -> None:
        """Show the deploy panel and drive it until the deployment is up or has failed; the
        outcome is one line of text under it, as in a terminal (what notebooks keep and
        compare), which the panel does not repeat."""
        from IPython.display import display

        from kz_jupyter.magics.deploy_panel import DeployPanel

        panel = DeployPanel(model, name, started)
        display(panel)
        final = self.client.wait(name, on_transition=panel.add_step, on_progress=panel.progress,
                                 on_poll=panel.tick)  # fmt: skip
        panel.finish(final, self.client.openai_base_url)
        if final["status"] not in ("DEPLOYED", "UNLOADED"):
            raise KzError(format_failure(final))
        print(f"'{name}' is ready: OpenAI endpoint {self.client.openai_base_url} (model='{name}')")

    def _do_chat(self, args, cell) -> object:
        name, words = args.name, list(args.prompt)
        if cell is None and not words and self.default_deployment and name:
            name, words = self.default_deployment, [name]
        name = name or self.default_deployment
        if not name:
            raise UsageError("name a deployment: %kz chat NAME PROMPT")
        prompt = cell.strip() if cell is not None else " ".join(words)
        options = {} if args.temperature is None else {"temperature": args.temperature}
        if not prompt and cell is None and in_kernel():
            from kz_jupyter.magics.chat_panel import ChatPanel

            return ChatPanel(self.client, name, max_tokens=args.max_tokens, rag=args.rag,
                             k=args.k, **options)  # fmt: skip
        if not prompt:
            raise UsageError(f"no prompt: %kz chat {name} PROMPT, or %%kz chat {name} + cell")
        if args.rag:
            from kz_jupyter import rag
            from kz_jupyter.magics.rag_magics import print_answer

            print_answer(rag.ask(args.rag, prompt, name, k=args.k, max_tokens=args.max_tokens,
                                 client=lambda: self.client, **options))  # fmt: skip
            return None
        messages = [{"role": "user", "content": prompt}]
        for text in self.client.chat(name, messages, max_tokens=args.max_tokens, **options):
            print(text, end="", flush=True)
        print()

    def _do_logs(self, args, cell) -> object:
        if in_kernel():
            from kz_jupyter.magics.logs_panel import LogsPanel

            return LogsPanel(self.client, args.name, args.lines)
        if not args.follow:
            print(format_logs(self.client.logs(args.name, args.lines)))
            return
        try:
            for event in self.client.follow_logs(args.name, args.lines):
                print(format_log_event(event), flush=True)
        except KeyboardInterrupt:  # interrupting the cell ends the follow quietly
            return

    def _do_stop(self, args, cell) -> None:
        record = self.client.stop(args.name, forget=args.forget)
        removed = " and removed from the list" if args.forget else ""
        print(f"'{record['name']}' is {record['status']}{removed}.")

    def _do_share(self, args, cell) -> None:
        record = self.client.share(args.name, args.share)
        print(f"'{record['name']}' is shared: {record['visibility']}.")

    def _do_audit(self, args, cell) -> None:
        print(format_audit(self.client.audit(args.limit, args.user)))
