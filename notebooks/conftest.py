"""Settings for running the notebooks under nbval (`pytest --nbval-lax --nbval-current-env notebooks/`).

nbval starts each notebook's kernel with this process's environment, so what is set here reaches
the kernels, and nothing else:

* `OMP_NUM_THREADS=1` (unless already set): the chapters train small models, which gain little
  from a second thread, while two threads on a shared 2-core machine can contend badly (we
  measured a fast-mode `compare` of four methods at 15 s on one thread and 233 s on two while
  other jobs ran). `notebooks/execute.py` uses the same setting for the committed runs.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
