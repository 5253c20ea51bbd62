"""For every test, the notebooks (nbval) included: vLLM and MLX run from the environments
`make setup` creates in .engines (kz-jupyter's own installer); every server and kernel the
tests start inherits this. A session run by a normal user first enters a mount namespace of its
own, while it is one thread, so that the tests that fill a small disk can mount one."""

import os
from pathlib import Path

from tests.support.own_mounts import prepare_session

prepare_session()
os.environ.setdefault("KZ_ENGINE_ENVS_DIR", str(Path(__file__).parent / ".engines"))
