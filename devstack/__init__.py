"""``make run``: the embedded development stack (dev server, worker, API, mail sink)."""
