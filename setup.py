"""The one thing pyproject.toml cannot say on the setuptools pinned there: the C extension (issue 14).

``router/_wsframe.c`` is built by every install (``pip install .``, ``pip install -e .``); it needs a C
compiler and the Python headers. Without it, ``router.wsframe`` falls back to its pure-Python reference.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("router._wsframe", sources=["router/_wsframe.c"], extra_compile_args=["-O2"])])
