"""For every test, the notebooks (nbval) included: vLLM and MLX run from the environments
`make setup` creates in .engines (kz-jupyter's own installer); every server and kernel the
tests start inherits this."""

import os
from pathlib import Path

os.environ.setdefault("KZ_ENGINE_ENVS_DIR", str(Path(__file__).parent / ".engines"))
