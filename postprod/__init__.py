"""The ``postprod`` command line: a thin layer over the ``pipeline`` library and the Prefect flows."""
